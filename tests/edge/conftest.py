"""A live `stockade up` on loopback with small edge limits, and a raw-socket client for it."""

from __future__ import annotations

import base64
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from e2e.conftest import Server, start_server, stop_server

# Small slow-client timeouts so the tests finish quickly; the defaults are in config.HttpSettings.
EDGE_SETTINGS = """
[http]
header_timeout_s = 2.0
body_idle_timeout_s = 2.0
keepalive_timeout_s = 2.0
max_connections_per_address = 24
"""


@dataclass(frozen=True)
class Reply:
    """What came back on a raw connection: the status lines, the raw bytes, and whether it closed."""

    statuses: list[int]
    data: bytes
    closed: bool

    @property
    def body(self) -> bytes:
        return self.data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in self.data else b""


class Edge:
    """The live server, plus helpers to talk to it over raw sockets and with httpx."""

    def __init__(self, server: Server):
        self.server = server
        parts = urlsplit(server.url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.auth_header = "Basic " + base64.b64encode(server.auth.encode()).decode()
        self.client = httpx.Client(base_url=server.url, headers={"Authorization": self.auth_header}, timeout=60)

    def connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port))
        sock.settimeout(15)  # a connection the server keeps open past this fails the test
        return sock

    def raw(self, data: bytes, *, read_until_closed: bool = True) -> Reply:
        """Send ``data`` on a new connection and read until the server closes it (15 s at most)."""
        with self.connect() as sock:
            sock.sendall(data)
            return read_reply(sock, read_until_closed=read_until_closed)


def read_reply(sock: socket.socket, *, read_until_closed: bool = True) -> Reply:
    chunks = []
    closed = False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            chunks.append(chunk)
            if not read_until_closed and b"\r\n\r\n" in b"".join(chunks):
                break
    except TimeoutError:
        pass
    except ConnectionResetError:
        closed = True
    data = b"".join(chunks)
    statuses = [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", data)]
    return Reply(statuses, data, closed)


@pytest.fixture(scope="session")
def edge(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("stockade-edge")
    config = data_dir / "edge.toml"
    config.write_text(EDGE_SETTINGS)
    proc, server = start_server(data_dir, "--config", str(config))
    edge = Edge(server)
    try:
        yield edge
    finally:
        edge.client.close()
        stop_server(proc)


@pytest.fixture(scope="session")
def fuzz_edge(tmp_path_factory: pytest.TempPathFactory):
    """A server of its own for the fuzzer (it may create and change anything it can)."""
    data_dir = tmp_path_factory.mktemp("stockade-fuzz")
    config = data_dir / "fuzz.toml"
    # Advisory syncs the fuzzer triggers stay on loopback (a closed port: the sync answers 503).
    config.write_text('[scan]\nadvisories_url = "http://127.0.0.1:9/osv"\n')
    proc, server = start_server(data_dir, "--config", str(config))
    edge = Edge(server)
    try:
        yield edge
    finally:
        edge.client.close()
        stop_server(proc)
