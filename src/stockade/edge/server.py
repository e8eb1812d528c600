"""The hardened HTTP/1.1 server: uvicorn's httptools (llhttp) protocol, with Stockade's limits.

llhttp in its strict mode already refuses ambiguous framing with a 400 and a closed connection:
``Content-Length`` together with ``Transfer-Encoding``, a duplicate, list-valued or non-decimal
``Content-Length``, an invalid chunk size, a transfer coding other than a final ``chunked``,
obs-fold, bare LF line ends and NUL in a header (docs/design/http-edge.md has the comparison
that chose it). ``HardenedHttpProtocol`` adds what it lacks:

- the request line is at most ``max_request_line_bytes`` (414), one header line at most
  ``max_header_field_bytes``, all of them at most ``max_header_bytes`` and ``max_header_count``
  (431); HTTP/0.9 and versions other than 1.0 and 1.1 are refused (400, 505);
- slow clients: the head must arrive within ``header_timeout_s`` (408 and closed), a body may
  pause at most ``body_idle_timeout_s`` (closed), an idle kept-alive connection is closed after
  ``keepalive_timeout_s``;
- at most ``max_connections`` open connections in all and ``max_connections_per_address`` from
  one address (an IPv6 client is its /64): the next is answered 503 and closed;
- every refusal is OpenWhisk-shaped: ``{"error": ..., "code": ...}`` with ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final, cast

import httptools
import structlog
import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from stockade.config import HttpSettings, Settings

__all__ = ["ConnectionCounter", "HardenedHttpProtocol", "address_key", "serve", "server_config"]

log = structlog.get_logger("stockade.edge")

BAD_REQUEST: Final = "The request is not valid HTTP/1.1."
URI_TOO_LONG: Final = "The request line is longer than allowed."
HEADERS_TOO_LARGE: Final = "The request's header fields are larger than allowed."
TIMEOUT: Final = "The request did not arrive in time."
BUSY: Final = "The server is currently unavailable (because it is overloaded or down for maintenance)."
VERSION: Final = "The HTTP version is not supported."
_REASONS: Final = {
    400: "Bad Request",
    408: "Request Timeout",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


class _Refusal(Exception):
    """Raised inside a parser callback to refuse the request with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@functools.lru_cache(maxsize=4096)
def address_key(host: str) -> str:
    """The key connections are counted under: the IPv4 address, or the IPv6 /64."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


SWEEP_INTERVAL_S: Final = 0.5


@dataclass(slots=True)
class ConnectionCounter:
    """Open connections, in all and per address, and the sweep that enforces their deadlines.

    One per server. Deadlines are checked by one periodic sweep (every ``SWEEP_INTERVAL_S``)
    rather than a timer per request, so keeping slow clients out costs the fast ones nothing.
    """

    max_total: int
    max_per_address: int
    total: int = 0
    per_address: Counter[str] = field(default_factory=Counter)
    live: set[HardenedHttpProtocol] = field(default_factory=set)
    _sweep: asyncio.TimerHandle | None = None

    def acquire(self, key: str) -> bool:
        """Count a new connection from ``key``; False (and nothing counted) past either cap."""
        if self.total >= self.max_total or self.per_address[key] >= self.max_per_address:
            return False
        self.total += 1
        self.per_address[key] += 1
        return True

    def release(self, key: str) -> None:
        """Forget one connection from ``key``."""
        self.total -= 1
        self.per_address[key] -= 1
        if self.per_address[key] <= 0:
            del self.per_address[key]

    def watch(self, protocol: HardenedHttpProtocol) -> None:
        """Check ``protocol``'s deadline on every sweep until it is dropped."""
        self.live.add(protocol)
        if self._sweep is None:
            self._sweep = protocol.loop.call_later(SWEEP_INTERVAL_S, self._run_sweep, protocol.loop)

    def drop(self, protocol: HardenedHttpProtocol) -> None:
        """Stop watching ``protocol``."""
        self.live.discard(protocol)

    def _run_sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for protocol in [p for p in self.live if p.deadline is not None and p.deadline <= now]:
            protocol.deadline_passed(now)
        self._sweep = loop.call_later(SWEEP_INTERVAL_S, self._run_sweep, loop) if self.live else None


def refusal_bytes(status: int, message: str) -> bytes:
    """A complete OpenWhisk-shaped error response that closes the connection."""
    body = json.dumps({"error": message, "code": secrets.token_hex(16)}).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n"
        "x-content-type-options: nosniff\r\n"
        "cache-control: no-store\r\n\r\n"
    )
    return head.encode("ascii") + body


class HardenedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header limits, slow-client timeouts and connection caps."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: HttpSettings,
        counter: ConnectionCounter,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.counter = counter
        self._key: str | None = None  # set once the connection is counted
        self._closed_by_us = False
        self._in_head = False
        self._head_bytes = 0
        self._header_count = 0
        self._header_bytes = 0
        # When the connection is refused unless it makes progress (checked by the counter's sweep):
        # the head must be complete by then ("head"), or the body must have moved ("body").
        self.deadline: float | None = None
        self._waiting_for: str = "head"

    # -- connection ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        key = address_key(self.client[0]) if self.client else ""
        if not self.counter.acquire(key):
            log.warning("edge.connection_refused", reason="connection cap", client=key)
            self._refuse(503, BUSY)
            return
        self._key = key
        self._expect_head()
        self.counter.watch(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.deadline = None
        self.counter.drop(self)
        if self._key is not None:
            self.counter.release(self._key)
            self._key = None
        super().connection_lost(exc)

    def _refuse(self, status: int, message: str, *, answer: bool = True) -> None:
        """Answer ``status`` (unless a response is under way, or not ``answer``) and close the connection."""
        self.deadline = None
        self._closed_by_us = True
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if answer and (cycle is None or cycle.response_complete or not cycle.response_started):
            self.transport.write(refusal_bytes(status, message))
        if cycle is not None and not cycle.response_complete:
            # The application's request is over: its reads end (http.disconnect), its writes are dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    # -- deadlines -------------------------------------------------------------------------------

    def _expect_head(self) -> None:
        self._waiting_for = "head"
        self.deadline = self.loop.time() + self.limits.header_timeout_s

    def _expect_body(self) -> None:
        self._waiting_for = "body"
        self.deadline = self.loop.time() + self.limits.body_idle_timeout_s

    def deadline_passed(self, now: float) -> None:
        """The sweep found this connection past its deadline: refuse it (408) and close."""
        if self._waiting_for == "body" and self.flow.read_paused:
            # The application is not reading (the body is buffered up to the high-water mark):
            # the client is not the slow one.
            self.deadline = now + self.limits.body_idle_timeout_s
            return
        # A waiting application's body read ends (http.disconnect) when the connection closes. A
        # body stalled after the application answered (say a 413) just closes: one answer a request.
        answered = self._waiting_for == "body" and self.cycle is not None and self.cycle.response_started
        self._refuse(408, TIMEOUT, answer=not answered)

    # -- parsing ---------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._closed_by_us or self.parser is None:
            return
        self._unset_keepalive_if_required()
        if self.deadline is not None and self._waiting_for == "body":
            self.deadline = self.loop.time() + self.limits.body_idle_timeout_s
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refusal = exc.__context__
            if isinstance(refusal, _Refusal):
                self._refuse(refusal.status, refusal.message)
            else:
                # E.g. a target that is not ASCII: the request is bad, not the server.
                log.warning("edge.bad_request", error=type(refusal).__name__)
                self._refuse(400, BAD_REQUEST)
            return
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            self._refuse(400, BAD_REQUEST)
            return
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_request_line_bytes + self.limits.max_header_bytes:
                self._refuse(431, HEADERS_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._header_bytes = 0
        # The head's clock starts with its first byte (the idle time before it is keep-alive's);
        # the first request's starts when the connection opens.
        if self.deadline is None or self._waiting_for != "head":
            self._expect_head()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_request_line_bytes:
            raise _Refusal(414, URI_TOO_LONG)

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value) + 4
        self._header_count += 1
        self._header_bytes += size
        if (
            size > self.limits.max_header_field_bytes
            or self._header_count > self.limits.max_header_count
            or self._header_bytes > self.limits.max_header_bytes
        ):
            raise _Refusal(431, HEADERS_TOO_LARGE)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        version = self.parser.get_http_version()
        if version == "0.9":
            raise _Refusal(400, BAD_REQUEST)
        if version not in ("1.0", "1.1"):
            raise _Refusal(505, VERSION)
        self._in_head = False
        self._expect_body()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.deadline = None
        super().on_message_complete()


def server_config(app: Any, settings: Settings, counter: ConnectionCounter | None = None) -> Config:
    """The uvicorn configuration of the hardened server for ``app``."""
    limits = settings.http
    counter = counter or ConnectionCounter(limits.max_connections, limits.max_connections_per_address)
    protocol = functools.partial(HardenedHttpProtocol, limits=limits, counter=counter)
    return uvicorn.Config(
        app,
        host=settings.api.host,
        port=settings.api.port,
        http=cast(Any, protocol),
        ws="none",
        loop="asyncio",
        log_level="warning",
        access_log=False,
        lifespan="on",
        server_header=False,
        date_header=True,
        # Forwarded headers are believed only from auth.trusted_proxies, by the app itself
        # (uvicorn's default trusts X-Forwarded-For from any local peer).
        proxy_headers=False,
        forwarded_allow_ips="",
        timeout_keep_alive=int(max(1, limits.keepalive_timeout_s)),
        ssl_certfile=settings.api.tls_cert_file or None,
        ssl_keyfile=settings.api.tls_key_file or None,
    )


def serve(app: Any, settings: Settings) -> None:
    """Serve ``app`` until interrupted."""
    asyncio.run(uvicorn.Server(server_config(app, settings)).serve())
