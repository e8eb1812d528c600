"""The test host's servers, run inside the network namespace the tests create (never on the host).

``python testhost.py ADDRESS HTTP_PORT OTHER_PORT TLS_PORT CERT KEY``:

* HTTP_PORT: ``/page`` (a known page), ``/redirect?to=URL`` (302 to URL), ``/hits`` (JSON: requests
  seen per port and UDP datagrams seen on port 53, so tests can prove nothing arrived).
* OTHER_PORT: the same handler on a port no test grants (reaching it would show in ``/hits``).
* TLS_PORT: the same handler over TLS with CERT/KEY.
* UDP 53: counts datagrams (a DNS-tunnelling attempt that got out would show in ``/hits``).
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PAGE = b"hello from the test host\n"
HITS: dict[str, int] = {}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        port = str(self.server.server_address[1])
        url = urlsplit(self.path)
        if url.path != "/hits":
            with LOCK:
                HITS[port] = HITS.get(port, 0) + 1
        if url.path == "/page":
            self._send(200, PAGE)
        elif url.path == "/redirect":
            target = parse_qs(url.query).get("to", ["/page"])[0]
            self._send(302, b"moved\n", {"Location": target})
        elif url.path == "/hits":
            with LOCK:
                body = json.dumps(HITS).encode()
            self._send(200, body)
        else:
            self._send(404, b"not found\n")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def udp(address: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    while True:
        sock.recvfrom(4096)
        with LOCK:
            HITS["udp53"] = HITS.get("udp53", 0) + 1


def main() -> None:
    address, http_port, other_port, tls_port, cert, key = sys.argv[1:7]
    servers = [ThreadingHTTPServer((address, int(p)), Handler) for p in (http_port, other_port, tls_port)]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    servers[2].socket = context.wrap_socket(servers[2].socket, server_side=True)
    threading.Thread(target=udp, args=(address,), daemon=True).start()
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
