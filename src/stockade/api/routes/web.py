"""``/api/v1/web/{ns}/{pkg}/{action}[.ext][/rest]``: web actions, run as their owner.

Authentication is optional here (the action decides with ``require-whisk-auth``); responses get
secure headers by default and Set-Cookie is dropped unless the action allows cookies.
"""

from __future__ import annotations

import hmac

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.api.context import client_address, json_limits, read_body, report_refusal, services_of, transaction_id
from stockade.api.problems import JsonResponse, error_response
from stockade.domain import Action, EntityPath, Identity, is_valid_name
from stockade.errors import NotFoundError, PlatformError, UnauthenticatedError
from stockade.observability.events import EventType, SecurityEvent, Severity
from stockade.services import InvokeRequest
from stockade.services.web import (
    UnsafeResponseError,
    WebRequest,
    WebResponse,
    response_problem,
    split_extension,
    web_arguments,
    web_response,
)

__all__ = ["routes"]

log = structlog.get_logger("stockade.web")

WEB_AUTH_FAILED = "Authentication is possible but has failed or not yet been provided."
NOT_READY = "Response not yet ready."
CORS_METHODS = "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
CORS_DEFAULT_HEADERS = "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent"
ALLOW_COOKIES_ANNOTATION = "allow-cookies"


def _cors_headers(request: Request) -> list[tuple[str, str]]:
    return [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-methods", CORS_METHODS),
        ("access-control-allow-headers", request.headers.get("access-control-request-headers", CORS_DEFAULT_HEADERS)),
    ]


async def _resolve(request: Request) -> tuple[Identity, EntityPath, Action, str]:
    """The owner, the action and the extension; 404 for anything missing or not web-exported."""
    services = services_of(request)
    ns = request.path_params["ns"]
    pkg = request.path_params["pkg"]
    name, extension = split_extension(request.path_params["action"])
    if ns == "_" or not all(is_valid_name(p) for p in (ns, pkg, name)):
        raise NotFoundError()
    # Runs as the namespace itself (like gateway routes), whoever its owners are; a namespace
    # that does not exist ends in the same 404 as a missing action, with no extra store read.
    owner = Identity(subject=ns, namespace=ns, key_uuid="", kind="owner")
    path = EntityPath(ns, name, None if pkg == "default" else pkg)
    try:
        resolved = await services.catalog.resolve_action(owner, path)
    except PlatformError as exc:
        # Missing, forbidden or wrong-collection entities all look the same from the web.
        if exc.status in (403, 404, 409):
            raise NotFoundError() from None
        raise
    if resolved.action.annotation("web-export") is not True:
        raise NotFoundError()
    return owner, path, resolved.action, extension


async def _check_web_auth(request: Request, action: Action) -> str | None:
    """Apply ``require-whisk-auth``; returns the caller's namespace when credentials are valid."""
    services = services_of(request)
    credentials = await services.auth.try_authenticate(
        request.headers.get("authorization"), source=client_address(request)
    )
    user = credentials.identity.namespace if credentials else None
    required = action.annotation("require-whisk-auth")
    if required is None or required is False:
        return user
    if required is True:
        if credentials is None:
            raise UnauthenticatedError(WEB_AUTH_FAILED)
        return user
    if isinstance(required, str) or (isinstance(required, int) and not isinstance(required, bool)):
        presented = request.headers.get("x-require-whisk-auth", "")
        # Invariant: compared in constant time, so response timing reveals nothing of the secret.
        if not hmac.compare_digest(presented.encode(), str(required).encode()):
            raise UnauthenticatedError(WEB_AUTH_FAILED)
        return user
    raise UnauthenticatedError(WEB_AUTH_FAILED)


def _finish(request: Request, action: Action, response: WebResponse, activation_id: str | None) -> Response:
    headers = list(response.headers)
    if action.annotation(ALLOW_COOKIES_ANNOTATION) is not True and any(k == "set-cookie" for k, _ in headers):
        log.warning("web.cookie_dropped", action=action.path.fqn, activation_id=activation_id)
        headers = [(k, v) for k, v in headers if k != "set-cookie"]
    # Secure headers are added to every response by ApiMiddleware (edge.secure_headers).
    if action.annotation("web-custom-options") is not True:
        headers = [(k, v) for k, v in headers if not k.startswith("access-control-")] + _cors_headers(request)
    if activation_id:
        headers.append(("x-openwhisk-activation-id", activation_id))
    out = Response(response.body, status_code=response.status)
    # Names and values were vetted (edge.check_action_headers): tokens, Latin-1, no control characters.
    out.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers] + [
        (b"content-length", str(len(response.body)).encode())
    ]
    return out


def _report_web_auth_failure(request: Request, action: Action) -> None:
    """``require-whisk-auth`` refused the request (invalid API keys were reported by the Authenticator)."""
    services = services_of(request)
    services.monitoring.events.emit(
        SecurityEvent(
            type=EventType.AUTH_FAILED,
            severity=Severity.LOW,
            time_ms=services.clock.now_ms(),
            namespace=action.path.namespace,
            action=action.path.key,
            source="web",
            details={"reason": "require-whisk-auth not satisfied", "client": client_address(request)},
        )
    )


async def web_action(request: Request) -> Response:
    """Run a web action and map its result to an HTTP response."""
    tid = transaction_id(request)
    services = services_of(request)
    action: Action | None = None
    activation_id: str | None = None
    try:
        owner, path, action, extension = await _resolve(request)
        custom_options = action.annotation("web-custom-options") is True
        if request.method == "OPTIONS" and not custom_options:
            return _finish(request, action, WebResponse(200), None)
        user = await _check_web_auth(request, action) if request.method != "OPTIONS" else None
        body = await read_body(request, services.settings.limits.max_payload_bytes)
        raw = action.annotation("raw-http") is True
        args, supplied = web_arguments(
            WebRequest(
                method=request.method,
                headers={k.lower(): v for k, v in request.headers.items()},
                path="/" + request.path_params["rest"] if "rest" in request.path_params else "",
                query_string=request.url.query,
                body=body,
                user=user,
                json_limits=json_limits(request),
            ),
            raw=raw,
        )
        result = await services.invoke.invoke(
            InvokeRequest(
                identity=owner,
                path=path,
                params=args,
                blocking=True,
                wait_ms=services.settings.invoker.blocking_wait_ms,
                transaction_id=tid,
                seal="none" if raw else "web",
                supplied_keys=supplied,
                response_check=lambda activation: response_problem(activation, extension),
            )
        )
        activation_id = result.activation_id
        if result.activation is None:
            not_ready = JsonResponse({"error": NOT_READY, "code": tid}, status_code=202)
            not_ready.headers["x-openwhisk-activation-id"] = activation_id
            return not_ready
        return _finish(request, action, web_response(result.activation, extension), activation_id)
    except PlatformError as exc:
        if isinstance(exc, UnsafeResponseError):
            log.warning("web.response_refused", reason=exc.reason, activation_id=activation_id)
        report_refusal(request, exc, action=action.path.key if action is not None else "")
        if exc.status == 401 and action is not None:
            _report_web_auth_failure(request, action)
        response = error_response(exc, tid)
        if exc.status == 401:
            del response.headers["www-authenticate"]
        if activation_id:
            response.headers["x-openwhisk-activation-id"] = activation_id
        if action is not None and action.annotation("web-custom-options") is not True:
            for key, value in _cors_headers(request):
                response.headers[key] = value
        return response


_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
routes = [
    Route("/api/v1/web/{ns}/{pkg}/{action}", web_action, methods=_METHODS),
    Route("/api/v1/web/{ns}/{pkg}/{action}/{rest:path}", web_action, methods=_METHODS),
]
