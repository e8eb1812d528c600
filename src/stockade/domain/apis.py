"""API gateway routes: base path + relative path + verb → an action, with per-route protections.

Pure records and validation, shared by the store (persistence), the services (management) and
the gateway (serving). Paths are checked strictly rather than normalised silently: ``.`` and
``..`` segments, empty segments (``//``), backslashes and every percent-encoding are refused
(400), so a route can never be defined, or reached, through another spelling of a path. The
one normalisation is dropping a single trailing ``/``.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal, final, get_args

from stockade.domain.entities import JSON
from stockade.domain.names import EntityPath, parse_fqn
from stockade.errors import BadRequestError

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_ROUTES_PER_NAMESPACE",
    "RESPONSE_TYPES",
    "VERBS",
    "ApiRoute",
    "AuthMode",
    "Quota",
    "RateLimit",
    "ResponseType",
    "RouteOptions",
    "api_route_from_json",
    "api_route_to_json",
    "normalise_base_path",
    "normalise_relative_path",
    "split_request_path",
]

AuthMode = Literal["none", "api_key", "jwt"]
ResponseType = Literal["json", "http", "html", "text", "svg"]
AUTH_MODES: Final = get_args(AuthMode)
RESPONSE_TYPES: Final = get_args(ResponseType)
VERBS: Final = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")

DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
MAX_ROUTES_PER_NAMESPACE: Final = 1000
MAX_PATH_LENGTH: Final = 512
MAX_SEGMENTS: Final = 32
MAX_SCHEMA_BYTES: Final = 64 * 1024
_MAX_LIST = 32
_MAX_RATE: Final = 1_000_000
_MAX_QUOTA: Final = 10**12

# RFC 3986 pchar without pct-encoded: unreserved, sub-delims, ':' and '@'.
_SEGMENT_RE = re.compile(r"\A[A-Za-z0-9_.~!$&'()*+,;=:@-]+\Z")
_PARAM_RE = re.compile(r"\A\{([A-Za-z_][A-Za-z0-9_]{0,63})\}\Z")
_ORIGIN_RE = re.compile(r"\Ahttps?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?\Z")
# OAuth scope tokens (RFC 6749 §3.3): visible ASCII but '"' and '\'.
_SCOPE_RE = re.compile(r"\A[\x21\x23-\x5b\x5d-\x7e]{1,128}\Z")
# Percent-encodings that could rebuild a separator or a dot segment once decoded: '/', '.', '\', '%'.
_ENCODED_DANGER_RE = re.compile(r"%(2[eEfF]|5[cC]|25)")


def _path_segments(text: str, what: str, *, allow_params: bool) -> tuple[str, ...]:
    """The segments of a route path, or 400 naming what is wrong (never echoing the input)."""
    if not text.startswith("/"):
        raise BadRequestError(f"The {what} must start with '/'.")
    if len(text) > MAX_PATH_LENGTH:
        raise BadRequestError(f"The {what} is longer than {MAX_PATH_LENGTH} characters.")
    if "%" in text:
        raise BadRequestError(f"The {what} must not contain percent-encoded characters.")
    if "\\" in text:
        raise BadRequestError(f"The {what} must not contain backslashes.")
    if text == "/":
        return ()
    if text.endswith("/"):
        text = text[:-1]
    parts = tuple(text[1:].split("/"))
    if len(parts) > MAX_SEGMENTS:
        raise BadRequestError(f"The {what} has more than {MAX_SEGMENTS} segments.")
    names: set[str] = set()
    for part in parts:
        if not part:
            raise BadRequestError(f"The {what} must not contain empty segments ('//').")
        if part.strip(".") == "":
            raise BadRequestError(f"The {what} must not contain '.' or '..' segments.")
        param = _PARAM_RE.match(part)
        if param is not None:
            if not allow_params:
                raise BadRequestError(f"The {what} cannot contain path parameters.")
            if param.group(1) in names:
                raise BadRequestError(f"The {what} names the path parameter '{param.group(1)}' twice.")
            names.add(param.group(1))
            continue
        if not _SEGMENT_RE.match(part):
            raise BadRequestError(
                f"The {what} contains characters that are not allowed (path parameters are whole segments like '{{id}}')."
            )
    return parts


def normalise_base_path(text: str) -> str:
    """The canonical base path (``/`` or ``/a/b``), or 400."""
    parts = _path_segments(text, "base path", allow_params=False)
    return "/" + "/".join(parts)


def normalise_relative_path(text: str) -> str:
    """The canonical relative path, whose segments may be ``{param}``, or 400."""
    parts = _path_segments(text, "relative path", allow_params=True)
    return "/" + "/".join(parts)


def split_request_path(raw_path: str) -> tuple[str, ...]:
    """The segments of a request path as sent (still percent-encoded), or 400 for traversal tricks.

    Refused: ``.``/``..`` segments, empty segments, backslashes, and encoded ``/``, ``.``, ``\\``
    or ``%`` (which would decode to a separator, a dot segment, or a second round of decoding).
    """
    if not raw_path.startswith("/"):
        raise BadRequestError("The request path must start with '/'.")
    if "\\" in raw_path or _ENCODED_DANGER_RE.search(raw_path):
        raise BadRequestError("The request path contains an encoded separator or dot, or a backslash.")
    if raw_path == "/":
        return ()
    body = raw_path[1:-1] if raw_path.endswith("/") else raw_path[1:]
    parts = tuple(body.split("/"))
    for part in parts:
        if not part:
            raise BadRequestError("The request path must not contain empty segments ('//').")
        if part.strip(".") == "":
            raise BadRequestError("The request path must not contain '.' or '..' segments.")
    return parts


@final
@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: up to ``capacity`` requests at once, refilled at ``refill_per_s``."""

    capacity: int
    refill_per_s: float

    def __post_init__(self) -> None:
        if not 1 <= self.capacity <= _MAX_RATE:
            raise BadRequestError(f"A rate limit's burst must be between 1 and {_MAX_RATE}.")
        if not (math.isfinite(self.refill_per_s) and 0 < self.refill_per_s <= _MAX_RATE):
            raise BadRequestError(f"A rate limit's rate must be above 0 and at most {_MAX_RATE} per second.")


@final
@dataclass(frozen=True, slots=True)
class Quota:
    """Requests allowed per client per calendar day and month (UTC); None means no quota."""

    per_day: int | None = None
    per_month: int | None = None

    def __post_init__(self) -> None:
        for value in (self.per_day, self.per_month):
            if value is not None and not 1 <= value <= _MAX_QUOTA:
                raise BadRequestError(f"A quota must be between 1 and {_MAX_QUOTA}.")


@final
@dataclass(frozen=True, slots=True)
class RouteOptions:
    """What the gateway checks, in this order, before the action runs."""

    auth: AuthMode = "none"
    # For jwt: every scope here must be in the token's scope.
    scopes: tuple[str, ...] = ()
    # JSON Schema the request body must satisfy (checked as a schema by the services).
    request_schema: JSON = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Origins allowed to call from a browser ("*" for any); empty: cross-origin calls refused.
    cors_origins: tuple[str, ...] = ()
    client_rate: RateLimit | None = None
    route_rate: RateLimit | None = None
    quota: Quota | None = None

    def __post_init__(self) -> None:
        if self.auth not in AUTH_MODES:
            raise BadRequestError(f"auth must be one of {', '.join(AUTH_MODES)}.")
        if self.scopes and self.auth != "jwt":
            raise BadRequestError("Scopes apply to jwt authentication only.")
        if len(self.scopes) > _MAX_LIST or not all(_SCOPE_RE.match(s) for s in self.scopes):
            raise BadRequestError(f"Scopes must be at most {_MAX_LIST} OAuth scope tokens.")
        if self.request_schema is not None and not isinstance(self.request_schema, dict | bool):
            raise BadRequestError("The request schema must be a JSON Schema object.")
        if not 0 <= self.max_body_bytes <= 50 * 1024 * 1024:
            raise BadRequestError("The maximum body size must be between 0 and 52428800 bytes.")
        if len(self.cors_origins) > _MAX_LIST:
            raise BadRequestError(f"At most {_MAX_LIST} CORS origins.")
        for origin in self.cors_origins:
            if origin != "*" and not _ORIGIN_RE.match(origin):
                raise BadRequestError("A CORS origin must be '*' or scheme://host[:port] with no path.")


@final
@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One route of a namespace's API: ``{base_path}{rel_path}`` with ``verb`` runs ``action``."""

    namespace: str
    base_path: str
    rel_path: str
    verb: str
    action: EntityPath
    response_type: ResponseType = "json"
    api_name: str = ""
    options: RouteOptions = field(default_factory=RouteOptions)
    created: int = 0
    updated: int = 0
    # Derived in __post_init__: a stable id of (namespace, base path, relative path, verb), keying buckets and quotas.
    route_id: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        if normalise_base_path(self.base_path) != self.base_path:
            raise BadRequestError("The base path is not in canonical form.")
        if normalise_relative_path(self.rel_path) != self.rel_path:
            raise BadRequestError("The relative path is not in canonical form.")
        if self.verb not in VERBS:
            raise BadRequestError(f"The operation must be one of {', '.join(VERBS)}.")
        if self.response_type not in RESPONSE_TYPES:
            raise BadRequestError(f"The response type must be one of {', '.join(RESPONSE_TYPES)}.")
        # Invariant: a route only ever runs an action of its own namespace (it runs as the owner).
        if self.action.namespace != self.namespace:
            raise BadRequestError("The action must be in the API's namespace.")
        if len(self.api_name) > 256:
            raise BadRequestError("The API name is longer than 256 characters.")
        text = "\n".join((self.namespace, self.base_path, self.rel_path, self.verb))
        object.__setattr__(self, "route_id", hashlib.sha256(text.encode()).hexdigest()[:32])

    @property
    def template(self) -> tuple[str, ...]:
        """Segments of base path and relative path together (``{name}`` for parameters)."""
        parts = self.base_path.split("/")[1:] + self.rel_path.split("/")[1:]
        return tuple(p for p in parts if p)


def _int(raw: dict[str, Any], key: str, default: int | None) -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequestError(f"'{key}' must be an integer.")
    return value


def _str_list(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequestError(f"'{key}' must be a list of strings.")
    return tuple(value)


def _rate(raw: dict[str, Any], key: str) -> RateLimit | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequestError(f"'{key}' must be an object with 'capacity' and 'refillPerSecond'.")
    capacity = _int(value, "capacity", None)
    refill = value.get("refillPerSecond")
    if capacity is None or isinstance(refill, bool) or not isinstance(refill, int | float):
        raise BadRequestError(f"'{key}' must be an object with 'capacity' and 'refillPerSecond'.")
    return RateLimit(capacity, float(refill))


def _quota(raw: dict[str, Any]) -> Quota | None:
    value = raw.get("quota")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequestError("'quota' must be an object with 'perDay' and/or 'perMonth'.")
    quota = Quota(_int(value, "perDay", None), _int(value, "perMonth", None))
    return quota if quota.per_day is not None or quota.per_month is not None else None


def api_route_from_json(namespace: str, raw: JSON, *, created: int = 0, updated: int = 0) -> ApiRoute:
    """A route from its JSON form (the REST body and the stored document); 400 when invalid.

    ``_`` as the action's namespace, or none at all, means ``namespace``.
    """
    if not isinstance(raw, dict):
        raise BadRequestError("The route must be a JSON object.")
    for key in ("basePath", "relPath", "verb", "action"):
        if not isinstance(raw.get(key), str):
            raise BadRequestError(f"'{key}' is required and must be a string.")
    auth = raw.get("auth", "none")
    response_type = raw.get("responseType", "json")
    api_name = raw.get("apiName", "")
    if not isinstance(auth, str) or not isinstance(response_type, str) or not isinstance(api_name, str):
        raise BadRequestError("'auth', 'responseType' and 'apiName' must be strings.")
    options = RouteOptions(
        auth=auth,  # type: ignore[arg-type]  # checked in RouteOptions.__post_init__
        scopes=_str_list(raw, "scopes"),
        request_schema=raw.get("requestSchema"),
        max_body_bytes=_int(raw, "maxBodyBytes", DEFAULT_MAX_BODY_BYTES) or 0,
        cors_origins=_str_list(raw, "corsOrigins"),
        client_rate=_rate(raw, "clientRateLimit"),
        route_rate=_rate(raw, "routeRateLimit"),
        quota=_quota(raw),
    )
    return ApiRoute(
        namespace=namespace,
        base_path=normalise_base_path(raw["basePath"]),
        rel_path=normalise_relative_path(raw["relPath"]),
        verb=raw["verb"].upper(),
        action=parse_fqn(raw["action"], namespace),
        response_type=response_type.lower(),  # type: ignore[arg-type]  # checked in ApiRoute.__post_init__
        api_name=api_name,
        options=options,
        created=created,
        updated=updated,
    )


def _rate_json(rate: RateLimit | None) -> JSON:
    return None if rate is None else {"capacity": rate.capacity, "refillPerSecond": rate.refill_per_s}


def api_route_to_json(route: ApiRoute) -> dict[str, JSON]:
    """The JSON form read by ``api_route_from_json``."""
    options = route.options
    quota = options.quota
    return {
        "namespace": route.namespace,
        "basePath": route.base_path,
        "relPath": route.rel_path,
        "verb": route.verb,
        "action": route.action.fqn,
        "responseType": route.response_type,
        "apiName": route.api_name,
        "auth": options.auth,
        "scopes": list(options.scopes),
        "requestSchema": options.request_schema,
        "maxBodyBytes": options.max_body_bytes,
        "corsOrigins": list(options.cors_origins),
        "clientRateLimit": _rate_json(options.client_rate),
        "routeRateLimit": _rate_json(options.route_rate),
        "quota": None if quota is None else {"perDay": quota.per_day, "perMonth": quota.per_month},
        "created": route.created,
        "updated": route.updated,
    }
