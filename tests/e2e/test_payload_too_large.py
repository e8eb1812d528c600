"""A 413 is answered so that a client still sending its body can read it (issue 17).

The server reads (and discards) what the client is still sending, up to a bound, before it
answers and closes; closing with unread data would reset the connection and destroy the answer.
"""

from __future__ import annotations

import base64
import socket

import pytest

pytestmark = pytest.mark.e2e

BODY_BYTES = 16 * 1024 * 1024  # well past the 1 MiB invoke limit and the loopback socket buffers


def _post_oversized(url: str, auth: str, path: str) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    token = base64.b64encode(auth.encode()).decode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {BODY_BYTES}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        chunk = b" " * 65536
        for _ in range(BODY_BYTES // len(chunk)):
            sock.sendall(chunk)  # a reset here is the defect: the client never sees the 413
        answer = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return answer
            answer += data


def test_an_oversized_invoke_body_gets_a_readable_413(server):
    answer = _post_oversized(server.url, server.auth, "/api/v1/namespaces/_/actions/anything")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"error":"Request larger than allowed' in answer
