"""The console's frame: templates (autoescaped), the per-request context, session resume and
the same-origin + CSRF check every POST passes, and error pages.

Every page resumes the session (``ConsoleSessions.resume``); a refusal (403, 429) becomes a
security event and an audit entry, like the API's.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qs, quote

import structlog
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from stockade.console.security import (
    apply_headers,
    cookie_name,
    same_origin,
)
from stockade.domain import Identity, is_valid_name, validate_namespace
from stockade.errors import (
    BadRequestError,
    ForbiddenError,
    InternalError,
    PayloadTooLargeError,
    PlatformError,
    UnauthenticatedError,
    UnsupportedMediaTypeError,
)
from stockade.observability.events import EventType, SecurityEvent, Severity
from stockade.services import AuditEvent, ConsoleSessions, Services

__all__ = [
    "CSRF_REFUSED",
    "Ctx",
    "client_address",
    "error_response",
    "page",
    "read_form",
    "record_refusal",
    "render",
    "wants_html",
]


log = structlog.get_logger("stockade.console")

CSRF_REFUSED: Final = "The request was refused: it did not come from a console page of this origin."
MAX_FORM_BYTES: Final = 16 * 1024


_env = Environment(
    loader=PackageLoader("stockade.console", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(ms: Any) -> str:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


_env.filters["when"] = _when
_env.filters["pretty"] = _pretty
_env.filters["urlpart"] = lambda v: quote(str(v), safe="")


@dataclass(frozen=True, slots=True)
class Ctx:
    """One console request: who, which session, the services."""

    request: Request
    services: Services
    identity: Identity
    token: str
    form: dict[str, str]

    @property
    def csrf(self) -> str:
        """The session's CSRF token, for forms."""
        return ConsoleSessions.csrf_token(self.token)

    def namespace(self) -> str:
        """The URL's namespace (``_``: the caller's own)."""
        raw: str = self.request.path_params.get("ns", "_")
        return self.identity.namespace if raw == "_" else validate_namespace(raw)

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        """A page with the common frame."""
        return render(template, status, identity=self.identity, csrf=self.csrf, **values)


def render(template: str, status: int = 200, **values: Any) -> Response:
    values.setdefault("identity", None)
    values.setdefault("csrf", "")
    values.setdefault("ns", values["identity"].namespace if values["identity"] is not None else "")
    values.setdefault("section", "")
    html = _env.get_template(template).render(**values)
    return Response(html, status_code=status, media_type="text/html; charset=utf-8")


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def error_response(request: Request, exc: PlatformError, identity: Identity | None = None) -> Response:
    if exc.status >= 500 and exc.status != 503:
        exc = InternalError()
    tid = request.scope.get("state", {}).get("transaction_id", "")
    if wants_html(request):
        return render(
            "error.html", exc.status, identity=identity, message=exc.message, http_status=exc.status, code=tid
        )
    return JSONResponse({"error": exc.message, "code": tid}, status_code=exc.status)


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else ""


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body, at most MAX_FORM_BYTES; 415 for anything else."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise UnsupportedMediaTypeError("The console accepts application/x-www-form-urlencoded forms only.")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_FORM_BYTES:
        raise PayloadTooLargeError(f"Request larger than allowed: {int(length)} > {MAX_FORM_BYTES} bytes.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLargeError(f"Request larger than allowed: {len(body)} > {MAX_FORM_BYTES} bytes.")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise BadRequestError("The form could not be decoded.") from None
    return {k: v[0] for k, v in parsed.items()}


Handler = Callable[[Ctx], Awaitable[Response]]


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Resume the session (303 to sign-in for a browser, 401 otherwise); POSTs need same origin + CSRF."""

    async def wrapped(request: Request) -> Response:
        services: Services = request.app.state.services
        identity: Identity | None = None
        try:
            token = request.cookies.get(cookie_name(request)) or ""
            identity = await services.console.resume(token)
            form: dict[str, str] = {}
            if request.method == "POST":
                if not same_origin(request):
                    raise ForbiddenError(CSRF_REFUSED)
                form = await read_form(request)
                if not ConsoleSessions.csrf_matches(token, form.get("csrf")):
                    raise ForbiddenError(CSRF_REFUSED)
            response = await handler(Ctx(request, services, identity, token, form))
        except UnauthenticatedError as exc:
            if request.method == "GET" and wants_html(request):
                response = RedirectResponse("/console/login", status_code=303)
            else:
                response = error_response(request, exc)
        except PlatformError as exc:
            if exc.status in (403, 429):
                record_refusal(request, services, identity, exc)
            response = error_response(request, exc, identity)
        return apply_headers(response)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def record_refusal(request: Request, services: Services, identity: Identity | None, exc: PlatformError) -> None:
    """A console refusal is a security event and an audit entry, like the API's."""
    raw_ns = str(request.path_params.get("ns", ""))
    namespace = identity.namespace if identity is not None and raw_ns in ("", "_") else raw_ns
    if namespace and not is_valid_name(namespace):
        namespace = identity.namespace if identity is not None else ""
    subject = identity.subject if identity is not None else "anonymous"
    reason = "csrf" if exc.message == CSRF_REFUSED else "permission"
    path = request.url.path[:300]
    services.monitoring.events.emit(
        SecurityEvent(
            type=EventType.AUTHORIZATION_DENIED if exc.status == 403 else EventType.RATE_LIMITED,
            severity=Severity.MEDIUM if exc.status == 403 else Severity.LOW,
            time_ms=services.clock.now_ms(),
            namespace=namespace,
            subject=subject,
            source="console",
            details={"method": request.method, "path": path, "client": client_address(request), "reason": reason},
        )
    )
    services.audit.record(
        AuditEvent(
            namespace,
            subject,
            f"console {request.method}",
            path,
            str(exc.status),
            client_address(request),
            {"reason": reason},
        )
    )
    log.info("console.refused", path=path, subject=subject, reason=reason)
