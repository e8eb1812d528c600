"""Header and request-line limits, slow clients and connection caps, over raw sockets.

The live server runs with 2-second header and body timeouts (tests/edge/conftest.py); a
connection still open after 15 s fails the test (the socket timeout), which is the issue's bound.
"""

import json
import time

from stockade.config import HttpSettings

from .conftest import read_reply

LIMITS = HttpSettings()


def test_a_16_kb_header_is_431(edge):
    reply = edge.raw(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 16384 + b"\r\n\r\n")
    assert reply.statuses == [431]
    assert reply.closed
    assert set(json.loads(reply.body)) == {"error", "code"}


def test_500_headers_are_431(edge):
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(500))
    reply = edge.raw(b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert reply.statuses == [431]
    assert reply.closed


def test_headers_within_the_limits_are_served(edge):
    some = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(LIMITS.max_header_count - 5))
    reply = edge.raw(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + some + b"\r\n")
    assert reply.statuses == [200]


def test_many_small_headers_past_the_total_bytes_are_431(edge):
    # Each under the per-line limit, together over max_header_bytes.
    count = LIMITS.max_header_bytes // 4000 + 2
    lines = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 4000) for i in range(count))
    reply = edge.raw(b"GET / HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
    assert reply.statuses == [431]


def test_an_endless_header_line_is_cut_off(edge):
    """A header value that never ends is refused once past the limit, not buffered forever."""
    with edge.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        for _ in range(8):
            try:
                sock.sendall(b"a" * 8192)
            except (BrokenPipeError, ConnectionResetError):
                break
        reply = read_reply(sock)
    assert reply.statuses == [431]
    assert reply.closed


def test_a_long_request_line_is_414(edge):
    reply = edge.raw(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.statuses == [414]
    assert reply.closed


def test_a_request_line_just_under_the_limit_is_served(edge):
    target = b"/api/v1?" + b"q" * (LIMITS.max_request_line_bytes - 200)
    reply = edge.raw(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.statuses == [200]


def test_a_header_sent_byte_by_byte_is_408_and_closed(edge):
    """Slowloris: the head must arrive within header_timeout_s, however steadily it trickles."""
    with edge.connect() as sock:
        head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100
        closed = False
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.1)
        reply = read_reply(sock)
    assert closed or reply.closed
    assert reply.statuses in ([408], [])


def test_a_silent_connection_is_closed(edge):
    with edge.connect() as sock:
        reply = read_reply(sock)
    assert reply.closed
    assert reply.statuses == [408]


def test_a_stalled_body_is_closed(edge):
    head = (
        f"PUT /api/v1/namespaces/_/actions/stalled HTTP/1.1\r\nHost: x\r\nAuthorization: {edge.auth_header}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    ).encode()
    with edge.connect() as sock:
        sock.sendall(head)
        reply = read_reply(sock)
    assert reply.closed
    assert edge.client.get("/api/v1/namespaces/_/actions/stalled").status_code == 404  # nothing half-written


def test_an_idle_kept_alive_connection_is_closed(edge):
    with edge.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = read_reply(sock)
    assert reply.statuses == [200]
    assert reply.closed


def test_connections_per_address_are_capped(edge):
    """Past max_connections_per_address (24 here) a new connection is 503 and closed; others still work."""
    held = []
    try:
        held.extend(edge.connect() for _ in range(24))
        extra = edge.connect()
        with extra:
            reply = read_reply(extra)
        assert reply.statuses == [503]
        assert reply.closed
        assert set(json.loads(reply.body)) == {"error", "code"}
        # A held connection is still served.
        held[0].sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_reply(held[0]).statuses == [200]
    finally:
        for sock in held:
            sock.close()
    # Once they are gone, new connections are accepted again.
    for _ in range(50):
        reply = edge.raw(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        if reply.statuses == [200]:
            break
        time.sleep(0.1)
    assert reply.statuses == [200]


def _big_action(edge):
    r = edge.client.put(
        "/api/v1/namespaces/_/actions/big?overwrite=true",
        json={"exec": {"kind": "python:3", "code": "def main(a):\n    return {}\n"}},
    )
    assert r.status_code == 200, r.text


def test_a_413_is_readable_by_a_client_still_sending(edge):
    """Refused by Content-Length before the body is read; the client may finish sending, then read it."""
    _big_action(edge)
    r = edge.client.post("/api/v1/namespaces/_/actions/big", content=b"x" * (5 * 1024 * 1024))
    assert r.status_code == 413
    assert set(r.json()) == {"error", "code"}


def test_a_chunked_body_past_the_limit_is_413_and_readable(edge):
    _big_action(edge)

    def chunks():
        for _ in range(80):
            yield b"x" * 65536

    r = edge.client.post("/api/v1/namespaces/_/actions/big", content=chunks())
    assert r.status_code == 413
    assert set(r.json()) == {"error", "code"}


def test_a_body_stalled_after_its_413_is_closed_with_one_answer(edge):
    _big_action(edge)
    head = (
        f"POST /api/v1/namespaces/_/actions/big HTTP/1.1\r\nHost: x\r\nAuthorization: {edge.auth_header}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {2 * 1024 * 1024}\r\n\r\n"
    ).encode()
    with edge.connect() as sock:
        sock.sendall(head + b"x" * 100_000)
        reply = read_reply(sock)
    assert reply.statuses == [413]
    assert reply.closed
