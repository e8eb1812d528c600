"""ASGI middleware for /api/v1: transaction ids, CORS headers, OPTIONS, and the last-resort error.

Pure ASGI (no BaseHTTPMiddleware): it only touches ``http.response.start``, so streaming and
performance are unaffected.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import quote, unquote

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stockade.api.problems import error_response
from stockade.errors import InternalError
from stockade.security.sources import client_address, parse_networks
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
    forwarded = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-forwarded-for"), None)
    trusted = parse_networks(services.settings.auth.trusted_proxies)
    source = client_address(client[0] if client else "", forwarded, trusted)
    services.audit.record(
        AuditEvent(
            namespace=namespace,
            actor=identity.subject if identity is not None else "anonymous",
            action=f"{method} {'web' if is_web else collection}",
            resource=scope["path"],
            outcome=str(status),
            source=source,
            details={"transactionId": transaction_id},
        )
    )


_PACKAGED_NS = re.compile(rb"\A/api/v1/namespaces/([^/]*%2[Ff][^/]*)/actions(/[^/]*)?\Z")


def packaged_namespace_path(scope: Scope) -> str | None:
    """``/namespaces/ns%2Fpkg/actions[/a]`` (what clients send for packaged actions) as the
    route it means, ``/namespaces/ns/actions/pkg[/a]`` (``/pkg/`` lists the package); None otherwise.

    Only one encoded slash between two non-empty names is accepted; the names are then checked by
    the route like any other (so nothing here widens what a caller may reach).
    """
    raw = scope.get("raw_path")
    if not isinstance(raw, bytes) or b"%" not in raw:
        return None
    match = _PACKAGED_NS.match(raw.split(b"?", 1)[0])
    if match is None:
        return None
    parts = unquote(match.group(1).decode("latin-1")).split("/")
    if len(parts) != 2 or not all(parts):
        return None
    namespace, package = parts
    rest = unquote(match.group(2).decode("latin-1")) if match.group(2) else "/"
    if "/" in rest[1:]:
        return None
    return f"/api/v1/namespaces/{namespace}/actions/{package}{rest}"


class ApiMiddleware:
    """Adds X-Request-ID and CORS headers; answers OPTIONS on /api/v1 (not web) itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tid = transaction_id_for(scope)
        scope.setdefault("state", {})["transaction_id"] = tid
        rewritten = packaged_namespace_path(scope)
        if rewritten is not None:
            scope = {**scope, "path": rewritten, "raw_path": quote(rewritten).encode()}
        path: str = scope["path"]
        # Web actions and the API gateway (/api/gw/) answer CORS and OPTIONS themselves.
        is_web = path.startswith(("/api/v1/web/", "/api/gw/"))
        extra = [(b"x-request-id", tid.encode())]
        # The console is same-origin only: no CORS headers, ever.
        if not is_web and not (path == "/console" or path.startswith("/console/")):
            extra.extend(CORS_HEADERS)
        if scope["method"] == "OPTIONS" and path.startswith("/api/") and not is_web:
            await send({"type": "http.response.start", "status": 200, "headers": [*extra, (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        started = False
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("api.unhandled_error", transaction_id=tid)
            if started:
                raise
            response = error_response(InternalError(), tid)
            await response(scope, receive, send_with_headers)
        finally:
            audit_request(scope, status, tid)
