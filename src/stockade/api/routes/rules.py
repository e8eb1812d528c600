"""``/api/v1/namespaces/{ns}/rules``: list, get, create/update, enable/disable, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from stockade.api.context import (
    authenticate,
    collection_listing,
    endpoint,
    entity_path,
    namespace_param,
    query_bool,
    read_json,
    services_of,
)
from stockade.api.problems import JsonResponse

__all__ = ["routes"]


list_rules = collection_listing("rules", lambda services: services.rules, "Rules of the caller's namespace.")


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
