"""ASGI middleware for /api/v1: transaction ids, CORS headers, OPTIONS, and the last-resort error.

Pure ASGI (no BaseHTTPMiddleware): it only touches ``http.response.start``, so streaming and
performance are unaffected.
"""

from __future__ import annotations

import re
import secrets

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stockade.api.problems import error_response
from stockade.edge import secure_headers
from stockade.errors import BadRequestError, InternalError, PlatformError
from stockade.services.audit import PLATFORM_CHAIN, AuditEvent

__all__ = ["ApiMiddleware"]

log = structlog.get_logger("stockade.api")

CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, DELETE, POST, PUT, HEAD"),
    (
        b"access-control-allow-headers",
        b"Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent",
    ),
]
_ENCODED_SLASH = re.compile(rb"%2[fF]")
ENCODED_SLASH_MESSAGE = "The request path holds an encoded slash (%2F); names cannot contain '/'."
_TID_RE = re.compile(r"\A[A-Za-z0-9._:-]{1,128}\Z")


def transaction_id_for(scope: Scope) -> str:
    """The client's X-Request-ID when acceptable (not ``sid_``-prefixed), else a random 32-char id."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _TID_RE.match(text) and not text.startswith("sid_"):
                return text
    return secrets.token_hex(16)


# POSTs that change state (the others invoke or fire, and are recorded as activations).
_CHANGING_POSTS = frozenset({"rules", "secrets", "roles", "keys", "policy"})


def audit_request(scope: Scope, status: int, transaction_id: str) -> None:
    """Record control-plane changes and every refusal (401 on web actions, 403, 429) in the audit log."""
    parts = scope["path"].split("/")
    # /api/v1/namespaces/{ns}/{collection}/... or /api/v1/web/{ns}/...
    if len(parts) < 5 or parts[1:3] != ["api", "v1"] or parts[3] not in ("namespaces", "web"):
        return
    method: str = scope["method"]
    is_web = parts[3] == "web"
    collection = parts[5] if len(parts) > 5 else ""
    changes = not is_web and (method in ("PUT", "DELETE") or (method == "POST" and collection in _CHANGING_POSTS))
    refused = status in (403, 429) or (is_web and status == 401)
    if not changes and not refused:
        return
    app = scope.get("app")
    services = getattr(getattr(app, "state", None), "services", None)
    if services is None:
        return
    state = scope.get("state", {})
    identity = state.get("identity")
    namespace = parts[4]
    if namespace == "_":
        namespace = identity.namespace if identity is not None else PLATFORM_CHAIN
    client = scope.get("client")
    services.audit.record(
        AuditEvent(
            namespace=namespace,
            actor=identity.subject if identity is not None else "anonymous",
            action=f"{method} {'web' if is_web else collection}",
            resource=scope["path"],
            outcome=str(status),
            source=client[0] if client else "",
            details={"transactionId": transaction_id},
        )
    )


def _names_of(raw_path: bytes) -> bytes:
    """The part of a raw /api/v1 path made of names: all of it, but for a web action only
    ``{ns}/{pkg}/{action}`` (what follows is the action's own path, ``__ow_path``)."""
    if raw_path.startswith(b"/api/v1/web/"):
        return b"/".join(raw_path.split(b"/")[4:7])
    return raw_path


def _encoded(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def _with_edge_headers(
    headers: list[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]], https: bool
) -> list[tuple[bytes, bytes]]:
    """``headers`` plus ``extra`` plus the secure headers the response does not set itself."""
    present = [name.decode("latin-1").lower() for name, _ in headers]
    content_type = next((v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), "")
    # The one place secure headers are decided: REST, web actions and the gateway alike.
    return [*headers, *extra, *_encoded(secure_headers(present, content_type=content_type, https=https))]


class ApiMiddleware:
    """Adds X-Request-ID, CORS and the secure headers; answers OPTIONS on /api/v1 (not web) itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tid = transaction_id_for(scope)
        scope.setdefault("state", {})["transaction_id"] = tid
        path: str = scope["path"]
        https = scope.get("scheme") == "https"
        # Web actions and the API gateway (/api/gw/) answer CORS and OPTIONS themselves.
        is_web = path.startswith(("/api/v1/web/", "/api/gw/"))
        extra = [(b"x-request-id", tid.encode())]
        if not is_web:
            extra.extend(CORS_HEADERS)
        if scope["method"] == "OPTIONS" and path.startswith("/api/") and not is_web:
            headers = _with_edge_headers([(b"content-length", b"0")], extra, https)
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        started = False
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                message["headers"] = _with_edge_headers(list(message.get("headers", [])), extra, https)
            await send(message)

        try:
            if path.startswith("/api/v1/") and _ENCODED_SLASH.search(_names_of(scope.get("raw_path") or b"")):
                # A name never holds a slash: decoding one would move the request to another entity.
                raise BadRequestError(ENCODED_SLASH_MESSAGE)
            await self.app(scope, receive, send_with_headers)
        except PlatformError as exc:
            if started:
                raise
            await error_response(exc, tid)(scope, receive, send_with_headers)
        except Exception:
            log.exception("api.unhandled_error", transaction_id=tid)
            if started:
                raise
            response = error_response(InternalError(), tid)
            await response(scope, receive, send_with_headers)
        finally:
            audit_request(scope, status, tid)
