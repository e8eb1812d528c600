"""The gateway's request pipeline: every check refuses before any action runs.

Order: route → CORS preflight → origin → authentication → body size → JSON Schema → the action
exists → rate limits (the client's bucket and the route's) → quota → invoke as the route's
namespace (blocking, like a web action, so the owner's throttles apply) → the result mapped as
web actions map it (services/web.py), with secure headers. Framework-free: ``http.py`` adapts
Starlette to ``GatewayRequest``/``GatewayResponse``.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, final

import structlog
from jsonschema import Draft202012Validator

from stockade.config import Settings
from stockade.domain import ApiRoute, Clock, Identity, is_valid_name, split_request_path
from stockade.edge import JsonLimits, parse_json
from stockade.errors import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    PlatformError,
    ThrottledError,
    UnauthenticatedError,
    UnsupportedMediaTypeError,
)
from stockade.gateway.buckets import BucketTable, retry_after_s
from stockade.gateway.matching import RouteTable
from stockade.observability.events import EventType, SecurityEvent, Severity
from stockade.services import (
    MISSING_AUTH_MESSAGE,
    ApiService,
    Authenticator,
    Catalog,
    InvokeRequest,
    InvokeService,
    Monitoring,
    ResolvedAction,
    RetryLaterError,
)
from stockade.services.web import UnsafeResponseError, WebRequest, response_problem, web_arguments, web_response

__all__ = ["Gateway", "GatewayRequest", "GatewayResponse", "client_of"]

log = structlog.get_logger("stockade.gateway")

PREFIX: Final = ("api", "gw")
NOT_READY: Final = "Response not yet ready."
FORBIDDEN: Final = "The supplied authentication is not authorized to access this resource."
ALLOW_COOKIES_ANNOTATION: Final = "allow-cookies"
# Headers the gateway sets for the action; the same names sent by a client are dropped.
GATEWAY_HEADER_PREFIX: Final = "x-stockade-"
_MAX_TABLES: Final = 10_000
_MAX_VALIDATORS: Final = 4096
_EVENTS: Final = {
    401: (EventType.AUTH_FAILED, Severity.LOW),
    403: (EventType.AUTHORIZATION_DENIED, Severity.MEDIUM),
    429: (EventType.RATE_LIMITED, Severity.LOW),
}


@final
@dataclass(frozen=True, slots=True)
class GatewayRequest:
    """What the pipeline needs of an HTTP request."""

    method: str
    raw_path: str  # as sent: still percent-encoded, no query string
    query_string: str
    headers: Mapping[str, str]  # lower-cased names
    client_host: str
    scheme: str
    transaction_id: str
    # Reads the body, refusing (413) past the given number of bytes.
    read_body: Callable[[int], Awaitable[bytes]]


@final
@dataclass(frozen=True, slots=True)
class GatewayResponse:
    """Status, headers and body to send."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class MethodNotAllowedError(PlatformError):
    """The path exists, with other verbs (405)."""

    status = 405
    code = "method_not_allowed"
    exit_code = 2

    def __init__(self, verbs: Sequence[str]) -> None:
        super().__init__("The requested method is not allowed for this resource.")
        self.verbs = tuple(verbs)


@final
@dataclass(frozen=True, slots=True)
class _Caller:
    """Who is calling: ``client`` keys buckets and quotas; ``user`` becomes ``__ow_user``."""

    client: str
    user: str | None = None


@dataclass(slots=True)
class _Progress:
    """What the error path needs to know about how far a request got."""

    namespace: str = ""
    route: ApiRoute | None = None
    origin: str | None = None  # an allowed Origin, echoed on errors too
    client: str = ""


@functools.lru_cache(maxsize=4096)
def client_of(host: str) -> str:
    """The client key of an anonymous caller: its IPv4 address, or its IPv6 /64 network."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"ip:{host[:64]}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        # One client per /64: a single host usually holds a whole /64 and could rotate through it.
        return f"ip:{ipaddress.IPv6Network((address, 64), strict=False)}"
    return f"ip:{address}"


def _client_keys(query_string: str, body: bytes, content_type: str, limits: JsonLimits) -> frozenset[str]:
    """The argument names a client chose: query keys, and the keys of an object or form body."""
    keys = {k for k, _ in urllib.parse.parse_qsl(query_string, keep_blank_values=True)}
    media = content_type.split(";", 1)[0].strip().lower()
    if body and media == "application/x-www-form-urlencoded":
        keys.update(k for k, _ in urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    elif body and (not media or media == "application/json" or media.endswith("+json")):
        try:
            value = parse_json(body, limits)
        except PlatformError:
            value = None
        if isinstance(value, dict):
            keys.update(value)
    return frozenset(keys)


def _origin_allowed(route: ApiRoute, origin: str) -> bool:
    allowed = route.options.cors_origins
    return "*" in allowed or origin in allowed


def _cors_headers(route: ApiRoute, origin: str | None) -> list[tuple[str, str]]:
    if origin is None:
        return []
    value = "*" if "*" in route.options.cors_origins else origin
    return [("access-control-allow-origin", value), ("vary", "Origin")]


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class GatewayServices(Protocol):
    """What the gateway uses: routes and quotas, the catalog, invocation, authentication. Never the
    store, secrets, roles or the audit log directly."""

    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def auth(self) -> Authenticator: ...
    @property
    def catalog(self) -> Catalog: ...
    @property
    def invoke(self) -> InvokeService: ...
    @property
    def apis(self) -> ApiService: ...
    @property
    def monitoring(self) -> Monitoring: ...


class Gateway:
    """Serves ``/api/gw/{namespace}{basepath}{relpath}``; one per app (its buckets live here)."""

    def __init__(self, services: GatewayServices) -> None:
        self._services = services
        self._buckets = BucketTable(services.clock.monotonic)
        self._tables: dict[str, tuple[tuple[ApiRoute, ...], RouteTable]] = {}
        self._validators: dict[tuple[str, int], Draft202012Validator] = {}

    async def handle(self, request: GatewayRequest) -> GatewayResponse:
        """Answer one request; PlatformErrors become OpenWhisk-shaped error responses."""
        progress = _Progress()
        try:
            return await self._handle(request, progress)
        except PlatformError as exc:
            self._report(request, progress, exc)
            return self._error(request, progress, exc)

    # -- the pipeline ------------------------------------------------------------------------------

    async def _handle(self, request: GatewayRequest, progress: _Progress) -> GatewayResponse:
        namespace, segments = self._split(request.raw_path)
        progress.namespace = namespace
        table = await self._table(namespace)
        origin = request.headers.get("origin")
        if request.method == "OPTIONS" and origin is not None and "access-control-request-method" in request.headers:
            return self._preflight(request, table, segments, origin)
        match = table.match(segments, request.method)
        if match is None:
            verbs = table.verbs(segments)
            raise MethodNotAllowedError(verbs) if verbs else NotFoundError()
        route = progress.route = match.route
        if origin is not None:
            if not _origin_allowed(route, origin):
                raise ForbiddenError("The origin is not allowed to call this API.")
            progress.origin = origin
        caller = await self._authenticate(request, route)
        progress.client = caller.client
        settings = self._services.settings
        body = await request.read_body(min(route.options.max_body_bytes, settings.limits.max_payload_bytes))
        limits = JsonLimits(max_depth=settings.http.max_json_depth, max_members=settings.http.max_json_members)
        self._check_schema(route, request.headers, body, limits)
        action = await self._resolve(route)
        demands = []
        if route.options.client_rate is not None:
            demands.append((f"{route.route_id}|{caller.client}", route.options.client_rate))
        if route.options.route_rate is not None:
            demands.append((route.route_id, route.options.route_rate))
        wait_s = self._buckets.take(demands)
        if wait_s > 0:
            raise RetryLaterError("Rate limit exceeded for this API; retry later.", retry_after_s(wait_s))
        await self._services.apis.consume_quota(route, caller.client)
        headers = {
            k: v
            for k, v in request.headers.items()
            if not k.startswith(GATEWAY_HEADER_PREFIX) and (k != "authorization" or route.options.auth == "none")
        }
        # Invariant: the caller's credentials never reach the action; it learns who called from these.
        headers[GATEWAY_HEADER_PREFIX + "client"] = caller.client
        headers[GATEWAY_HEADER_PREFIX + "route"] = f"{route.verb} {route.base_path}{route.rel_path}"
        args, supplied = web_arguments(
            WebRequest(request.method, headers, match.rel_path, request.query_string, body, caller.user, limits),
            raw=False,
        )
        args.update(match.params)
        # The client's own keys: __ow_body made by the platform from a text, binary or non-object body is not one.
        supplied = _client_keys(request.query_string, body, headers.get("content-type", ""), limits) & supplied
        extension = "." + route.response_type
        result = await self._services.invoke.invoke(
            InvokeRequest(
                identity=self._owner(route),
                path=route.action,
                params=args,
                blocking=True,
                wait_ms=settings.invoker.blocking_wait_ms,
                transaction_id=request.transaction_id,
                seal="web",
                supplied_keys=supplied | frozenset(match.params),
                response_check=lambda activation: response_problem(activation, extension),
            )
        )
        if result.activation is None:
            waiting = [("content-type", "application/json"), ("x-openwhisk-activation-id", result.activation_id)]
            waiting += _cors_headers(route, progress.origin)
            return GatewayResponse(202, waiting, _json({"error": NOT_READY, "code": request.transaction_id}))
        try:
            mapped = web_response(result.activation, extension)
        except PlatformError as exc:
            if isinstance(exc, UnsafeResponseError):
                log.warning("gateway.response_refused", reason=exc.reason, activation_id=result.activation_id)
            response = self._error(request, progress, exc)
            response.headers.append(("x-openwhisk-activation-id", result.activation_id))
            return response
        headers_out = list(mapped.headers)
        if action.action.annotation(ALLOW_COOKIES_ANNOTATION) is not True:
            headers_out = [(k, v) for k, v in headers_out if k != "set-cookie"]
        headers_out = [(k, v) for k, v in headers_out if not k.startswith("access-control-")]
        # Secure headers are added to every response by ApiMiddleware (edge.secure_headers).
        headers_out += _cors_headers(route, progress.origin)
        headers_out.append(("x-openwhisk-activation-id", result.activation_id))
        return GatewayResponse(mapped.status, headers_out, mapped.body)

    async def _resolve(self, route: ApiRoute) -> ResolvedAction:
        try:
            return await self._services.catalog.resolve_action(self._owner(route), route.action)
        except PlatformError as exc:
            # A route to a missing or unreachable action looks like no route at all.
            if exc.status in (403, 404, 409):
                raise NotFoundError() from None
            raise

    @staticmethod
    def _owner(route: ApiRoute) -> Identity:
        # Routes run as their namespace: it may read and invoke there, nothing else.
        return Identity(subject=route.namespace, namespace=route.namespace, key_uuid="", kind="owner")

    @staticmethod
    def _split(raw_path: str) -> tuple[str, tuple[str, ...]]:
        """The namespace and the decoded segments after it; 400 for traversal tricks, 404 for no namespace."""
        parts = split_request_path(raw_path)
        if parts[:2] != PREFIX or len(parts) < 3:
            raise NotFoundError()
        try:
            decoded = tuple(urllib.parse.unquote(p, errors="strict") for p in parts[2:])
        except UnicodeDecodeError:
            raise BadRequestError("The request path is not valid UTF-8.") from None
        if any(ord(c) < 0x20 or ord(c) == 0x7F for segment in decoded for c in segment):
            raise BadRequestError("The request path contains control characters.")
        if not is_valid_name(decoded[0]):
            raise NotFoundError()
        return decoded[0], decoded[1:]

    async def _table(self, namespace: str) -> RouteTable:
        routes = await self._services.apis.routes_of(namespace)
        cached = self._tables.get(namespace)
        if cached is not None and cached[0] is routes:
            return cached[1]
        table = RouteTable(routes)
        if len(self._tables) >= _MAX_TABLES:
            self._tables.clear()
        self._tables[namespace] = (routes, table)
        return table

    def _preflight(
        self, request: GatewayRequest, table: RouteTable, segments: tuple[str, ...], origin: str
    ) -> GatewayResponse:
        """Answer a CORS preflight for the route of the requested method; the action never runs."""
        wanted = request.headers.get("access-control-request-method", "").upper()
        match = table.match(segments, wanted)
        if match is None:
            raise NotFoundError()
        if not _origin_allowed(match.route, origin):
            raise ForbiddenError("The origin is not allowed to call this API.")
        asked = request.headers.get("access-control-request-headers", "")
        allowed_headers = ", ".join(h.strip() for h in asked.split(",") if h.strip().replace("-", "").isalnum())
        headers = [
            *_cors_headers(match.route, origin),
            ("access-control-allow-methods", wanted),
            ("access-control-max-age", "600"),
        ]
        if allowed_headers:
            headers.append(("access-control-allow-headers", allowed_headers))
        return GatewayResponse(204, headers)

    async def _authenticate(self, request: GatewayRequest, route: ApiRoute) -> _Caller:
        mode = route.options.auth
        if mode == "none":
            return _Caller(client_of(request.client_host))
        authorization = request.headers.get("authorization")
        scheme = authorization.split(" ", 1)[0].lower() if authorization else ""
        expected = "basic" if mode == "api_key" else "bearer"
        if not authorization:
            raise UnauthenticatedError(MISSING_AUTH_MESSAGE)
        if scheme != expected:
            raise UnauthenticatedError()
        credentials = await self._services.auth.authenticate(authorization, source=request.client_host)
        identity = credentials.identity
        if mode == "api_key":
            if identity.kind != "key":
                raise UnauthenticatedError()
            return _Caller(f"key:{identity.key_uuid}", identity.namespace)
        if identity.kind != "jwt":
            raise UnauthenticatedError()
        # A token works on the routes of the namespace its issuer is trusted for, with every scope the route names.
        granted = set(identity.scope or ())
        if identity.namespace != route.namespace or not set(route.options.scopes) <= granted:
            raise ForbiddenError(FORBIDDEN)
        return _Caller(f"jwt:{identity.subject}")

    def _check_schema(self, route: ApiRoute, headers: Mapping[str, str], body: bytes, limits: JsonLimits) -> None:
        schema = route.options.request_schema
        if schema is None:
            return
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if body.strip() and media and media != "application/json" and not media.endswith("+json"):
            raise UnsupportedMediaTypeError(
                f"The request's Content-Type [{headers.get('content-type', '')[:100]}] is not supported. Expected:\napplication/json"
            )
        value = parse_json(body, limits) if body.strip() else {}
        key = (route.route_id, route.updated)
        validator = self._validators.get(key)
        if validator is None:
            if len(self._validators) >= _MAX_VALIDATORS:
                self._validators.clear()
            validator = self._validators[key] = Draft202012Validator(schema)
        if validator.is_valid(value):
            return
        error = next(iter(sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))), None)
        if error is not None:
            where = "/" + "/".join(str(p) for p in error.absolute_path)
            raise BadRequestError(
                f"The request body does not match the API's schema: at {where}: {error.message[:200]}"
            )

    # -- refusals ----------------------------------------------------------------------------------

    def _error(self, request: GatewayRequest, progress: _Progress, exc: PlatformError) -> GatewayResponse:
        # Invariant: clients never see internals; the detail was logged where it was raised.
        message = (
            "There was an internal server error." if exc.status >= 500 and exc.status not in (503, 507) else exc.message
        )
        headers = [("content-type", "application/json")]
        if isinstance(exc, ThrottledError):
            headers.append(("retry-after", str(exc.retry_after_s)))
        if isinstance(exc, MethodNotAllowedError):
            headers.append(("allow", ", ".join(exc.verbs)))
        if exc.status == 401 and progress.route is not None:
            scheme = "Basic" if progress.route.options.auth == "api_key" else "Bearer"
            headers.append(("www-authenticate", f'{scheme} realm="Stockade API gateway"'))
        if exc.status == 403 and progress.route is not None and progress.route.options.auth == "jwt":
            scope = " ".join(progress.route.options.scopes)
            headers.append(("www-authenticate", f'Bearer error="insufficient_scope", scope="{scope}"'))
        if progress.route is not None:
            headers += _cors_headers(progress.route, progress.origin)
        return GatewayResponse(exc.status, headers, _json({"error": message, "code": request.transaction_id}))

    def _report(self, request: GatewayRequest, progress: _Progress, exc: PlatformError) -> None:
        """Refusals become security events (and so denial metrics); path tricks are logged."""
        if exc.status == 400 and progress.route is None:
            log.warning("gateway.bad_path", path=request.raw_path[:300], client=request.client_host)
        kind = _EVENTS.get(exc.status)
        if kind is None and exc.status == 400 and "schema" in exc.message:
            kind = (EventType.SCHEMA_REFUSED, Severity.LOW)
        if kind is None:
            return
        route = progress.route
        services = self._services
        services.monitoring.events.emit(
            SecurityEvent(
                type=kind[0],
                severity=kind[1],
                time_ms=services.clock.now_ms(),
                namespace=progress.namespace,
                action=route.action.key if route is not None else "",
                subject=progress.client,
                source="gateway",
                details={
                    "method": request.method,
                    "path": request.raw_path[:300],
                    "client": request.client_host,
                    "reason": exc.message[:200],
                },
            )
        )
