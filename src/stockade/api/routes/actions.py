"""``/api/v1/namespaces/{ns}/actions``: list, get, create/update, delete and invoke actions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.api.context import (
    authenticate,
    endpoint,
    entity_path,
    namespace_param,
    paging,
    query_bool,
    query_int,
    read_json,
    services_of,
    transaction_id,
)
from stockade.api.problems import JsonResponse
from stockade.api.transfer import add_transfer_tokens
from stockade.domain import Activation, ActivationStatus, validate_entity_name
from stockade.errors import BadRequestError
from stockade.observability.tracing import traced
from stockade.services import InvokeRequest

__all__ = ["activation_response", "routes"]

ACTIVATION_HEADER = "x-openwhisk-activation-id"


@endpoint
async def list_actions(request: Request) -> Response:
    """All actions of a namespace (packaged ones included), or of one package (trailing slash)."""
    credentials = await authenticate(request)
    services = services_of(request)
    namespace = namespace_param(request, credentials)
    package = request.path_params.get("pkg")
    if package is not None:
        validate_entity_name(package)
    skip, limit = paging(request, "actions")
    if query_bool(request, "count"):
        count = await services.actions.count(credentials.identity, namespace, package)
        return JsonResponse({"actions": count})
    items = await services.actions.list(credentials.identity, namespace, package, skip=skip, limit=limit)
    return JsonResponse(items)


@endpoint
async def get_action(request: Request) -> Response:
    """One action; ``?code=false`` leaves out the code; ``?sealed=true`` adds transfer tokens (export)."""
    credentials = await authenticate(request)
    path = entity_path(request, namespace_param(request, credentials))
    include_code = query_bool(request, "code", default=True)
    action = await services_of(request).actions.get(credentials.identity, path, include_code=include_code)
    doc = await add_transfer_tokens(
        request, credentials.identity, path.namespace, action.to_json(include_code=include_code), action.parameters
    )
    return JsonResponse(doc)


@endpoint
async def put_action(request: Request) -> Response:
    """Create, or update with ``?overwrite=true``; ``?acceptRisk=<reason>`` passes a blocking deploy gate."""
    credentials = await authenticate(request)
    services = services_of(request)
    path = entity_path(request, namespace_param(request, credentials))
    body = await read_json(request, limit_bytes=services.settings.api.max_body_bytes)
    action = await services.actions.put(
        credentials.identity,
        path,
        body,
        overwrite=query_bool(request, "overwrite"),
        accept_risk=request.query_params.get("acceptRisk"),
    )
    return JsonResponse(action.to_json())


@endpoint
async def delete_action(request: Request) -> Response:
    """Delete and return the action."""
    credentials = await authenticate(request)
    path = entity_path(request, namespace_param(request, credentials))
    action = await services_of(request).actions.delete(credentials.identity, path)
    return JsonResponse(action.to_json())


def activation_response(activation: Activation, *, result_only: bool) -> Response:
    """200 for success, 502 for application and developer errors, 500 for internal errors."""
    status = activation.response.status
    code = {
        ActivationStatus.SUCCESS: 200,
        ActivationStatus.APPLICATION_ERROR: 502,
        ActivationStatus.DEVELOPER_ERROR: 502,
        ActivationStatus.INTERNAL_ERROR: 500,
    }[status]
    result = activation.response.result
    headers = {ACTIVATION_HEADER: activation.activation_id}
    if result_only or isinstance(result, list):
        return JsonResponse(result if result is not None else {}, status_code=code, headers=headers)
    return JsonResponse(activation.to_json(), status_code=code, headers=headers)


@endpoint
async def invoke_action(request: Request) -> Response:
    """Invoke: 202 with the id, or (blocking) the activation within the wait."""
    credentials = await authenticate(request)
    services = services_of(request)
    path = entity_path(request, namespace_param(request, credentials))
    blocking = query_bool(request, "blocking")
    result_only = query_bool(request, "result")
    max_wait = services.settings.invoker.blocking_wait_ms
    wait_ms = query_int(
        request, "timeout", max_wait, detail=lambda _raw: f"Timeout must be number of milliseconds up to {max_wait}."
    )
    if not 1 <= wait_ms <= max_wait:
        raise BadRequestError(
            f"The query parameter 'timeout' was malformed:\nTimeout must be number of milliseconds up to {max_wait}."
        )
    body = await read_json(request, limit_bytes=services.settings.limits.max_payload_bytes)
    if not isinstance(body, dict):
        raise BadRequestError("The request content was malformed:\nparameters must be a JSON object")
    invoke = InvokeRequest(
        identity=credentials.identity,
        path=path,
        params=body,
        blocking=blocking,
        wait_ms=wait_ms,
        transaction_id=transaction_id(request),
    )
    with traced(request.app.state.tracer, "stockade.api.invoke", {"stockade.action": path.fqn}):
        result = await services.invoke.invoke(invoke)
    if result.activation is None:
        return JsonResponse(
            {"activationId": result.activation_id},
            status_code=202,
            headers={ACTIVATION_HEADER: result.activation_id},
        )
    return activation_response(result.activation, result_only=result_only)


async def action_entity(request: Request) -> Response:
    """Dispatch by method."""
    handler = {"GET": get_action, "PUT": put_action, "DELETE": delete_action, "POST": invoke_action}
    return await handler[request.method](request)


_BASE = "/api/v1/namespaces/{ns}/actions"
routes = [
    Route(_BASE, list_actions, methods=["GET"]),
    Route(_BASE + "/{pkg}/", list_actions, methods=["GET"]),
    Route(_BASE + "/{name}", action_entity, methods=["GET", "PUT", "DELETE", "POST"]),
    Route(_BASE + "/{pkg}/{name}", action_entity, methods=["GET", "PUT", "DELETE", "POST"]),
]
