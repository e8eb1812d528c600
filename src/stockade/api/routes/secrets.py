"""``/api/v1/namespaces/{ns}/secrets``: the secrets store (metadata out, values in only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.api.context import authenticate, endpoint, namespace_param, query_bool, read_json, services_of
from stockade.api.problems import JsonResponse
from stockade.services.secrets import MAX_SECRET_BYTES

__all__ = ["routes"]


@endpoint
async def list_secrets(request: Request) -> Response:
    """Names, versions and fingerprints of the namespace's secrets."""
    credentials = await authenticate(request)
    namespace = namespace_param(request, credentials)
    return JsonResponse(await services_of(request).secrets.list(credentials.identity, namespace))


@endpoint
async def secret_entity(request: Request) -> Response:
    """GET metadata; PUT create (``?overwrite=true``: or add a version); POST rotate; DELETE."""
    credentials = await authenticate(request)
    services = services_of(request)
    namespace = namespace_param(request, credentials)
    name = request.path_params["name"]
    identity = credentials.identity
    if request.method == "GET":
        return JsonResponse(await services.secrets.get(identity, namespace, name))
    if request.method == "DELETE":
        return JsonResponse(await services.secrets.delete(identity, namespace, name))
    body = await read_json(request, limit_bytes=MAX_SECRET_BYTES * 2)
    if request.method == "POST":
        return JsonResponse(await services.secrets.put(identity, namespace, name, body, mode="rotate"))
    if query_bool(request, "overwrite"):
        return JsonResponse(await services.secrets.put(identity, namespace, name, body, mode="set"))
    return JsonResponse(await services.secrets.put(identity, namespace, name, body, mode="create"))


_BASE = "/api/v1/namespaces/{ns}/secrets"
routes = [
    Route(_BASE, list_secrets, methods=["GET"]),
    Route(_BASE + "/{name}", secret_entity, methods=["GET", "PUT", "POST", "DELETE"]),
]
