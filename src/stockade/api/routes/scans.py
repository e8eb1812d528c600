"""The deploy gate over HTTP: scan reports, namespace scan policies, advisory imports.

- ``GET /api/v1/namespaces/{ns}/scans/{[pkg/]name}[?version=][&format=sarif]``: the stored
  report of an action version (default: the current one), as JSON or SARIF 2.1.0.
- ``GET|PUT|DELETE /api/v1/namespaces/{ns}/scanpolicy``: which severities block and warn
  (reading needs READ in the namespace; changing it needs ROLES in the platform's administrative
  namespace, declared in routes/permissions.py and checked again by the gate).
- ``POST /api/v1/admin/advisories``: ``{"advisories": [OSV, ...]}``, for holders of ROLES in the
  platform's administrative namespace (its owners); ``GET`` counts them.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.api.context import (
    authenticate,
    client_address,
    endpoint,
    entity_path,
    namespace_param,
    read_json,
    services_of,
)
from stockade.api.problems import JsonResponse
from stockade.domain import as_mapping
from stockade.errors import BadRequestError

__all__ = ["routes"]


@endpoint
async def get_scan_report(request: Request) -> Response:
    """The scan report of an action version."""
    credentials = await authenticate(request)
    services = services_of(request)
    path = entity_path(request, namespace_param(request, credentials))
    version = request.query_params.get("version") or None
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "sarif"):
        raise BadRequestError("The query parameter 'format' was malformed:\nuse json or sarif")
    current = None
    if version is None:
        current = (await services.actions.get(credentials.identity, path)).version
    doc = await services.scans.report(credentials.identity, path, version=version, current_version=current)
    return JsonResponse(services.scans.to_sarif(doc) if fmt == "sarif" else doc)


@endpoint
async def scan_policy(request: Request) -> Response:
    """GET the namespace's policy; PUT ``{"block": [...], "warn": [...]}``; DELETE resets it."""
    credentials = await authenticate(request)
    services = services_of(request)
    namespace = namespace_param(request, credentials)
    identity = credentials.identity
    if request.method == "GET":
        return JsonResponse({"namespace": namespace, **(await services.scans.policy(namespace)).to_json()})
    body = None
    if request.method == "PUT":
        body = as_mapping(await read_json(request, limit_bytes=64 * 1024), "body")
    policy = await services.scans.set_policy(identity, namespace, body, source=client_address(request))
    return JsonResponse({"namespace": namespace, **policy.to_json()})


@endpoint
async def advisories(request: Request) -> Response:
    """POST a batch of OSV advisories (rescans deployed actions); GET how many are stored."""
    credentials = await authenticate(request)
    services = services_of(request)
    if request.method == "GET":
        return JsonResponse({"advisories": await services.scans.advisory_count(credentials.identity)})
    body = as_mapping(await read_json(request, limit_bytes=services.settings.api.max_body_bytes), "body")
    return JsonResponse(
        await services.scans.import_advisories(
            credentials.identity, body.get("advisories"), source=client_address(request)
        )
    )


@endpoint
async def advisories_sync(request: Request) -> Response:
    """POST: download, verify and import the configured OSV exports (``{"ecosystems": [...]}``
    optional), then rescan deployed actions. GET: per ecosystem, advisories and last sync."""
    # Who may: ROLES in the platform namespace, declared in api/routes/permissions.py.
    credentials = await authenticate(request)
    services = services_of(request)
    if request.method == "GET":
        return JsonResponse({"ecosystems": await services.advisory_sync.status()})
    raw = await read_json(request, limit_bytes=4096) if await request.body() else {}
    body = as_mapping(raw, "body")
    ecosystems = body.get("ecosystems")
    if ecosystems is not None and (not isinstance(ecosystems, list) or not all(isinstance(e, str) for e in ecosystems)):
        raise BadRequestError("The request content was malformed:\n'ecosystems' must be an array of strings")
    outcomes = await services.advisory_sync.sync(ecosystems)
    services.scans.record_advisory_sync(
        credentials.identity, [o.to_json() for o in outcomes], source=client_address(request)
    )
    return JsonResponse(
        {"synced": [o.to_json() for o in outcomes], "ecosystems": await services.advisory_sync.status()}
    )


_BASE = "/api/v1/namespaces/{ns}"
routes = [
    Route(_BASE + "/scans/{name}", get_scan_report, methods=["GET"]),
    Route(_BASE + "/scans/{pkg}/{name}", get_scan_report, methods=["GET"]),
    Route(_BASE + "/scanpolicy", scan_policy, methods=["GET", "PUT", "DELETE"]),
    Route("/api/v1/admin/advisories", advisories, methods=["GET", "POST"]),
    Route("/api/v1/admin/advisories/sync", advisories_sync, methods=["GET", "POST"]),
]
