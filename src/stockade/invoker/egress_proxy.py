"""The egress allowlist proxy: one asyncio proxy per platform process, one unix socket per sandbox.

A sandbox whose action has egress grants gets a lease: a unix socket in a 0700 directory, bound
into the sandbox at /run/stockade/egress.sock, where the runner's forwarder (127.0.0.1:3128 inside)
relays the action's proxy connections. The proxy speaks HTTP CONNECT and plain-HTTP forward
proxying (absolute-form ``GET http://host/path``), and for every connection:

1. checks the host name and port against the lease's EgressPolicy *before* resolving it;
2. resolves the name on the host (the sandbox has no resolver and no route);
3. checks every resolved address and connects only to one that passed, by address: there is no
   second lookup, so DNS rebinding between check and connect cannot happen;
4. relays bytes within the limits (connections per sandbox and in all, bytes per connection, idle).

It never follows redirects: a 3xx goes back to the client, whose next request to the new location
comes through the proxy again and is checked like any other. Every refusal is logged as
``security.egress_denied`` with the action, activation id, destination and reason, counted, and
emitted as an ``egress.denied`` SecurityEvent when an event sink is wired (``set_event_sink``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, final
from urllib.parse import urlsplit

import structlog

from stockade.domain import Clock, SystemClock
from stockade.invoker.egress_policy import (
    Address,
    Denial,
    EgressData,
    EgressPolicy,
    load_egress_data,
    normalize_address,
)
from stockade.observability.events import EventSink, NullEventSink, egress_denied

__all__ = ["EgressLease", "EgressLimits", "EgressProxy", "EgressStatistics", "Resolver", "system_resolver"]

_log = structlog.get_logger("stockade.egress")

# Resolves a host name to addresses (in preference order); injectable so tests never use real DNS.
Resolver = Callable[[str, int], Awaitable[list[Address]]]

_HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"te",
        b"trailer",
    }
)
_CHUNK: Final = 64 * 1024


async def system_resolver(host: str, port: int) -> list[Address]:
    """The host's resolver (getaddrinfo), addresses deduplicated in the order it returned them."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[Address] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        try:
            address = normalize_address(ipaddress.ip_address(sockaddr[0]))
        except ValueError:
            continue  # not an IP address family we connect to
        if address not in out:
            out.append(address)
    return out


@final
@dataclass(frozen=True, slots=True)
class EgressLimits:
    """What one sandbox (and the whole proxy) may use."""

    max_connections_per_sandbox: int = 32
    max_connections: int = 1024
    # Both directions together; the connection is cut past it.
    max_bytes_per_connection: int = 256 * 1024 * 1024
    max_head_bytes: int = 16 * 1024
    head_timeout_s: float = 10.0
    resolve_timeout_s: float = 5.0
    connect_timeout_s: float = 10.0
    # A connection with no bytes either way for this long is closed.
    idle_timeout_s: float = 120.0


@final
@dataclass(frozen=True, slots=True)
class EgressStatistics:
    """Counters for /metrics (the counter hook: denials by code, connections, bytes)."""

    sockets_open: int
    connections_open: int
    connections_total: int
    denied_total: int
    denied_by_code: dict[str, int]
    bytes_total: int


@final
@dataclass(eq=False, slots=True)
class EgressLease:
    """One sandbox's socket, with the policy and the identity its connections are logged under."""

    path: Path
    policy: EgressPolicy
    namespace: str
    action: str  # the action's fully qualified name
    label: str
    # The activation running now; the invoker updates it at the start of every run.
    activation_id: str = ""
    connections_open: int = 0
    connections_total: int = 0
    denied_total: int = 0
    bytes_total: int = 0
    server: asyncio.AbstractServer | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    on_close: Callable[[EgressLease], Awaitable[None]] | None = None
    is_closed: bool = False

    async def close(self) -> None:
        """Stop accepting, cut every open connection and remove the socket. Idempotent."""
        if self.is_closed:
            return
        self.is_closed = True
        if self.on_close is not None:
            await self.on_close(self)


class _Refused(Exception):
    """Internal: answer the client with ``status`` and stop (a denial is already logged)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class _ByteLimit(Exception):
    """Internal: a connection went past max_bytes_per_connection."""


@dataclass(slots=True)
class _Relay:
    """Shared state of one relayed connection: bytes spent, last activity."""

    budget: int
    spent: int = 0
    last_active: float = field(default_factory=time.monotonic)


@final
class EgressProxy:
    """The host side of allowlisted egress. One per platform process; ``close`` at shutdown."""

    def __init__(
        self,
        *,
        data: EgressData | None = None,
        resolver: Resolver = system_resolver,
        limits: EgressLimits | None = None,
        events: EventSink | None = None,
        clock: Clock | None = None,
        socket_dir: Path | None = None,
    ) -> None:
        """Args:
        data: presets and blocked ranges (default: the packaged policies/egress.json).
        resolver: host-name resolution (default: the host's getaddrinfo).
        events: where denials go as SecurityEvents (settable later: ``set_event_sink``).
        socket_dir: where sockets are made (default: a fresh 0700 directory under the temp dir;
            keep the path short: a unix socket path holds at most 107 bytes).
        """
        self.data = data if data is not None else load_egress_data()
        self._resolver = resolver
        self.limits = limits or EgressLimits()
        self._events: EventSink = events or NullEventSink()
        self._clock: Clock = clock or SystemClock()
        self._socket_dir = socket_dir
        self._own_dir = socket_dir is None
        self._leases: set[EgressLease] = set()
        self._connections_open = 0
        self._connections_total = 0
        self._denied: dict[str, int] = {}
        self._bytes_total = 0

    def set_event_sink(self, sink: EventSink) -> None:
        """Route denials to ``sink`` (the services' event pipeline, wired after both exist)."""
        self._events = sink

    def statistics(self) -> EgressStatistics:
        """Counters since this proxy was made."""
        return EgressStatistics(
            sockets_open=len(self._leases),
            connections_open=self._connections_open,
            connections_total=self._connections_total,
            denied_total=sum(self._denied.values()),
            denied_by_code=dict(self._denied),
            bytes_total=self._bytes_total,
        )

    def _directory(self) -> Path:
        if self._socket_dir is None:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="stockade-egress-"))
        os.chmod(self._socket_dir, 0o700)
        return self._socket_dir

    async def open(self, policy: EgressPolicy, *, namespace: str, action: str, label: str = "") -> EgressLease:
        """A new socket for one sandbox of ``action``; its path goes into SandboxSpec.egress_socket.

        Invariant: the directory is 0700 (only the platform's uid reaches the socket on the host);
        the socket itself is 0666 so the sandbox's uid (a per-slot host uid in root mode) may connect
        through its bind mount.
        """
        if policy.is_empty:
            raise ValueError("an empty egress policy gets no socket: the sandbox has no network")
        path = self._directory() / f"{secrets.token_hex(8)}.sock"
        lease = EgressLease(path, policy, namespace, action, label, on_close=self._close_lease)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            lease.tasks.add(task)
            try:
                await self._serve(lease, reader, writer)
            except asyncio.CancelledError:
                # Closed with its lease. Not re-raised: Python 3.11's stream server callback calls
                # task.exception() on a cancelled task and logs a spurious error.
                return
            finally:
                lease.tasks.discard(task)

        lease.server = await asyncio.start_unix_server(serve, str(path), limit=self.limits.max_head_bytes)
        os.chmod(path, 0o666)  # noqa: S103 - the sandbox uid must connect; the 0700 directory guards the host side
        self._leases.add(lease)
        _log.debug("egress.socket_opened", path=str(path), action=action, sandbox=label)
        return lease

    async def _close_lease(self, lease: EgressLease) -> None:
        self._leases.discard(lease)
        if lease.server is not None:
            lease.server.close()
        for writer in list(lease.writers):
            writer.close()
        for task in list(lease.tasks):
            task.cancel()
        if lease.tasks:
            await asyncio.wait(list(lease.tasks), timeout=5)
        with contextlib.suppress(FileNotFoundError):
            lease.path.unlink()
        _log.debug("egress.socket_closed", path=str(lease.path), action=lease.action)

    async def close(self) -> None:
        """Close every lease and remove the socket directory this proxy made."""
        for lease in list(self._leases):
            await lease.close()
        if self._own_dir and self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    # -- one connection --------------------------------------------------------------------------

    async def _serve(self, lease: EgressLease, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lease.writers.add(writer)
        # Counted from accept, so a flood of slow clients hits the limit too.
        over_limit = (
            lease.connections_open >= self.limits.max_connections_per_sandbox
            or self._connections_open >= self.limits.max_connections
        )
        lease.connections_open += 1
        lease.connections_total += 1
        self._connections_open += 1
        self._connections_total += 1
        try:
            await self._proxy(lease, reader, writer, over_limit=over_limit)
        except _Refused as refused:
            await self._answer(reader, writer, refused.status, refused.text)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass  # the client went away or stalled: nothing to answer
        finally:
            lease.connections_open -= 1
            self._connections_open -= 1
            lease.writers.discard(writer)
            writer.close()

    async def _proxy(
        self, lease: EgressLease, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, over_limit: bool
    ) -> None:
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for wraps every await in a new task.
            async with asyncio.timeout(self.limits.head_timeout_s):
                head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.LimitOverrunError, ValueError):
            raise _Refused(431, "request head too large") from None
        method, host, port, forward = self._parse_head(head)
        if over_limit:
            self._deny(lease, host, port, None, Denial("connection_limit", "too many open connections"))
            raise _Refused(429, "denied (connection_limit)")
        target, denial = lease.policy.check_destination(host, port)
        if denial is not None:
            self._deny(lease, host, port, None, denial)
            raise _Refused(403, f"denied ({denial.code})")
        candidates = await self._allowed_addresses(lease, target, port)
        upstream_reader, upstream_writer = await self._connect(lease, host, candidates, port)
        try:
            if method == b"CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                upstream_writer.write(forward)
            _log.debug(
                "egress.allowed",
                action=lease.action,
                activation_id=lease.activation_id,
                destination=f"{host}:{port}",
                address=str(candidates[0]),
            )
            await self._relay(lease, reader, writer, upstream_reader, upstream_writer, host, port)
        finally:
            upstream_writer.close()

    def _parse_head(self, head: bytes) -> tuple[bytes, str, int, bytes]:
        """(method, host, port, head to send upstream) from a proxy request head; _Refused if malformed."""
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise _Refused(400, "malformed request line")
        method, target, version = parts
        try:
            text = target.decode("ascii")
        except UnicodeDecodeError:
            raise _Refused(400, "malformed request target") from None
        if method == b"CONNECT":
            host, sep, port_text = text.rpartition(":")
            if not sep or not port_text.isdigit():
                raise _Refused(400, "CONNECT needs host:port")
            return method, host.removeprefix("[").removesuffix("]"), int(port_text), b""
        try:
            url = urlsplit(text)
            port = url.port or 80
        except ValueError:
            raise _Refused(400, "malformed request target") from None
        if url.scheme.lower() != "http" or not url.hostname:
            raise _Refused(400, "only CONNECT and absolute http:// requests are proxied")
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        headers = [line for line in lines[1:] if line.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP]
        if not any(line.split(b":", 1)[0].strip().lower() == b"host" for line in headers):
            headers.insert(0, b"Host: " + url.netloc.encode("ascii"))
        # One request per proxied connection: the upstream closes after its response, so a second
        # request on a kept-alive client connection can never reach this host unchecked.
        forward = b"\r\n".join([b" ".join([method, path.encode("ascii"), version]), *headers, b"Connection: close"])
        return method, url.hostname, port, forward + b"\r\n\r\n"

    async def _allowed_addresses(self, lease: EgressLease, target: str | Address, port: int) -> list[Address]:
        if not isinstance(target, str):
            denial = lease.policy.check_address(target, port, by_name=False)
            if denial is not None:
                self._deny(lease, str(target), port, target, denial)
                raise _Refused(403, f"denied ({denial.code})")
            return [target]
        try:
            async with asyncio.timeout(self.limits.resolve_timeout_s):
                addresses = await self._resolver(target, port)
        except (OSError, TimeoutError):
            _log.info("egress.unresolved", action=lease.action, activation_id=lease.activation_id, host=target)
            raise _Refused(502, "cannot resolve host") from None
        allowed: list[Address] = []
        first: tuple[Address, Denial] | None = None
        for address in map(normalize_address, addresses):
            denial = lease.policy.check_address(address, port, by_name=True)
            if denial is None:
                allowed.append(address)
            elif first is None:
                first = (address, denial)
        if not allowed:
            if first is None:
                raise _Refused(502, "cannot resolve host")
            self._deny(lease, target, port, first[0], first[1])
            raise _Refused(403, f"denied ({first[1].code})")
        return allowed

    async def _connect(
        self, lease: EgressLease, host: str, candidates: list[Address], port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to the first candidate that answers, by address (never by name again)."""
        for address in candidates:
            try:
                async with asyncio.timeout(self.limits.connect_timeout_s):
                    return await asyncio.open_connection(str(address), port)
            except (OSError, TimeoutError) as exc:
                _log.info(
                    "egress.connect_failed",
                    action=lease.action,
                    activation_id=lease.activation_id,
                    destination=f"{host}:{port}",
                    address=str(address),
                    error=str(exc) or type(exc).__name__,
                )
        raise _Refused(502, "cannot connect to host")

    async def _relay(
        self,
        lease: EgressLease,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        upstream_reader: asyncio.StreamReader,
        upstream_writer: asyncio.StreamWriter,
        host: str,
        port: int,
    ) -> None:
        relay = _Relay(self.limits.max_bytes_per_connection)
        pumps = [
            asyncio.ensure_future(self._pump(lease, client_reader, upstream_writer, relay)),
            asyncio.ensure_future(self._pump(lease, upstream_reader, client_writer, relay)),
        ]
        try:
            await asyncio.gather(*pumps)
        except _ByteLimit:
            self._deny(
                lease, host, port, None, Denial("byte_limit", f"connection passed {relay.budget} bytes and was cut")
            )
        except (OSError, TimeoutError):
            pass
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    async def _pump(
        self, lease: EgressLease, source: asyncio.StreamReader, sink: asyncio.StreamWriter, relay: _Relay
    ) -> None:
        idle_s = self.limits.idle_timeout_s
        while True:
            try:
                async with asyncio.timeout(idle_s):
                    data = await source.read(_CHUNK)
            except TimeoutError:
                # Idle only when neither direction moved: a long download keeps its upload side open.
                if time.monotonic() - relay.last_active >= idle_s:
                    raise
                continue
            if not data:
                if sink.can_write_eof():
                    with contextlib.suppress(OSError):
                        sink.write_eof()
                return
            relay.spent += len(data)
            relay.last_active = time.monotonic()
            if relay.spent > relay.budget:
                raise _ByteLimit
            lease.bytes_total += len(data)
            self._bytes_total += len(data)
            sink.write(data)
            await sink.drain()

    # -- answers and denials ---------------------------------------------------------------------

    @staticmethod
    async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int, text: str) -> None:
        # Deliberately terse: the client learns the denial code, never resolved addresses.
        reasons = {
            400: "Bad Request",
            403: "Forbidden",
            429: "Too Many Requests",
            431: "Request Header Fields Too Large",
            502: "Bad Gateway",
        }
        body = f"stockade egress proxy: {text}\n".encode()
        head = (
            f"HTTP/1.1 {status} {reasons.get(status, 'Error')}\r\nContent-Type: text/plain\r\n"
            f"X-Stockade-Egress: {'denied' if status in (403, 429) else 'error'}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError, TimeoutError):
            writer.write(head.encode() + body)
            await writer.drain()
            writer.write_eof()
            # Lingering close: read what the client still sends (a request body) for a moment, so
            # closing with unread data does not reset the connection before it reads the answer.
            async with asyncio.timeout(1.0):
                for _ in range(16):
                    if not await reader.read(_CHUNK):
                        break

    def _deny(self, lease: EgressLease, host: str, port: int, address: Address | None, denial: Denial) -> None:
        """Log, count and emit one refusal."""
        lease.denied_total += 1
        self._denied[denial.code] = self._denied.get(denial.code, 0) + 1
        destination = f"{host}:{port}" if host else ""
        _log.warning(
            "security.egress_denied",
            namespace=lease.namespace,
            action=lease.action,
            activation_id=lease.activation_id,
            destination=destination,
            address=str(address) if address is not None else "",
            code=denial.code,
            reason=denial.reason,
        )
        relative = lease.action.split("/", 2)[2] if lease.action.count("/") >= 2 else lease.action
        event = egress_denied(
            namespace=lease.namespace,
            action=relative,
            activation_id=lease.activation_id,
            host=host,
            port=port,
            time_ms=self._clock.now_ms(),
        )
        details = {
            **event.details,
            "code": denial.code,
            "reason": denial.reason[:300],
            "address": str(address) if address is not None else "",
            "fqn": lease.action,
        }
        self._events.emit(dataclasses.replace(event, details=details))
