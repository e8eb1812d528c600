"""Threat: reaching the network, the host's loopback or host sockets from inside an action (issue 3).

The sandbox's network namespace holds only a loopback interface that is down, so every address is
unreachable. A real listener on the host's 127.0.0.1 proves the probe would have connected if it could.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator

import pytest

from .conftest import StartAction

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]

PROBE = {
    "python": """
import socket
def attempt(fn):
    try:
        fn()
        return "CONNECTED"
    except OSError as exc:
        return type(exc).__name__ + ":" + str(exc.errno)
def tcp(host, port):
    def go():
        with socket.create_connection((host, port), timeout=2):
            pass
    return go
def udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", ("8.8.8.8", 53))
def abstract(name):
    def go():
        with socket.socket(socket.AF_UNIX) as s:
            s.connect("\\0" + name)
    return go
def dns():
    socket.getaddrinfo("example.com", 443)
def main(args):
    return {
        "host_loopback": attempt(tcp("127.0.0.1", args["port"])),
        "public_ip": attempt(tcp("1.1.1.1", 443)),
        "ipv6": attempt(tcp("2606:4700:4700::1111", 443)),
        "udp": attempt(udp),
        "host_abstract_socket": attempt(abstract(args["abstract"])),
        "dns": attempt(dns),
        "interfaces": [name for _, name in socket.if_nameindex()],
    }
""",
    "nodejs": """
const net = require('net');
const dgram = require('dgram');
const dns = require('dns');
const os = require('os');
function tcp(host, port) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (v) => { s.destroy(); resolve(v); };
    s.on('connect', () => done('CONNECTED'));
    s.on('error', (e) => done(e.code));
    setTimeout(() => done('TIMEOUT'), 2000);
  });
}
function udp() {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.send(Buffer.from('x'), 53, '8.8.8.8', (e) => { s.close(); resolve(e ? e.code : 'SENT'); });
  });
}
function abstract(name) {
  return new Promise((resolve) => {
    const s = net.connect({ path: '\\0' + name });
    s.on('connect', () => { s.destroy(); resolve('CONNECTED'); });
    s.on('error', (e) => resolve(e.code));
  });
}
async function main(args) {
  let lookup;
  try { await dns.promises.lookup('example.com'); lookup = 'CONNECTED'; } catch (e) { lookup = e.code; }
  return {
    host_loopback: await tcp('127.0.0.1', args.port),
    public_ip: await tcp('1.1.1.1', 443),
    ipv6: await tcp('2606:4700:4700::1111', 443),
    udp: await udp(),
    host_abstract_socket: await abstract(args.abstract),
    dns: lookup,
    interfaces: Object.keys(os.networkInterfaces()),
  };
}
""",
}


@pytest.fixture
def host_listeners() -> Iterator[tuple[int, str]]:
    """A TCP listener on the host's 127.0.0.1 and an abstract unix socket, both accepting."""
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    name = f"stockade-test-{secrets.token_hex(4)}"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind("\0" + name)
    unix.listen(8)
    try:
        # Positive control: both accept connections from the host itself.
        socket.create_connection(tcp.getsockname(), timeout=2).close()
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect("\0" + name)
        yield tcp.getsockname()[1], name
    finally:
        tcp.close()
        unix.close()


async def test_no_network_at_all(start_action: StartAction, family: str, host_listeners: tuple[int, str]) -> None:
    """Host loopback, public IPv4/IPv6, UDP, DNS and the host's abstract unix sockets are all unreachable."""
    port, abstract = host_listeners
    sandbox = await start_action(family, PROBE[family])
    reply = await sandbox.run({"port": port, "abstract": abstract}, timeout_s=60)
    assert reply["ok"], reply
    result = reply["result"]
    interfaces = result.pop("interfaces")
    assert set(interfaces) <= {"lo"}, interfaces
    for name, outcome in result.items():
        assert outcome not in ("CONNECTED", "SENT", "TIMEOUT"), (name, outcome)
    # Landlock refuses the TCP connect first (EACCES, ABI >= 4); without it the empty namespace
    # answers ENETUNREACH.
    assert result["host_loopback"].split(":")[-1] in ("EACCES", "13", "ENETUNREACH", "101"), result
