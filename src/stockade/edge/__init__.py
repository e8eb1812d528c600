"""The HTTP edge shared by the REST API, web actions and the gateway.

``body`` (the one bounded body reader), ``json`` (strict RFC 8259 parsing with limits),
``headers`` (secure response headers, vetting of action-controlled headers), ``query``
(typed query parameters) and ``server`` (the hardened HTTP/1.1 server: framing, header limits,
slow clients, connection caps).
"""

from stockade.edge.body import ClientGoneError, read_body
from stockade.edge.headers import HSTS, HTML_CSP, SECURE_HEADERS, check_action_headers, secure_headers
from stockade.edge.json import JsonLimits, parse_json

__all__ = [
    "HSTS",
    "HTML_CSP",
    "SECURE_HEADERS",
    "ClientGoneError",
    "JsonLimits",
    "check_action_headers",
    "parse_json",
    "read_body",
    "secure_headers",
]
