"""The runners' egress forwarders on the host: 127.0.0.1:PORT relayed to a proxy's unix socket.

Inside a sandbox the socket is /run/stockade/egress.sock and the port 3128; here each test passes a
temporary socket and a free port, and a real EgressProxy whose resolver maps test names to loopback
(unlocked by a 127.0.0.1/32 grant). Traffic never leaves loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import sys
import textwrap

import pytest

from stockade.invoker.egress_policy import parse_egress
from stockade.invoker.egress_proxy import EgressProxy

from .conftest import NODE, NODE_RUNNER, PYTHON_RUNNER


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Upstream:
    """A loopback HTTP server (GET /size/N answers N bytes) that also echoes raw bytes after 'ECHO\\n'."""

    async def handle(self, reader, writer):
        try:
            first = await reader.readline()
            if first == b"ECHO\n":
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                return
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            path = first.split(b" ")[1].decode()
            size = int(path.rsplit("/", 1)[1]) if path.startswith("/size/") else 5
            body = b"h" * size if path.startswith("/size/") else b"hello"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            await writer.drain()
        except (OSError, IndexError, ValueError):
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
async def lease(tmp_path):
    async def resolve(host, port):
        if host != "web.test":
            raise OSError(-2, "unknown")
        return [ipaddress.ip_address("127.0.0.1")]

    (tmp_path / "s").mkdir()
    proxy = EgressProxy(resolver=resolve, socket_dir=tmp_path / "s")
    async with Upstream() as up:

        async def open_():
            grants = [f"web.test:{up.port}", f"127.0.0.1/32:{up.port}"]
            return await proxy.open(parse_egress(grants, proxy.data), namespace="guest", action="/guest/a"), up.port

        yield open_
    await proxy.close()


async def run(argv, timeout=60):
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1])


def python(code):
    prelude = f"import sys, json\nsys.path.insert(0, {str(PYTHON_RUNNER.parent)!r})\nimport runner\n"
    return [sys.executable, "-c", prelude + textwrap.dedent(code)]


async def test_python_without_the_socket_nothing_changes(tmp_path):
    out = await run(
        python(
            f"""
            import os
            thread = runner.enable_egress({str(tmp_path / "absent.sock")!r}, {free_port()})
            print(json.dumps({{"thread": thread is not None, "proxy": os.environ.get("HTTPS_PROXY")}}))
            """
        )
    )
    assert out == {"thread": False, "proxy": None}


async def test_python_urllib_goes_through_the_forwarder(lease):
    egress, port = await lease()
    out = await run(
        python(
            f"""
            import os, urllib.request, urllib.error
            runner.enable_egress({str(egress.path)!r}, {(fwd := free_port())})
            body = urllib.request.urlopen("http://web.test:{port}/size/300000", timeout=10).read()
            try:
                urllib.request.urlopen("http://other.test:{port}/", timeout=10)
                denied = None
            except urllib.error.HTTPError as e:
                denied = e.code
            env = {{k: os.environ.get(k) for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY")}}
            print(json.dumps({{"size": len(body), "denied": denied, "env": env}}))
            """
        )
    )
    proxy = f"http://127.0.0.1:{fwd}"
    assert out == {
        "size": 300000,
        "denied": 403,
        "env": {"HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy, "NO_PROXY": ""},
    }


async def test_python_forwarder_relays_big_concurrent_tunnels_both_ways(lease):
    """Eight CONNECT tunnels at once, 2 MB each way, through one selector thread."""
    egress, port = await lease()
    out = await run(
        python(
            f"""
            import socket, threading
            runner.enable_egress({str(egress.path)!r}, {(fwd := free_port())})
            payload = bytes(range(256)) * 8192
            results = []
            def tunnel():
                with socket.create_connection(("127.0.0.1", {fwd}), timeout=20) as s:
                    s.sendall(b"CONNECT web.test:{port} HTTP/1.1\\r\\n\\r\\n")
                    head = b""
                    while b"\\r\\n\\r\\n" not in head:
                        head += s.recv(1)
                    s.sendall(b"ECHO\\n")
                    received = bytearray()
                    sender = threading.Thread(target=s.sendall, args=(payload,))
                    sender.start()
                    while len(received) < len(payload):
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        received += chunk
                    sender.join()
                    s.shutdown(socket.SHUT_WR)
                    rest = s.recv(10)
                    results.append(head.startswith(b"HTTP/1.1 200") and bytes(received) == payload and rest == b"")
            threads = [threading.Thread(target=tunnel) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            print(json.dumps(results))
            """
        )
    )
    assert out == [True] * 8


@pytest.mark.skipif(NODE is None, reason="node is not installed")
async def test_node_http_and_fetch_go_through_the_forwarder(lease, tmp_path):
    egress, port = await lease()
    script = f"""
        const http = require('http');
        const r = require({str(NODE_RUNNER)!r});
        function get(url) {{
          return new Promise((resolve) => {{
            http.get(url, (res) => {{ let n = 0; res.on('data', (d) => {{ n += d.length; }}); res.on('end', () => resolve(n)); }})
              .on('error', (e) => resolve(e.code));
          }});
        }}
        (async () => {{
          const absent = await r.enableEgress({str(tmp_path / "absent.sock")!r}, {free_port()});
          const enabled = await r.enableEgress({str(egress.path)!r}, {free_port()});
          const viaHttp = await get('http://web.test:{port}/size/200000');
          const res = await fetch('http://web.test:{port}/size/1000');
          const viaFetch = (await res.arrayBuffer()).byteLength;
          const deniedHttp = await get('http://other.test:{port}/');
          let deniedFetch;
          try {{ await fetch('http://other.test:{port}/'); }} catch (e) {{ deniedFetch = e.cause && e.cause.code; }}
          console.log(JSON.stringify({{ absent, enabled, viaHttp, viaFetch, deniedHttp, deniedFetch,
            noProxy: process.env.NO_PROXY, proxy: process.env.HTTPS_PROXY.startsWith('http://127.0.0.1:') }}));
          process.exit(0);
        }})();
    """
    out = await run([NODE, "-e", textwrap.dedent(script)])
    assert out == {
        "absent": False,
        "enabled": True,
        "viaHttp": 200000,
        "viaFetch": 1000,
        "deniedHttp": "EEGRESSDENIED",
        "deniedFetch": "EEGRESSDENIED",
        "noProxy": "",
        "proxy": True,
    }
