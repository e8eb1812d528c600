"""``/api/v1/namespaces/{ns}/rules``: list, get, create/update, enable/disable, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from stockade.api.context import (
    authenticate,
    endpoint,
    entity_path,
    namespace_param,
    paging,
    query_bool,
    read_json,
    services_of,
)
from stockade.api.problems import JsonResponse

__all__ = ["routes"]


@endpoint
async def list_rules(request: Request) -> Response:
    """Rules of the caller's namespace."""
    credentials = await authenticate(request)
    services = services_of(request)
    namespace = namespace_param(request, credentials)
    skip, limit = paging(request, "rules")
    if query_bool(request, "count"):
        return JsonResponse({"rules": await services.rules.count(credentials.identity, namespace)})
    return JsonResponse(await services.rules.list(credentials.identity, namespace, skip=skip, limit=limit))


@endpoint
async def rule_entity(request: Request) -> Response:
    """GET, PUT, DELETE, or POST (status change) one rule."""
    credentials = await authenticate(request)
    services = services_of(request)
    path = entity_path(request, namespace_param(request, credentials))
    identity = credentials.identity
    if request.method == "GET":
        return JsonResponse(await services.rules.get(identity, path))
    if request.method == "DELETE":
        return JsonResponse(await services.rules.delete(identity, path))
    body = await read_json(request, limit_bytes=services.settings.api.max_body_bytes)
    if request.method == "PUT":
        return JsonResponse(await services.rules.put(identity, path, body, overwrite=query_bool(request, "overwrite")))
    await services.rules.set_status(identity, path, body)
    return PlainTextResponse("OK")


_BASE = "/api/v1/namespaces/{ns}/rules"
routes = [
    Route(_BASE, list_rules, methods=["GET"]),
    Route(_BASE + "/{name}", rule_entity, methods=["GET", "PUT", "DELETE", "POST"]),
]
