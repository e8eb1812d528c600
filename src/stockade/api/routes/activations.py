"""``/api/v1/namespaces/{ns}/activations``: list, get, logs, result."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.api.context import authenticate, endpoint, namespace_param, paging, query_bool, query_int, services_of
from stockade.api.problems import JsonResponse
from stockade.domain import Activation, is_valid_name
from stockade.errors import BadRequestError
from stockade.observability.tags import tags_of
from stockade.security.authz import Permission
from stockade.services import Credentials
from stockade.store import ActivationQuery

__all__ = ["routes"]


def _epoch(raw: str) -> str:
    return f"Parameter is not a valid value for epoch seconds: {raw}"


def _name_filter(request: Request, namespace: str) -> str | None:
    raw = request.query_params.get("name")
    if not raw:
        return None
    parts = raw.split("/")
    if len(parts) > 2 or not all(is_valid_name(p) for p in parts):
        raise BadRequestError(
            f"The query parameter 'name' was malformed:\nParameter may be a 'simple' name or 'package-name/simple' name: {raw}"
        )
    return f"{namespace}/{raw}"


def _tag_filter(request: Request) -> str | None:
    """``?tag=``: activations of actions carrying this tag (Stockade addition)."""
    raw = request.query_params.get("tag")
    if not raw:
        return None
    tags = tags_of([raw])
    if not tags:
        raise BadRequestError(f"The query parameter 'tag' was malformed:\n'{raw[:60]}' is not a valid tag")
    return tags[0]


async def _own_namespace(request: Request) -> tuple[Credentials, str]:
    credentials = await authenticate(request)
    namespace = namespace_param(request, credentials)
    await services_of(request).access.require(
        credentials.identity, namespace, Permission.READ_ACTIVATIONS, f"{namespace}/activations"
    )
    return credentials, namespace


@endpoint
async def list_activations(request: Request) -> Response:
    """Summaries (or ``docs=true`` full records), newest first."""
    _credentials, namespace = await _own_namespace(request)
    services = services_of(request)
    skip, limit = paging(request, "activations")
    count = query_bool(request, "count")
    docs = query_bool(request, "docs")
    if count and docs:
        raise BadRequestError("The parameter 'docs' is not permitted with 'count'.")
    query = ActivationQuery(
        namespace=namespace,
        entity_path=_name_filter(request, namespace),
        since_ms=query_int(request, "since", -1, detail=_epoch) if request.query_params.get("since") else None,
        upto_ms=query_int(request, "upto", -1, detail=_epoch) if request.query_params.get("upto") else None,
        skip=skip,
        limit=limit,
        tag=_tag_filter(request),
    )
    if count:
        return JsonResponse({"activations": await services.activations.count(query)})
    found = await services.activations.list(query)
    return JsonResponse([a.to_json() if docs else a.to_summary() for a in found])


async def _activation(request: Request) -> Activation:
    _credentials, namespace = await _own_namespace(request)
    return await services_of(request).activations.get(namespace, request.path_params["id"])


@endpoint
async def get_activation(request: Request) -> Response:
    """The full record."""
    return JsonResponse((await _activation(request)).to_json())


@endpoint
async def get_logs(request: Request) -> Response:
    """``{"logs": [...]}``."""
    return JsonResponse({"logs": list((await _activation(request)).logs)})


@endpoint
async def get_result(request: Request) -> Response:
    """``{status, success, result, size}``."""
    return JsonResponse((await _activation(request)).response.to_json())


_BASE = "/api/v1/namespaces/{ns}/activations"
routes = [
    Route(_BASE, list_activations, methods=["GET"]),
    Route(_BASE + "/{id}", get_activation, methods=["GET"]),
    Route(_BASE + "/{id}/logs", get_logs, methods=["GET"]),
    Route(_BASE + "/{id}/result", get_result, methods=["GET"]),
]
