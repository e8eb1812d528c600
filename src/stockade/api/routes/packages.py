"""``/api/v1/namespaces/{ns}/packages``: list, get, create/bind/update, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
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
from stockade.api.transfer import add_transfer_tokens

__all__ = ["routes"]


list_packages = collection_listing(
    "packages", lambda services: services.packages, "Packages of a namespace (elsewhere: public ones only)."
)


@endpoint
async def package_entity(request: Request) -> Response:
    """GET, PUT, DELETE one package."""
    credentials = await authenticate(request)
    services = services_of(request)
    path = entity_path(request, namespace_param(request, credentials))
    identity = credentials.identity
    if request.method == "GET":
        doc = await services.packages.get(identity, path.namespace, path.name)
        if query_bool(request, "sealed"):
            package = await services.catalog.package(path.namespace, path.name)
            doc = await add_transfer_tokens(request, identity, path.namespace, doc, package.parameters)
        return JsonResponse(doc)
    if request.method == "PUT":
        body = await read_json(request, limit_bytes=services.settings.api.max_body_bytes)
        package = await services.packages.put(identity, path, body, overwrite=query_bool(request, "overwrite"))
        return JsonResponse(package.to_json())
    package = await services.packages.delete(identity, path, force=query_bool(request, "force"))
    return JsonResponse(package.to_json())


_BASE = "/api/v1/namespaces/{ns}/packages"
routes = [
    Route(_BASE, list_packages, methods=["GET"]),
    Route(_BASE + "/{name}", package_entity, methods=["GET", "PUT", "DELETE"]),
]
