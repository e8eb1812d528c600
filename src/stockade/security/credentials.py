"""Reading an ``Authorization`` header: the one parser every entry point uses (REST, web actions,
the API gateway, through ``Authenticator.authenticate``).

Pure and total: any header, whatever its bytes, becomes a ``Presented`` value; malformed input is
``kind == "malformed"`` (a 401 that counts toward lockout), never an exception.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Literal, final

from stockade.security.tokens import TOKEN_PREFIX
from stockade.signing import SCHEME as SIGNED_SCHEME
from stockade.signing import parse_authorization

__all__ = ["MAX_HEADER_CHARS", "Presented", "read_authorization"]

MAX_HEADER_CHARS = 8192
_MAX_USER = 128
_MAX_SECRET = 256

Kind = Literal["missing", "malformed", "basic", "token", "bearer", "signed"]


@final
@dataclass(frozen=True, slots=True)
class Presented:
    """What a caller presented. ``subject`` is the claimed key uuid (or token name), for lockouts."""

    kind: Kind
    subject: str = ""
    secret: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    fields: dict[str, str] = field(default_factory=dict, repr=False)
    problem: str = ""


def _malformed(problem: str, subject: str = "") -> Presented:
    return Presented("malformed", subject=subject, problem=problem)


def read_authorization(header: str | None) -> Presented:
    """Classify and parse ``header``; never raises."""
    if not header:
        return Presented("missing")
    if len(header) > MAX_HEADER_CHARS or not header.isascii() or not header.isprintable():
        return _malformed("malformed credentials")
    scheme, _, value = header.partition(" ")
    lowered = scheme.lower()
    if lowered == "bearer":
        token = value.strip()
        return Presented("bearer", token=token) if token else _malformed("invalid bearer token")
    if scheme == SIGNED_SCHEME:
        fields = parse_authorization(header)
        if fields is None:
            return _malformed("malformed signature header")
        credential = fields["Credential"]
        if not credential or len(credential) > _MAX_USER:
            return _malformed("malformed signature header")
        return Presented("signed", subject=credential, fields=fields)
    if lowered != "basic" or not value.strip():
        return _malformed("malformed credentials")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return _malformed("malformed credentials")
    user, sep, secret = decoded.partition(":")
    if not sep or not user or not secret:
        return _malformed("malformed credentials", user[:_MAX_USER])
    if user.startswith(TOKEN_PREFIX):
        # Action tokens carry their signed claims in the user part; they name no key to lock.
        return Presented("token", token=user, secret=secret)
    if len(user) > _MAX_USER or len(secret) > _MAX_SECRET:
        return _malformed("oversized credentials")
    return Presented("basic", subject=user, secret=secret)
