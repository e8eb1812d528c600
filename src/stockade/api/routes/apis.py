"""API gateway management: the OpenWhisk client's routes API and Stockade's ``apis`` resource.

* ``/api/v1/web/whisk.system/apimgmt/{getApi,createApi,deleteApi}``: what the OpenWhisk
  clients call (as web actions upstream), authenticated with the caller's key, in the shapes of
  the compatibility reference §10. Matched before the generic web-action route.
* ``/api/v1/namespaces/{ns}/apis``: every per-route option (auth, schema, body size, CORS, rate
  limits, quotas). ``GET`` lists (``?basepath=``), ``PUT`` creates (``?overwrite=true``
  replaces), ``DELETE`` removes (``?basepath=&relpath=&operation=``).

Routes are served by the gateway at ``/api/gw/{namespace}{basepath}{relpath}``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.api.context import (
    RouteServices,
    authenticate,
    client_address,
    endpoint,
    namespace_param,
    query_bool,
    query_int,
    query_str,
    read_json,
    services_of,
    transaction_id,
)
from stockade.api.problems import JsonResponse, error_response
from stockade.domain import JSON, ApiRoute, api_route_from_json, api_route_to_json
from stockade.errors import BadRequestError, NotFoundError, PlatformError
from stockade.services import AuditEvent
from stockade.services.apidocs import api_items, cli_api, routes_from_apidoc

__all__ = ["routes"]

APIMGMT: Final = "/api/v1/web/whisk.system/apimgmt"


def _route_json(services: RouteServices, route: ApiRoute) -> dict[str, JSON]:
    return {**api_route_to_json(route), "url": services.apis.route_url(route)}


# -- Stockade's resource ----------------------------------------------------------------------------


@endpoint
async def list_apis(request: Request) -> Response:
    """The namespace's routes with every option."""
    credentials = await authenticate(request)
    namespace = namespace_param(request, credentials)
    services = services_of(request)
    routes = await services.apis.list(credentials.identity, namespace, query_str(request, "basepath"))
    return JsonResponse([_route_json(services, r) for r in routes])


@endpoint
async def put_api(request: Request) -> Response:
    """Create a route (``?overwrite=true`` replaces one)."""
    credentials = await authenticate(request)
    namespace = namespace_param(request, credentials)
    services = services_of(request)
    body = await read_json(request, limit_bytes=services.settings.limits.max_parameters_bytes)
    route = api_route_from_json(namespace, body)
    saved = await services.apis.create(credentials.identity, route, overwrite=query_bool(request, "overwrite"))
    return JsonResponse(_route_json(services, saved))


@endpoint
async def delete_apis(request: Request) -> Response:
    """Delete the routes of a base path, or of one relative path, or of one operation."""
    credentials = await authenticate(request)
    namespace = namespace_param(request, credentials)
    basepath, relpath, verb = (
        query_str(request, "basepath"),
        query_str(request, "relpath"),
        query_str(request, "operation"),
    )
    if not basepath:
        raise BadRequestError("The query parameter 'basepath' is required.")
    if verb and not relpath:
        raise BadRequestError("When specifying an operation, the path is required.")
    removed = await services_of(request).apis.delete(credentials.identity, namespace, basepath, relpath, verb)
    return JsonResponse({"deleted": removed})


# -- the OpenWhisk client's routes API ----------------------------------------------------------------


def _audit(request: Request, namespace: str, subject: str, change: str) -> None:
    services_of(request).audit.record(
        AuditEvent(
            namespace=namespace,
            actor=subject,
            action=f"{request.method} apis",
            resource=request.url.path,
            outcome="200",
            source=client_address(request),
            details={"transactionId": transaction_id(request), "change": change},
        )
    )


async def _apimgmt(request: Request, operation: str) -> Response:
    """Errors keep the web-action envelope; gateway failures are 502 as upstream answers them."""
    try:
        credentials = await authenticate(request)
        identity = credentials.identity
        namespace = identity.namespace
        services = services_of(request)
        if operation == "createApi":
            body = await read_json(request, limit_bytes=services.settings.limits.max_payload_bytes)
            created = routes_from_apidoc(namespace, body, query_str(request, "responsetype"))
            current = {(r.base_path, r.rel_path, r.verb): r for r in await services.apis.list(identity, namespace)}
            for route in created:
                previous = current.get((route.base_path, route.rel_path, route.verb))
                # Re-creating a route from an OpenWhisk client keeps the protections set through Stockade.
                kept = route if previous is None else replace(route, options=previous.options)
                await services.apis.create(identity, kept, overwrite=True)
            base = created[0].base_path
            _audit(request, namespace, identity.subject, f"created {len(created)} route(s) under {base}")
            members = await services.apis.list(identity, namespace, base)
            return JsonResponse(
                cli_api(
                    namespace, base, members, services.apis.gateway_url(namespace, base), services.settings.api.base_url
                )
            )
        if operation == "deleteApi":
            basepath, relpath, verb = (
                query_str(request, "basepath"),
                query_str(request, "relpath"),
                query_str(request, "operation"),
            )
            if not basepath:
                raise BadRequestError("basepath is required.")
            if verb and not relpath:
                raise BadRequestError("When specifying an operation, the path is required.")
            if not basepath.startswith("/"):
                # An API name: the base path of the API carrying it.
                named = [r for r in await services.apis.list(identity, namespace) if r.api_name == basepath]
                basepath = named[0].base_path if named else "/" + basepath
            try:
                await services.apis.delete(identity, namespace, basepath, relpath or None, verb or None)
            except NotFoundError:
                what = (
                    f"path {relpath}" + (f" with operation {verb}" if verb else "") if relpath else f"API '{basepath}'"
                )
                return JsonResponse(
                    {"error": f"API deletion failure: {what} does not exist.", "code": transaction_id(request)},
                    status_code=502,
                )
            _audit(request, namespace, identity.subject, f"deleted {basepath}{relpath or ''} {verb or ''}".strip())
            return JsonResponse({})
        routes = await services.apis.list(identity, namespace)
        items = api_items(
            namespace,
            routes,
            lambda base: services.apis.gateway_url(namespace, base),
            services.settings.api.base_url,
            basepath=query_str(request, "basepath"),
            relpath=query_str(request, "relpath"),
            operation=query_str(request, "operation"),
        )
        skip = max(0, query_int(request, "skip", 0))
        limit = query_int(request, "limit", 0)
        items = items[skip : skip + limit] if limit > 0 else items[skip:]
        return JsonResponse({"apis": items})
    except PlatformError as exc:
        return error_response(exc, transaction_id(request))


async def get_api(request: Request) -> Response:
    """``getApi``: the caller's APIs, one item per base path."""
    return await _apimgmt(request, "getApi")


async def create_api(request: Request) -> Response:
    """``createApi``: add (or replace) the routes of an apidoc; answers the whole API."""
    return await _apimgmt(request, "createApi")


async def delete_api(request: Request) -> Response:
    """``deleteApi``: remove an API, a path of it, or one operation."""
    return await _apimgmt(request, "deleteApi")


routes = [
    Route("/api/v1/namespaces/{ns}/apis", list_apis, methods=["GET"]),
    Route("/api/v1/namespaces/{ns}/apis", put_api, methods=["PUT"]),
    Route("/api/v1/namespaces/{ns}/apis", delete_apis, methods=["DELETE"]),
    *(
        Route(f"{APIMGMT}/{name}{extension}", handler, methods=[method])
        for name, handler, method in (
            ("getApi", get_api, "GET"),
            ("createApi", create_api, "POST"),
            ("deleteApi", delete_api, "DELETE"),
        )
        for extension in ("", ".http")
    ),
]
