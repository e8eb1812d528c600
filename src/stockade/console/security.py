"""The console's own defences: response headers (a strict CSP), the session cookie, and the
checks every state change passes (same origin, CSRF token).

- CSP: nothing but this origin's stylesheet; no script at all (the console needs none), no
  frames, forms only to this origin.
- Cookie: HttpOnly, SameSite=Strict, Path=/console; over TLS also Secure and the ``__Host-``
  prefix (then Path=/, as the prefix requires).
- State changes (POST): the browser's ``Sec-Fetch-Site`` (or ``Origin``) must name this origin,
  and the form must carry the session's CSRF token (sign-in: the login form's token, a
  double-submit cookie, since there is no session yet).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "CSP",
    "LOGIN_COOKIE",
    "apply_headers",
    "cookie_name",
    "is_tls",
    "login_token_matches",
    "new_login_token",
    "same_origin",
    "set_login_cookie",
    "set_session_cookie",
]

CSP: Final = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS: Final = (
    ("content-security-policy", CSP),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
)
LOGIN_COOKIE: Final = "stockade_console_login"
_SESSION_COOKIE: Final = "stockade_console"


def is_tls(request: Request) -> bool:
    """Whether this request came over TLS."""
    return request.url.scheme == "https"


def cookie_name(request: Request) -> str:
    """The session cookie's name (``__Host-`` prefixed over TLS)."""
    return f"__Host-{_SESSION_COOKIE}" if is_tls(request) else _SESSION_COOKIE


def _cookie_path(request: Request) -> str:
    return "/" if is_tls(request) else "/console"


def apply_headers(response: Response) -> Response:
    """Add the console's security headers."""
    for name, value in _HEADERS:
        response.headers[name] = value
    return response


def set_session_cookie(response: Response, request: Request, token: str, max_age_s: int) -> None:
    """Set (or, with ``max_age_s`` 0, clear) the session cookie."""
    response.set_cookie(
        cookie_name(request),
        token,
        max_age=max_age_s,
        path=_cookie_path(request),
        secure=is_tls(request),
        httponly=True,
        samesite="strict",
    )


def new_login_token() -> str:
    """A random token for the sign-in form (double-submit: cookie and hidden field)."""
    return secrets.token_urlsafe(24)


def set_login_cookie(response: Response, request: Request, token: str) -> None:
    """The sign-in form's token cookie (short-lived, HttpOnly, SameSite=Strict)."""
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=600,
        path="/console",
        secure=is_tls(request),
        httponly=True,
        samesite="strict",
    )


def login_token_matches(request: Request, presented: str | None) -> bool:
    """The sign-in form's field equals its cookie (constant-time)."""
    expected = request.cookies.get(LOGIN_COOKIE)
    if not expected or not presented or len(presented) > 128:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def same_origin(request: Request) -> bool:
    """Whether a state-changing request comes from this origin (by Fetch metadata, else Origin).

    A request with neither header (not a browser) passes here and still needs the CSRF token.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"{request.url.scheme}://{host}",)
