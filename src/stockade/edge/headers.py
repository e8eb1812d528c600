"""Response headers at the HTTP edge: the secure defaults, and what an action may set.

``secure_headers`` is the one place the platform's secure response headers are decided, for the
REST API, web actions and the gateway alike (``api/middleware.py`` applies it to every response).
``check_action_headers`` vets the headers a web action or gateway route returns: names must be
RFC 9110 tokens, values hold no control character (CR, LF and NUL above all: no response
splitting), and ``Location`` is an http(s) or relative URL (no ``javascript:``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = ["HSTS", "HTML_CSP", "SECURE_HEADERS", "check_action_headers", "secure_headers"]

SECURE_HEADERS: Final = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
)
HTML_CSP: Final = "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
HSTS: Final = "max-age=31536000; includeSubDomains"
MAX_ACTION_HEADERS: Final = 100
MAX_HEADER_VALUE_CHARS: Final = 8192

_TOKEN: Final = re.compile(r"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}\Z")
# Field values: visible characters, space, tab and obs-text (Latin-1 upper half); no other control.
_VALUE: Final = re.compile(r"\A[\t\x20-\x7e\x80-\xff]*\Z")
_SCHEME: Final = re.compile(r"\A([A-Za-z][A-Za-z0-9+.\-]*):")
_URL_CHARS: Final = re.compile(r"\A[\x21-\x7e]*\Z")


def secure_headers(present: Iterable[str], *, content_type: str, https: bool) -> list[tuple[str, str]]:
    """The secure headers to add to a response that already has the (lower-case) ``present`` names.

    A response (an action's, say) keeps its own value for any of them; HTML gets a
    Content-Security-Policy; responses over TLS get Strict-Transport-Security.
    """
    have = set(present)
    out = [(name, value) for name, value in SECURE_HEADERS if name not in have]
    if content_type.lower().startswith("text/html") and "content-security-policy" not in have:
        out.append(("content-security-policy", HTML_CSP))
    if https and "strict-transport-security" not in have:
        out.append(("strict-transport-security", HSTS))
    return out


def _location_problem(value: str) -> str | None:
    # Browsers drop tabs and newlines inside URLs and trim spaces: none is allowed, so the
    # scheme seen here is the scheme a browser sees.
    if not _URL_CHARS.match(value):
        return "Location holds whitespace, control or non-ASCII characters"
    scheme = _SCHEME.match(value)
    if scheme is not None and scheme.group(1).lower() not in ("http", "https"):
        return f"Location scheme {scheme.group(1)[:20]!r} is not http or https"
    return None


def check_action_headers(headers: Sequence[tuple[str, str]]) -> str | None:
    """Why an action's response headers cannot be sent, or None when they can."""
    if len(headers) > MAX_ACTION_HEADERS:
        return f"more than {MAX_ACTION_HEADERS} headers"
    for name, value in headers:
        if not _TOKEN.match(name):
            return f"header name {name[:40]!r} is not a token"
        if len(value) > MAX_HEADER_VALUE_CHARS:
            return f"header {name!r} is longer than {MAX_HEADER_VALUE_CHARS} characters"
        if not _VALUE.match(value):
            return f"header {name!r} holds a control or non-Latin-1 character"
        if name.lower() == "location":
            problem = _location_problem(value)
            if problem is not None:
                return problem
    return None
