"""Fixtures for the egress threat tests: a test host inside a network namespace, the proxy, sandboxes.

The test host lives in a network namespace these fixtures create (``ip netns add``) and reach over a
veth pair on a /30 of 10.213.0.0/16; it is torn down after the module. No test sends anything
anywhere else: names resolve through a table (never real DNS), and addresses outside the test host
are only ever refused by the proxy before any connection. Without root or ``ip`` the tests skip
with that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import ipaddress
import itertools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stockade.invoker.egress_policy import parse_egress
from stockade.invoker.egress_proxy import EgressProxy
from stockade.sandbox.harness import ActionSandbox, write_action
from stockade.sandbox.linux import LinuxSandboxBackend
from stockade.sandbox.spec import SandboxSpec

TESTHOST_SCRIPT = Path(__file__).with_name("testhost.py")
TESTHOST_NAME = "testhost.stockade.test"
HTTP_PORT, OTHER_PORT, TLS_PORT = 8080, 9999, 8443

# Names the proxy's resolver knows; anything else "does not exist".
TRICK_NAMES = {
    "localhost": ["127.0.0.1", "::1"],
    "loopback.stockade.test": ["127.0.0.1"],
    "metadata.stockade.test": ["169.254.169.254"],
    "v6loopback.stockade.test": ["::1"],
    "v4mapped.stockade.test": ["::ffff:127.0.0.1"],
    "linklocal6.stockade.test": ["fe80::1"],
    "private.stockade.test": ["192.168.1.1"],
}


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def _free_subnet() -> int:
    used = _ip("-4", "addr", "show").stdout
    for _ in range(64):
        n = secrets.randbelow(256)
        if f"10.213.{n}." not in used:
            return n
    raise RuntimeError("no free 10.213.x.0/30 subnet")


def _certificate(directory: Path, names: list[str], address: str) -> tuple[str, str, str]:
    """A throwaway CA and a server certificate for the test host: (ca PEM, cert path, key path)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stockade egress test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(address))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "testhost.pem", directory / "testhost.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca.public_bytes(serialization.Encoding.PEM).decode(), str(cert_path), str(key_path)


@dataclass
class TestHost:
    """The test host: its address, name, ports, the CA its TLS certificate chains to, and its hit counter."""

    __test__ = False  # not a test class

    namespace: str
    address: str
    gateway: str
    name: str
    ca_pem: str
    http_port: int = HTTP_PORT
    other_port: int = OTHER_PORT
    tls_port: int = TLS_PORT

    def url(self, path: str = "/page", *, host: str | None = None, port: int | None = None) -> str:
        return f"http://{host or self.name}:{port or self.http_port}{path}"

    def hits(self) -> dict[str, int]:
        """Requests seen per port (and UDP datagrams on 53), read from the host side directly."""
        with socket.create_connection((self.address, self.http_port), timeout=5) as sock:
            sock.sendall(b"GET /hits HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        counts: dict[str, int] = json.loads(data.split(b"\r\n\r\n", 1)[1])
        return counts


@pytest.fixture(scope="module")
def test_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestHost]:
    """HTTP, TLS and UDP/53 servers on 10.213.N.2 inside a fresh network namespace, torn down after."""
    if os.geteuid() != 0:
        pytest.skip(f"needs root to create a network namespace (ip netns add); running as uid {os.geteuid()}")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (the ip command) is not installed")
    tag = secrets.token_hex(3)
    namespace, host_if, peer_if = f"stk-egress-{tag}", f"stkh{tag}", f"stkp{tag}"
    n = _free_subnet()
    gateway, address = f"10.213.{n}.1", f"10.213.{n}.2"
    directory = tmp_path_factory.mktemp("testhost")
    ca_pem, cert, key = _certificate(directory, [TESTHOST_NAME], address)
    server: subprocess.Popen[str] | None = None
    try:
        _ip("netns", "add", namespace)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        _ip("link", "set", peer_if, "netns", namespace)
        _ip("addr", "add", f"{gateway}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", namespace, "addr", "add", f"{address}/30", "dev", peer_if)
        _ip("-n", namespace, "link", "set", peer_if, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        server = subprocess.Popen(
            [
                *("ip", "netns", "exec", namespace, sys.executable, str(TESTHOST_SCRIPT), address),
                *(str(HTTP_PORT), str(OTHER_PORT), str(TLS_PORT), cert, key),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError(f"test host did not start: {server.stderr.read() if server.stderr else ''}")
        host = TestHost(namespace, address, gateway, TESTHOST_NAME, ca_pem)
        deadline = time.monotonic() + 10
        while True:
            try:
                host.hits()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield host
    finally:
        if server is not None:
            server.kill()
            server.wait(timeout=10)
            for stream in (server.stdout, server.stderr):
                if stream is not None:
                    stream.close()
        _ip("netns", "del", namespace, check=False)
        _ip("link", "del", host_if, check=False)


class Events:
    """An EventSink that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def emit(self, event: Any) -> None:
        self.events.append(event)


class TableResolver:
    """Test names to addresses; records each lookup. Never asks real DNS."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[Any]:
        self.calls.append(host)
        if host not in self.table:
            raise OSError(-2, "Name or service not known")
        return [ipaddress.ip_address(a) for a in self.table[host]]


@dataclass
class Proxy:
    proxy: EgressProxy
    events: Events
    resolver: TableResolver
    # Every TCP connection the proxy tried to open, as (host, port).
    connects: list[tuple[str, int]]

    def codes(self) -> list[str]:
        return [str(e.details["code"]) for e in self.events.events]


@pytest_asyncio.fixture(loop_scope="module")
async def egress(test_host: TestHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Proxy]:
    """An EgressProxy whose resolver knows the test host and the trick names; closed after the test.

    Its outgoing connections are recorded, and refused unless they go to loopback or the test host:
    even a proxy bug cannot send anything off this machine.
    """
    connects: list[tuple[str, int]] = []
    original = asyncio.open_connection

    async def guarded(host: str, port: int, **kwargs: Any) -> Any:
        connects.append((host, port))
        address = ipaddress.ip_address(host)
        if not (address.is_loopback or str(address) == test_host.address):
            raise OSError(errno.ENETUNREACH, f"test guard: no connection to {host} from a test")
        return await original(host, port, **kwargs)

    monkeypatch.setattr(asyncio, "open_connection", guarded)
    events = Events()
    resolver = TableResolver({test_host.name: [test_host.address], **TRICK_NAMES})
    sockets = tmp_path / "s"
    sockets.mkdir()
    proxy = EgressProxy(resolver=resolver, events=events, socket_dir=sockets)
    yield Proxy(proxy, events, resolver, connects)
    await proxy.close()


@pytest_asyncio.fixture(loop_scope="module")
async def loopback_listener() -> AsyncIterator[Listener]:
    """A server on the host's 127.0.0.1 (and ::1 when available) counting connections: proof of reach."""
    listener = Listener()
    await listener.start()
    yield listener
    listener.close()


class Listener:
    """Counts accepted connections and answers a tiny HTTP response."""

    def __init__(self) -> None:
        self.accepted = 0
        self.servers: list[asyncio.AbstractServer] = []
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecret")
        await writer.drain()
        writer.close()

    async def start(self) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self.servers.append(server)
        with contextlib.suppress(OSError):  # no IPv6 loopback on this host
            self.servers.append(await asyncio.start_server(self._handle, "::1", self.port))

    def close(self) -> None:
        for server in self.servers:
            server.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def backend() -> AsyncIterator[LinuxSandboxBackend]:
    """A LinuxSandboxBackend with its zygote, shared by one test module."""
    backend = LinuxSandboxBackend()
    reason = backend.facts().unavailable_reason
    if reason:
        pytest.skip(f"Linux sandbox unavailable on this host: {reason}")
    await backend.prepare()
    yield backend
    await backend.close()


@pytest.fixture(params=["python", "nodejs"])
def family(request: pytest.FixtureRequest, backend: LinuxSandboxBackend) -> str:
    """Runs a test with a Python action and with a Node.js action."""
    facts = backend.facts()
    error = facts.python_runner_error if request.param == "python" else facts.node_runner_error
    if error:
        pytest.skip(f"{request.param} sandboxes unavailable: {error}")
    return str(request.param)


# Fetch every URL in args["urls"]; report status and body, or the error. args["ca"]: PEM to trust.
FETCH = {
    "python": """
import json, ssl, urllib.error, urllib.request
def fetch(url, ca):
    context = ssl.create_default_context(cadata=ca) if ca else None
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as r:
            return {"status": r.status, "body": r.read().decode()[:300]}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode()[:300]}
    except Exception as e:
        return {"error": type(e).__name__ + ": " + str(e)[:300]}
def main(args):
    return {name: fetch(url, args.get("ca")) for name, url in args["urls"].items()}
""",
    "nodejs": """
const http = require('http');
const https = require('https');
function get(url, ca) {
  return new Promise((resolve) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, ca ? { ca } : {}, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: body.slice(0, 300), location: res.headers.location }));
    });
    req.on('error', (e) => resolve({ error: `${e.code || ''} ${e.message}`.slice(0, 300) }));
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
  });
}
async function viaFetch(url) {
  try {
    const r = await fetch(url);
    return { status: r.status, body: (await r.text()).slice(0, 300) };
  } catch (e) {
    return { error: `${e.message} ${e.cause ? e.cause.message : ''}`.slice(0, 300) };
  }
}
async function main(args) {
  const out = {};
  for (const [name, url] of Object.entries(args.urls)) out[name] = args.fetch ? await viaFetch(url) : await get(url, args.ca);
  return out;
}
exports.main = main;
""",
}


@dataclass
class SandboxRun:
    reply: dict[str, Any]
    lease: Any

    @property
    def result(self) -> dict[str, Any]:
        assert self.reply.get("ok"), self.reply
        result: dict[str, Any] = self.reply["result"]
        return result


_counter = itertools.count()


async def fetch(
    backend: LinuxSandboxBackend,
    egress: Proxy,
    tmp_path: Path,
    family: str,
    grants: list[str],
    urls: dict[str, str],
    **extra: Any,
) -> dict[str, Any]:
    """Run the FETCH action for ``family`` with ``grants`` over ``urls``; its result per URL."""
    run = await run_in_sandbox(backend, egress, tmp_path, family, FETCH[family], grants, {"urls": urls, **extra})
    return run.result


def is_refused(outcome: dict[str, Any]) -> bool:
    """True when a fetch outcome is the proxy's refusal (403 for Python and http.get, an error for tunnels)."""
    return outcome.get("status") == 403 or "403 Forbidden" in str(outcome.get("error", ""))


async def run_in_sandbox(
    backend: LinuxSandboxBackend,
    egress: Proxy,
    tmp_path: Path,
    family: str,
    code: str,
    grants: list[str],
    value: dict[str, Any],
    *,
    activation_id: str = "",
    extra_files: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> SandboxRun:
    """Start a sandbox whose action has ``grants`` (none: no socket at all), run ``value`` once, kill it."""
    lease = None
    if grants:
        policy = parse_egress(grants, egress.proxy.data)
        lease = await egress.proxy.open(policy, namespace="guest", action="/guest/fetcher", label="fetcher@0.0.1")
        lease.activation_id = activation_id or secrets.token_hex(16)
    code_dir = write_action(tmp_path / f"action-{next(_counter)}", family, code, extra_files)  # type: ignore[arg-type]
    spec = SandboxSpec(
        family=family,  # type: ignore[arg-type]
        code_dir=code_dir,
        egress_socket=lease.path if lease else None,
        env=env or {},
    )
    sandbox = await ActionSandbox.start(backend, spec)
    try:
        reply = await sandbox.run(value, timeout_s=60)
    finally:
        await sandbox.kill()
        if lease is not None:
            await lease.close()
    return SandboxRun(reply, lease)


async def open_lease(egress: Proxy, grants: list[str], activation_id: str = "c" * 32) -> Any:
    """A proxy socket for an action with ``grants`` (host-side tests talk to it directly)."""
    lease = await egress.proxy.open(
        parse_egress(grants, egress.proxy.data), namespace="guest", action="/guest/fetcher", label="fetcher@0.0.1"
    )
    lease.activation_id = activation_id
    return lease


async def raw_exchange(path: Path, data: bytes) -> bytes:
    """Send ``data`` on a proxy socket from the host side; everything the proxy answers."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 15)
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])
