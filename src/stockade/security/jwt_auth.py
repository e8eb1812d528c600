"""JWT bearer authentication: OIDC-style tokens from configured issuers, with per-action scopes.

Each issuer names its JWKS (a file, or a URL fetched and cached), the audiences it may use,
the namespace its tokens act in and the role they get there. Only asymmetric algorithms are
accepted (``alg: none`` and HMAC-with-a-public-key tricks are refused), and a token's ``scope``
names the actions it opens (``invoke:/ns/pkg/action``, ``invoke:/ns/pkg/*``): a token for one
function does not open the others.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, final

import jwt

from stockade.errors import BadRequestError

__all__ = ["ALLOWED_ALGORITHMS", "JwtClaims", "JwtIssuer", "JwtVerifier", "load_issuers"]

ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


@final
@dataclass(frozen=True, slots=True)
class JwtIssuer:
    """A trusted token issuer."""

    issuer: str
    audiences: tuple[str, ...]
    namespace: str
    role: str = "invoker"
    jwks_file: str = ""
    jwks_url: str = ""
    leeway_s: int = 30


@final
@dataclass(frozen=True, slots=True)
class JwtClaims:
    """A verified token."""

    issuer: str
    subject: str
    namespace: str
    role: str
    scope: tuple[str, ...]
    expires_s: int


def load_issuers(path: Path) -> list[JwtIssuer]:
    """Issuers from a JSON file: ``[{"issuer", "audiences", "namespace", "role", "jwks_file"|"jwks_url"}]``."""
    try:
        raw = json.loads(path.read_text())
        issuers = [
            JwtIssuer(
                issuer=str(item["issuer"]),
                audiences=tuple(str(a) for a in item["audiences"]),
                namespace=str(item["namespace"]),
                role=str(item.get("role", "invoker")),
                jwks_file=str(item.get("jwks_file", "")),
                jwks_url=str(item.get("jwks_url", "")),
                leeway_s=int(item.get("leeway_s", 30)),
            )
            for item in raw
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadRequestError(f"cannot read JWT issuers from {path}: {exc}") from None
    for issuer in issuers:
        if not issuer.audiences:
            raise BadRequestError(f"JWT issuer {issuer.issuer!r} must name at least one audience")
        if bool(issuer.jwks_file) == bool(issuer.jwks_url):
            raise BadRequestError(f"JWT issuer {issuer.issuer!r} needs exactly one of jwks_file or jwks_url")
    return issuers


class JwtVerifier:
    """Verifies bearer tokens against the configured issuers."""

    def __init__(self, issuers: Sequence[JwtIssuer]) -> None:
        self._issuers = {i.issuer: i for i in issuers}
        self._file_keys: dict[str, jwt.PyJWKSet] = {}
        self._clients: dict[str, jwt.PyJWKClient] = {}
        for issuer in issuers:
            if issuer.jwks_file:
                self._file_keys[issuer.issuer] = jwt.PyJWKSet.from_json(Path(issuer.jwks_file).read_text())
            else:
                self._clients[issuer.issuer] = jwt.PyJWKClient(issuer.jwks_url, cache_keys=True, lifespan=300)

    @property
    def is_enabled(self) -> bool:
        """True when any issuer is configured."""
        return bool(self._issuers)

    def _key(self, issuer: JwtIssuer, token: str, header: Mapping[str, Any]) -> Any:
        kid = header.get("kid")
        if issuer.issuer in self._file_keys:
            keys = self._file_keys[issuer.issuer]
            for key in keys.keys:
                if kid is None or key.key_id == kid:
                    return key.key
            raise jwt.InvalidTokenError("no key in the issuer's JWKS matches the token")
        return self._clients[issuer.issuer].get_signing_key_from_jwt(token).key

    def verify(self, token: str) -> JwtClaims | None:
        """The claims of a valid token from a configured issuer; None for anything else."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALLOWED_ALGORITHMS:
                return None
            unverified = jwt.decode(token, options={"verify_signature": False})
            issuer = self._issuers.get(str(unverified.get("iss", "")))
            if issuer is None:
                return None
            claims = jwt.decode(
                token,
                self._key(issuer, token, header),
                algorithms=list(ALLOWED_ALGORITHMS),
                audience=list(issuer.audiences),
                issuer=issuer.issuer,
                leeway=issuer.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except (jwt.PyJWTError, ValueError, KeyError, TypeError):
            return None
        raw_scope = claims.get("scope", claims.get("scp", ""))
        scope = tuple(raw_scope.split()) if isinstance(raw_scope, str) else tuple(str(s) for s in raw_scope or ())
        return JwtClaims(
            issuer=issuer.issuer,
            subject=str(claims["sub"]),
            namespace=issuer.namespace,
            role=issuer.role,
            scope=scope,
            expires_s=int(claims["exp"]),
        )
