"""``/api/v1/namespaces/{ns}/triggers``: list, get, create/update, delete, fire."""

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
    transaction_id,
)
from stockade.api.problems import JsonResponse
from stockade.api.transfer import add_transfer_tokens
from stockade.errors import BadRequestError

__all__ = ["routes"]

# Headers never passed to actions in __ow_headers: credentials stay with the platform.
_HIDDEN_HEADERS = frozenset({"authorization", "cookie"})


list_triggers = collection_listing(
    "triggers", lambda services: services.triggers, "Triggers of the caller's namespace."
)


@endpoint
async def trigger_entity(request: Request) -> Response:
    """GET, PUT, DELETE or fire (POST) one trigger."""
    credentials = await authenticate(request)
    services = services_of(request)
    path = entity_path(request, namespace_param(request, credentials))
    identity = credentials.identity
    if request.method == "GET":
        trigger = await services.triggers.get(identity, path)
        doc = await add_transfer_tokens(request, identity, path.namespace, trigger.to_json(), trigger.parameters)
        return JsonResponse(doc)
    if request.method == "PUT":
        body = await read_json(request, limit_bytes=services.settings.api.max_body_bytes)
        trigger = await services.triggers.put(identity, path, body, overwrite=query_bool(request, "overwrite"))
        return JsonResponse(trigger.to_json())
    if request.method == "DELETE":
        return JsonResponse((await services.triggers.delete(identity, path)).to_json())
    body = await read_json(request, limit_bytes=services.settings.limits.max_payload_bytes)
    if not isinstance(body, dict):
        raise BadRequestError("The request content was malformed:\nparameters must be a JSON object")
    headers = {k: v for k, v in request.headers.items() if k not in _HIDDEN_HEADERS}
    activation_id = await services.triggers.fire(identity, path, body, headers, transaction_id=transaction_id(request))
    if activation_id is None:
        return Response(status_code=204)
    return JsonResponse(
        {"activationId": activation_id}, status_code=202, headers={"x-openwhisk-activation-id": activation_id}
    )


_BASE = "/api/v1/namespaces/{ns}/triggers"
routes = [
    Route(_BASE, list_triggers, methods=["GET"]),
    Route(_BASE + "/{name}", trigger_entity, methods=["GET", "PUT", "DELETE", "POST"]),
]
