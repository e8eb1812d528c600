"""Access management: roles, keys and the namespace policy (``/namespaces/{ns}/roles|keys|policy``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.api.context import authenticate, client_address, endpoint, namespace_param, read_json, services_of
from stockade.api.problems import JsonResponse
from stockade.domain import as_mapping
from stockade.errors import BadRequestError

__all__ = ["routes"]


@endpoint
async def roles(request: Request) -> Response:
    """GET the bindings of a namespace."""
    credentials = await authenticate(request)
    namespace = namespace_param(request, credentials)
    return JsonResponse(await services_of(request).access.list_roles(credentials.identity, namespace))


@endpoint
async def role_entity(request: Request) -> Response:
    """PUT ``{"role": ...}`` grants a role to a subject; DELETE revokes it."""
    credentials = await authenticate(request)
    services = services_of(request)
    namespace = namespace_param(request, credentials)
    subject = request.path_params["subject"]
    if request.method == "DELETE":
        await services.access.revoke_role(credentials.identity, namespace, subject)
        return JsonResponse({"subject": subject, "role": None})
    body = as_mapping(await read_json(request, limit_bytes=4096), "body")
    role = body.get("role")
    if not isinstance(role, str):
        raise BadRequestError("The request content was malformed:\n'role' must be a string")
    return JsonResponse(await services.access.grant(credentials.identity, namespace, subject, role))


@endpoint
async def keys(request: Request) -> Response:
    """GET lists keys (metadata); POST ``{"subject", "role"?}`` issues one (the secret is shown once)."""
    credentials = await authenticate(request)
    services = services_of(request)
    namespace = namespace_param(request, credentials)
    if request.method == "GET":
        return JsonResponse(await services.access.list_keys(credentials.identity, namespace))
    body = as_mapping(await read_json(request, limit_bytes=4096), "body")
    subject, role = body.get("subject"), body.get("role")
    if not isinstance(subject, str) or (role is not None and not isinstance(role, str)):
        raise BadRequestError("The request content was malformed:\n'subject' (and 'role', if given) must be strings")
    key = await services.access.issue_key(
        credentials.identity, namespace, subject, role, source=client_address(request)
    )
    return JsonResponse({"uuid": key.uuid, "key": key.token, "subject": subject, "namespace": namespace})


@endpoint
async def key_entity(request: Request) -> Response:
    """DELETE revokes a key of the namespace."""
    credentials = await authenticate(request)
    namespace = namespace_param(request, credentials)
    await services_of(request).access.revoke_key(credentials.identity, namespace, request.path_params["uuid"])
    return JsonResponse({"uuid": request.path_params["uuid"], "revoked": True})


@endpoint
async def policy(request: Request) -> Response:
    """GET the namespace policy; PUT ``{"protected": bool}``."""
    credentials = await authenticate(request)
    services = services_of(request)
    namespace = namespace_param(request, credentials)
    if request.method == "GET":
        return JsonResponse(await services.access.policy(credentials.identity, namespace))
    body = as_mapping(await read_json(request, limit_bytes=4096), "body")
    protected = body.get("protected")
    if not isinstance(protected, bool):
        raise BadRequestError("The request content was malformed:\n'protected' must be a boolean")
    return JsonResponse(await services.access.set_protected(credentials.identity, namespace, protected))


@endpoint
async def policy_lint(request: Request) -> Response:
    """Findings about broad or useless grants in every action's policy."""
    credentials = await authenticate(request)
    services = services_of(request)
    namespace = namespace_param(request, credentials)
    report = await services.actions.lint_policies(credentials.identity, namespace)
    return JsonResponse({"namespace": namespace, "actions": report})


_BASE = "/api/v1/namespaces/{ns}"
routes = [
    Route(_BASE + "/roles", roles, methods=["GET"]),
    Route(_BASE + "/roles/{subject}", role_entity, methods=["PUT", "DELETE"]),
    Route(_BASE + "/keys", keys, methods=["GET", "POST"]),
    Route(_BASE + "/keys/{uuid}", key_entity, methods=["DELETE"]),
    Route(_BASE + "/policy", policy, methods=["GET", "PUT"]),
    Route(_BASE + "/policy/lint", policy_lint, methods=["GET"]),
]
