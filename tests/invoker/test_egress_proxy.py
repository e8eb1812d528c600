"""The egress proxy on its own: protocol handling, decisions, limits, events and lease lifecycle.

Everything here stays on loopback: upstream servers listen on 127.0.0.1 and the fake resolver maps
test names to loopback addresses, which a CIDR grant (127.0.0.1/32) unlocks where a test needs it.
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
import structlog

from stockade.invoker.egress_policy import parse_egress
from stockade.invoker.egress_proxy import EgressLimits, EgressProxy
from stockade.observability.events import EventType
from stockade.testing import FrozenClock


class Events:
    def __init__(self):
        self.events = []

    def emit(self, event):
        self.events.append(event)


class Resolver:
    """Names to addresses from a table; records every lookup; optionally rebinding after the first."""

    def __init__(self, table):
        self.table = table
        self.calls = []

    async def __call__(self, host, port):
        self.calls.append(host)
        if host not in self.table:
            raise OSError(-2, "Name or service not known")
        answer = self.table[host]
        if callable(answer):
            answer = answer(len(self.calls))
        return [ipaddress.ip_address(a) for a in answer]


class Upstream:
    """A loopback server: answers HTTP requests (recording their heads) or echoes raw bytes."""

    def __init__(self, mode="http", body=b"hello"):
        self.mode = mode
        self.body = body
        self.heads = []
        self.accepted = 0

    async def handle(self, reader, writer):
        self.accepted += 1
        try:
            if self.mode == "echo":
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            else:
                self.heads.append(await reader.readuntil(b"\r\n\r\n"))
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(self.body) + self.body
                )
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()


@pytest.fixture
def events():
    return Events()


@pytest.fixture
async def make_proxy(events, tmp_path):
    made = []

    def make(table=None, **limits):
        resolver = Resolver(table or {})
        proxy = EgressProxy(
            resolver=resolver,
            limits=EgressLimits(**limits),
            events=events,
            clock=FrozenClock(1_700_000_000_000),
            socket_dir=tmp_path / "sockets",
        )
        (tmp_path / "sockets").mkdir(exist_ok=True)
        made.append(proxy)
        return proxy, resolver

    yield make
    for proxy in made:
        await proxy.close()


async def lease_for(proxy, *grants, activation_id="a" * 32):
    lease = await proxy.open(parse_egress(grants, proxy.data), namespace="guest", action="/guest/pkg/fetcher")
    lease.activation_id = activation_id
    return lease


async def exchange(lease, data, *, read=True):
    reader, writer = await asyncio.open_unix_connection(str(lease.path))
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 10) if read else (reader, writer)
    finally:
        if read:
            writer.close()


def status(answer):
    return int(answer.split(b" ", 2)[1])


async def test_plain_http_is_forwarded_in_origin_form_with_connection_close(make_proxy):
    proxy, _ = make_proxy({"web.test": ["127.0.0.1"]})
    async with Upstream() as up:
        lease = await lease_for(proxy, f"web.test:{up.port}", f"127.0.0.1/32:{up.port}")
        answer = await exchange(
            lease,
            f"GET http://web.test:{up.port}/path?q=1 HTTP/1.1\r\nHost: web.test:{up.port}\r\n"
            "Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\nKeep-Alive: 5\r\n"
            "Connection: keep-alive\r\nX-Mine: 1\r\n\r\n".encode(),
        )
    assert status(answer) == 200
    assert answer.endswith(b"hello")
    head = up.heads[0].decode()
    assert head.startswith("GET /path?q=1 HTTP/1.1\r\n")
    assert f"Host: web.test:{up.port}" in head
    assert "X-Mine: 1" in head
    assert "Connection: close" in head
    for hop in ("Proxy-Connection", "Proxy-Authorization", "Keep-Alive", "keep-alive"):
        assert hop not in head
    assert proxy.statistics().connections_total == 1


async def test_a_missing_host_header_is_added(make_proxy):
    proxy, _ = make_proxy({"web.test": ["127.0.0.1"]})
    async with Upstream() as up:
        lease = await lease_for(proxy, f"web.test:{up.port}", f"127.0.0.1/32:{up.port}")
        await exchange(lease, f"GET http://web.test:{up.port}/ HTTP/1.0\r\n\r\n".encode())
    assert f"Host: web.test:{up.port}\r\n" in up.heads[0].decode()


async def test_connect_tunnels_bytes_both_ways(make_proxy):
    proxy, _ = make_proxy({"echo.test": ["127.0.0.1"]})
    async with Upstream("echo") as up:
        lease = await lease_for(proxy, f"echo.test:{up.port}", f"127.0.0.1/32:{up.port}")
        reader, writer = await exchange(lease, f"CONNECT echo.test:{up.port} HTTP/1.1\r\n\r\n".encode(), read=False)
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 200 Connection established\r\n\r\n"
        payload = bytes(range(256)) * 1000
        writer.write(payload)
        await writer.drain()
        assert await reader.readexactly(len(payload)) == payload
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
    assert proxy.statistics().bytes_total == 2 * len(payload)


async def test_denial_answers_403_logs_and_emits_an_event_without_resolving(make_proxy, events):
    proxy, resolver = make_proxy({"evil.test": ["127.0.0.1"]})
    lease = await lease_for(proxy, "api.example.com:443", activation_id="f" * 32)
    with structlog.testing.capture_logs() as logs:
        answer = await exchange(lease, b"CONNECT evil.test:443 HTTP/1.1\r\n\r\n")
    assert status(answer) == 403
    assert b"X-Stockade-Egress: denied" in answer
    assert answer.endswith(b"denied (host_not_allowed)\n")
    assert resolver.calls == []
    [log] = [entry for entry in logs if entry["event"] == "security.egress_denied"]
    assert log["action"] == "/guest/pkg/fetcher"
    assert log["activation_id"] == "f" * 32
    assert log["destination"] == "evil.test:443"
    assert log["code"] == "host_not_allowed"
    [event] = events.events
    assert event.type is EventType.EGRESS_DENIED
    assert (event.namespace, event.action, event.activation_id) == ("guest", "pkg/fetcher", "f" * 32)
    assert event.time_ms == 1_700_000_000_000
    assert event.details["host"] == "evil.test"
    assert event.details["port"] == 443
    assert event.details["code"] == "host_not_allowed"
    assert event.details["fqn"] == "/guest/pkg/fetcher"
    assert proxy.statistics().denied_by_code == {"host_not_allowed": 1}
    assert lease.denied_total == 1


async def test_the_answer_never_reveals_the_resolved_address(make_proxy):
    proxy, _ = make_proxy({"inside.test": ["10.1.2.3"]})
    lease = await lease_for(proxy, "inside.test:443")
    answer = await exchange(lease, b"CONNECT inside.test:443 HTTP/1.1\r\n\r\n")
    assert status(answer) == 403
    assert b"10.1.2.3" not in answer


async def test_the_event_follows_the_current_activation(make_proxy, events):
    proxy, _ = make_proxy()
    lease = await lease_for(proxy, "api.example.com:443", activation_id="1" * 32)
    await exchange(lease, b"CONNECT a.test:443 HTTP/1.1\r\n\r\n")
    lease.activation_id = "2" * 32
    await exchange(lease, b"CONNECT b.test:443 HTTP/1.1\r\n\r\n")
    assert [e.activation_id for e in events.events] == ["1" * 32, "2" * 32]


async def test_only_checked_addresses_are_connected_and_dns_is_asked_once(make_proxy):
    """A rebinding resolver (granted address first, another one after) never gets a second lookup."""
    async with Upstream() as up:
        proxy, resolver = make_proxy({"rebind.test": lambda n: ["127.0.0.1"] if n == 1 else ["127.0.0.2"]})
        lease = await lease_for(proxy, f"rebind.test:{up.port}", f"127.0.0.1/32:{up.port}")
        answer = await exchange(lease, f"GET http://rebind.test:{up.port}/ HTTP/1.1\r\n\r\n".encode())
    assert status(answer) == 200
    assert resolver.calls == ["rebind.test"]


async def test_blocked_addresses_among_the_answers_are_skipped(make_proxy):
    async with Upstream() as up:
        proxy, _ = make_proxy({"mixed.test": ["169.254.169.254", "127.0.0.2", "127.0.0.1"]})
        lease = await lease_for(proxy, f"mixed.test:{up.port}", f"127.0.0.1/32:{up.port}")
        answer = await exchange(lease, f"GET http://mixed.test:{up.port}/ HTTP/1.1\r\n\r\n".encode())
    assert status(answer) == 200
    assert up.accepted == 1


async def test_unresolvable_names_are_a_502_not_a_denial(make_proxy, events):
    proxy, _ = make_proxy({})
    lease = await lease_for(proxy, "missing.test:443")
    answer = await exchange(lease, b"CONNECT missing.test:443 HTTP/1.1\r\n\r\n")
    assert status(answer) == 502
    assert events.events == []


async def test_empty_answers_are_a_502(make_proxy):
    proxy, _ = make_proxy({"empty.test": []})
    lease = await lease_for(proxy, "empty.test:443")
    assert status(await exchange(lease, b"CONNECT empty.test:443 HTTP/1.1\r\n\r\n")) == 502


async def test_refused_upstream_is_a_502(make_proxy):
    async with Upstream() as up:
        port = up.port
    proxy, _ = make_proxy({"gone.test": ["127.0.0.1"]})
    lease = await lease_for(proxy, f"gone.test:{port}", f"127.0.0.1/32:{port}")
    assert status(await exchange(lease, f"CONNECT gone.test:{port} HTTP/1.1\r\n\r\n".encode())) == 502


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET https://web.test/ HTTP/1.1\r\n\r\n",
        b"GET ftp://web.test/ HTTP/1.1\r\n\r\n",
        b"CONNECT web.test HTTP/1.1\r\n\r\n",
        b"CONNECT web.test:https HTTP/1.1\r\n\r\n",
        b"GET http://web.test:99999/ HTTP/1.1\r\n\r\n",
        b"GET http://web.test/ SPDY/3\r\n\r\n",
        b"GET  http://web.test/ HTTP/1.1\r\n\r\n",
        b"GET http://w\xc3\xa9b.test/ HTTP/1.1\r\n\r\n",
    ],
)
async def test_malformed_requests_are_a_400(make_proxy, head):
    proxy, resolver = make_proxy({"web.test": ["127.0.0.1"]})
    lease = await lease_for(proxy, "*:*")
    assert status(await exchange(lease, head)) == 400
    assert resolver.calls == []


async def test_an_oversized_head_is_refused(make_proxy):
    proxy, _ = make_proxy(max_head_bytes=1024)
    lease = await lease_for(proxy, "*:*")
    answer = await exchange(lease, b"GET http://web.test/ HTTP/1.1\r\nX: " + b"a" * 4096 + b"\r\n\r\n")
    assert status(answer) == 431


async def test_connections_per_sandbox_are_capped(make_proxy, events):
    proxy, _ = make_proxy({"echo.test": ["127.0.0.1"]}, max_connections_per_sandbox=1)
    async with Upstream("echo") as up:
        lease = await lease_for(proxy, f"echo.test:{up.port}", f"127.0.0.1/32:{up.port}")
        reader, writer = await exchange(lease, f"CONNECT echo.test:{up.port} HTTP/1.1\r\n\r\n".encode(), read=False)
        await reader.readuntil(b"\r\n\r\n")
        answer = await exchange(lease, f"CONNECT echo.test:{up.port} HTTP/1.1\r\n\r\n".encode())
        writer.close()
    assert status(answer) == 429
    assert [e.details["code"] for e in events.events] == ["connection_limit"]


async def test_bytes_per_connection_are_capped(make_proxy, events):
    proxy, _ = make_proxy({"big.test": ["127.0.0.1"]}, max_bytes_per_connection=10_000)
    async with Upstream(body=b"x" * 100_000) as up:
        lease = await lease_for(proxy, f"big.test:{up.port}", f"127.0.0.1/32:{up.port}")
        answer = await exchange(lease, f"GET http://big.test:{up.port}/ HTTP/1.1\r\n\r\n".encode())
    assert len(answer) < 100_000
    assert [e.details["code"] for e in events.events] == ["byte_limit"]


async def test_an_idle_client_is_dropped(make_proxy):
    proxy, _ = make_proxy(head_timeout_s=0.2)
    lease = await lease_for(proxy, "*:*")
    reader, writer = await exchange(lease, b"GET http://web", read=False)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_closing_a_lease_removes_its_socket_and_cuts_its_connections(make_proxy):
    proxy, _ = make_proxy({"echo.test": ["127.0.0.1"]})
    async with Upstream("echo") as up:
        lease = await lease_for(proxy, f"echo.test:{up.port}", f"127.0.0.1/32:{up.port}")
        assert oct(lease.path.stat().st_mode & 0o777) == "0o666"
        assert oct(lease.path.parent.stat().st_mode & 0o777) == "0o700"
        reader, writer = await exchange(lease, f"CONNECT echo.test:{up.port} HTTP/1.1\r\n\r\n".encode(), read=False)
        await reader.readuntil(b"\r\n\r\n")
        assert proxy.statistics().connections_open == 1
        await lease.close()
        await lease.close()  # idempotent
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    assert not lease.path.exists()
    assert proxy.statistics().sockets_open == 0
    assert proxy.statistics().connections_open == 0


async def test_an_empty_policy_gets_no_socket(make_proxy):
    proxy, _ = make_proxy()
    with pytest.raises(ValueError, match="no network"):
        await lease_for(proxy)


async def test_the_default_socket_directory_is_private_and_removed_on_close():
    proxy = EgressProxy()
    lease = await proxy.open(parse_egress(["*:443"], proxy.data), namespace="guest", action="/guest/a")
    directory = lease.path.parent
    assert oct(directory.stat().st_mode & 0o777) == "0o700"
    assert len(str(lease.path)) < 100
    await proxy.close()
    assert not directory.exists()


async def test_a_denied_request_with_a_body_still_reads_its_403(make_proxy):
    """The proxy drains what the client still sends, so closing does not reset the answer away."""
    proxy, _ = make_proxy()
    lease = await lease_for(proxy, "api.example.com:443")
    body = b"x" * 200_000
    answer = await exchange(
        lease, b"POST http://other.test/upload HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    assert status(answer) == 403


async def test_the_system_resolver_reads_the_hosts_file():
    from stockade.invoker.egress_proxy import system_resolver

    assert ipaddress.ip_address("127.0.0.1") in await system_resolver("localhost", 80)
