"""ASGI middleware for /api/v1: transaction ids, CORS headers, OPTIONS, and the last-resort error.

Pure ASGI (no BaseHTTPMiddleware): it only touches ``http.response.start``, so streaming and
performance are unaffected.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any
from urllib.parse import quote, unquote

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stockade.api.problems import error_response
from stockade.edge import secure_headers
from stockade.errors import BadRequestError, InternalError, PlatformError
from stockade.security.sources import client_address, parse_networks
from stockade.services.audit import PLATFORM_CHAIN, AuditEvent
from stockade.store import AUDIT_INTENT

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


def is_change(scope: Scope) -> bool:
    """A control-plane change: PUT or DELETE on /api/v1/namespaces/..., or a changing POST."""
    parts = scope["path"].split("/")
    if len(parts) < 5 or parts[1:3] != ["api", "v1"] or parts[3] != "namespaces":
        return False
    method: str = scope["method"]
    collection = parts[5] if len(parts) > 5 else ""
    return method in ("PUT", "DELETE") or (method == "POST" and collection in _CHANGING_POSTS)


def audit_event(scope: Scope, status: int, transaction_id: str) -> AuditEvent:
    """The audit entry of this request with ``status`` as its outcome."""
    parts = scope["path"].split("/")
    method: str = scope["method"]
    is_web = parts[3] == "web"
    collection = parts[5] if len(parts) > 5 else ""
    state = scope.get("state", {})
    identity = state.get("identity")
    namespace = parts[4]
    if namespace == "_":
        namespace = identity.namespace if identity is not None else PLATFORM_CHAIN
    return AuditEvent(
        namespace=namespace,
        actor=identity.subject if identity is not None else "anonymous",
        action=f"{method} {'web' if is_web else collection}",
        resource=scope["path"],
        outcome=str(status),
        source=_source(scope),
        details={"transactionId": transaction_id},
    )


def audit_request(scope: Scope, status: int, transaction_id: str) -> None:
    """Record control-plane changes and every refusal (401 on web actions, 403, 429) in the audit log
    (written behind: a change that committed already has its entry, see ApiMiddleware)."""
    parts = scope["path"].split("/")
    # /api/v1/namespaces/{ns}/{collection}/... or /api/v1/web/{ns}/...
    if len(parts) < 5 or parts[1:3] != ["api", "v1"] or parts[3] not in ("namespaces", "web"):
        return
    is_web = parts[3] == "web"
    refused = status in (403, 429) or (is_web and status == 401)
    if not is_change(scope) and not refused:
        return
    services = _services(scope)
    if services is None:
        return
    services.audit.record(audit_event(scope, status, transaction_id))


def _source(scope: Scope) -> str:
    """The client address, from forwarded headers only when the peer is a trusted proxy."""
    client = scope.get("client")
    peer = client[0] if client else ""
    services = _services(scope)
    if services is None:
        return peer
    forwarded = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-forwarded-for"), None)
    return client_address(peer, forwarded, parse_networks(services.settings.auth.trusted_proxies))


def _services(scope: Scope) -> Any:
    app = scope.get("app")
    return getattr(getattr(app, "state", None), "services", None)


# A refused body (413) is read and discarded up to these bounds before the answer, so that a
# client still sending can read it; past them the connection is closed (an abusive client). The
# idle bound is below the edge server's body deadline, so a stalled client gets the 413, not a 408.
_DRAIN_MAX_BYTES = 64 * 1024 * 1024
_DRAIN_MAX_S = 15.0
_DRAIN_IDLE_S = 1.0


async def _drain(receive: Receive) -> None:
    """Read what the client is still sending of its body (bounded), so the answer is readable."""
    received = 0
    deadline = asyncio.get_running_loop().time() + _DRAIN_MAX_S
    while received < _DRAIN_MAX_BYTES:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), min(_DRAIN_IDLE_S, left))
        except TimeoutError:
            return
        if message["type"] != "http.request":
            return
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


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
        rewritten = packaged_namespace_path(scope)
        if rewritten is not None:
            scope = {**scope, "path": rewritten, "raw_path": quote(rewritten).encode()}
        path: str = scope["path"]
        https = scope.get("scheme") == "https"
        # Web actions and the API gateway (/api/gw/) answer CORS and OPTIONS themselves.
        is_web = path.startswith(("/api/v1/web/", "/api/gw/"))
        extra = [(b"x-request-id", tid.encode())]
        # The console is same-origin only: no CORS headers, ever.
        if not is_web and not (path == "/console" or path.startswith("/console/")):
            extra.extend(CORS_HEADERS)
        if scope["method"] == "OPTIONS" and path.startswith("/api/") and not is_web:
            headers = _with_edge_headers([(b"content-length", b"0")], extra, https)
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        started = False
        status = 500
        body_done = False
        expects_continue = any(
            name == b"expect" and value.lower() == b"100-continue" for name, value in scope.get("headers", ())
        )

        async def receive_tracked() -> Message:
            nonlocal body_done
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                message["headers"] = _with_edge_headers(list(message.get("headers", [])), extra, https)
                if status == 413 and not body_done:
                    # Invariant: a 413 is readable by a client still sending (its body is read and
                    # discarded, bounded); a client that waits for 100-continue or stalls sends
                    # nothing more, so the answer goes at once rather than after the edge's 408.
                    if not expects_continue:
                        await _drain(receive)
                    message["headers"].append((b"connection", b"close"))
            await send(message)

        intent = None
        token = None
        services = _services(scope) if is_change(scope) else None
        if services is not None:
            # Invariant: a change's audit entry commits in the change's own transaction (the
            # store adds it to the first write of a change table made by this request's task).
            intent = await services.audit.change_intent(lambda: audit_event(scope, 200, tid))
            token = AUDIT_INTENT.set(intent)
        try:
            if path.startswith("/api/v1/") and _ENCODED_SLASH.search(_names_of(scope.get("raw_path") or b"")):
                # A name never holds a slash: decoding one would move the request to another entity.
                raise BadRequestError(ENCODED_SLASH_MESSAGE)
            await self.app(scope, receive_tracked, send_with_headers)
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
            if token is not None:
                AUDIT_INTENT.reset(token)
            if intent is not None and services is not None and intent.committed:
                services.audit.outbox_written()
                if status != 200:  # committed, yet the request ended otherwise: say so too
                    audit_request(scope, status, tid)
            else:
                audit_request(scope, status, tid)
