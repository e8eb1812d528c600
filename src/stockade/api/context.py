"""Parsing an HTTP request into typed inputs: identity, namespace, JSON body, query values."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from stockade.api.problems import JsonResponse, error_response
from stockade.config import Settings
from stockade.domain import JSON, Clock, EntityPath, Identity, validate_entity_name, validate_namespace
from stockade.edge import JsonLimits, parse_json, read_body
from stockade.errors import (
    BadRequestError,
    PlatformError,
    UnsupportedMediaTypeError,
)
from stockade.observability.events import EventType, SecurityEvent, Severity
from stockade.security.sources import client_address as source_of
from stockade.security.sources import parse_networks
from stockade.services import (
    AccessService,
    ActionService,
    ActivationService,
    AdvisorySyncer,
    ApiService,
    AuditLog,
    Authenticator,
    Catalog,
    Credentials,
    DeployGate,
    InvokeService,
    Monitoring,
    PackageService,
    RuleService,
    SecretService,
    Services,
    SignedParts,
    Throttle,
    TransferTokens,
    TriggerService,
)
from stockade.signing import SCHEME as SIGNING_SCHEME

__all__ = [
    "Listing",
    "RouteServices",
    "authenticate",
    "client_address",
    "collection_listing",
    "endpoint",
    "entity_path",
    "json_limits",
    "namespace_param",
    "paging",
    "query_bool",
    "query_int",
    "query_str",
    "read_body",
    "read_json",
    "report_refusal",
    "services_of",
    "transaction_id",
]

Handler = Callable[[Request], Awaitable[Response]]
_INT_RE = re.compile(r"\A-?[0-9]{1,19}\Z")
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class Listing(Protocol):
    """A service that lists one collection of a namespace."""

    async def list(self, identity: Identity, namespace: str, *, skip: int, limit: int) -> list[dict[str, JSON]]:
        """A page of the collection."""

    async def count(self, identity: Identity, namespace: str) -> int:
        """The collection's size."""


def collection_listing(collection: str, pick: Callable[[RouteServices], Listing], summary: str) -> Handler:
    """The GET handler of a collection: paging, ``count=true``, OpenWhisk errors."""

    async def handler(request: Request) -> Response:
        credentials = await authenticate(request)
        service = pick(services_of(request))
        namespace = namespace_param(request, credentials)
        skip, limit = paging(request, collection)
        if query_bool(request, "count"):
            return JsonResponse({collection: await service.count(credentials.identity, namespace)})
        return JsonResponse(await service.list(credentials.identity, namespace, skip=skip, limit=limit))

    handler.__name__ = f"list_{collection}"
    handler.__doc__ = summary
    return endpoint(handler)


class RouteServices(Protocol):
    """What HTTP routes may use: the use cases. Not the store, the vault, key rotation, the
    recorder or the epoch: a route reaches data only through a use case that checks access."""

    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def auth(self) -> Authenticator: ...
    @property
    def catalog(self) -> Catalog: ...
    @property
    def actions(self) -> ActionService: ...
    @property
    def packages(self) -> PackageService: ...
    @property
    def triggers(self) -> TriggerService: ...
    @property
    def rules(self) -> RuleService: ...
    @property
    def invoke(self) -> InvokeService: ...
    @property
    def activations(self) -> ActivationService: ...
    @property
    def throttle(self) -> Throttle: ...
    @property
    def access(self) -> AccessService: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def secrets(self) -> SecretService: ...
    @property
    def scans(self) -> DeployGate: ...
    @property
    def advisory_sync(self) -> AdvisorySyncer: ...
    @property
    def transfer(self) -> TransferTokens: ...
    @property
    def monitoring(self) -> Monitoring: ...
    @property
    def apis(self) -> ApiService: ...


def services_of(request: Request) -> RouteServices:
    """The use cases routes may call (``RouteServices``; mypy keeps routes to it)."""
    services: Services = request.app.state.services
    return services


def transaction_id(request: Request) -> str:
    """This request's transaction id (set by ApiMiddleware)."""
    tid: str = request.scope.get("state", {}).get("transaction_id", "")
    return tid


def endpoint(handler: Handler) -> Handler:
    """Map PlatformErrors raised by ``handler`` to OpenWhisk error responses."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except PlatformError as exc:
            report_refusal(request, exc)
            return error_response(exc, transaction_id(request))

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


_REFUSALS = {
    403: (EventType.AUTHORIZATION_DENIED, Severity.MEDIUM),
    429: (EventType.RATE_LIMITED, Severity.LOW),
}


def report_refusal(request: Request, exc: PlatformError, *, action: str = "") -> None:
    """A 403 or 429 becomes a security event (and so a denial metric); other errors are not events."""
    refusal = _REFUSALS.get(exc.status)
    if refusal is None:
        return
    identity = request.scope.get("state", {}).get("identity")
    namespace = request.path_params.get("ns", "")
    if namespace == "_" or not namespace:
        namespace = identity.namespace if identity is not None else ""
    services = services_of(request)
    services.monitoring.events.emit(
        SecurityEvent(
            type=refusal[0],
            severity=refusal[1],
            time_ms=services.clock.now_ms(),
            namespace=namespace,
            action=action,
            subject=identity.subject if identity is not None else "",
            source="api",
            details={"method": request.method, "path": request.url.path[:300], "client": client_address(request)},
        )
    )


def client_address(request: Request) -> str:
    """The client's address, for lockouts, events and the audit log.

    ``X-Forwarded-For`` counts only when the TCP peer is a proxy named in ``auth.trusted_proxies``
    (none by default); anyone else's forwarded headers change nothing.
    """
    peer = request.client.host if request.client is not None else ""
    trusted = parse_networks(services_of(request).settings.auth.trusted_proxies)
    return source_of(peer, request.headers.get("x-forwarded-for"), trusted)


async def authenticate(request: Request) -> Credentials:
    """The caller's credentials (API key, action token, JWT or signed request), or 401/429.

    The identity is kept on the request for the audit middleware.
    """
    state = request.scope.setdefault("state", {})
    known: Credentials | None = state.get("credentials")
    if known is not None:
        return known  # authenticated once per request (by the route gate), never twice
    authorization = request.headers.get("authorization")
    signed = None
    if authorization and authorization.startswith(SIGNING_SCHEME):
        # A signature covers the body, so it is read here (bounded like every body).
        body = await read_body(request, services_of(request).settings.api.max_body_bytes)
        signed = SignedParts(request.method, request.url.path, request.url.query, body)
    credentials = await services_of(request).auth.authenticate(
        authorization, source=client_address(request), signed=signed
    )
    state["identity"] = credentials.identity
    state["credentials"] = credentials
    return credentials


def namespace_param(request: Request, credentials: Credentials) -> str:
    """The URL's namespace with ``_`` meaning the caller's own."""
    ns: str = request.path_params["ns"]
    return credentials.identity.namespace if ns == "_" else validate_namespace(ns)


async def read_json(request: Request, *, limit_bytes: int) -> Any:
    """The JSON body (``{}`` when empty); 415 for another content type, 413 over ``limit_bytes``.

    Strict RFC 8259 with the ``[http]`` limits (edge/json.py): 400 for anything else.
    """
    body = await read_body(request, limit_bytes)
    if not body.strip():
        return {}
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"The request's Content-Type [{content_type[:100]}] is not supported. Expected:\napplication/json"
        )
    return parse_json(body, json_limits(request))


def json_limits(request: Request) -> JsonLimits:
    """The JSON limits of this app's settings."""
    http = services_of(request).settings.http
    return JsonLimits(max_depth=http.max_json_depth, max_members=http.max_json_members)


# What a JavaScript client sends for an option it left unset (OpenWhisk ignores it).
_UNSET = ("", "undefined")


def query_str(request: Request, name: str) -> str | None:
    """A text query parameter; None when absent, empty or ``undefined``."""
    raw = request.query_params.get(name)
    return None if raw is None or raw in _UNSET else raw


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter (``true``/``false``)."""
    raw = request.query_params.get(name)
    if raw is None or raw in _UNSET:
        return default
    lowered = raw.lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise BadRequestError(f"The query parameter '{name}' was malformed:\n'{raw}' is not a boolean")


def query_int(request: Request, name: str, default: int, *, detail: Callable[[str], str] | None = None) -> int:
    """A 64-bit integer query parameter (ASCII digits, optional ``-``); errors wrap ``detail(raw)`` as OpenWhisk does."""
    raw = request.query_params.get(name)
    if raw is None or raw in _UNSET:
        return default
    if _INT_RE.match(raw) is None or not INT64_MIN <= int(raw) <= INT64_MAX:
        message = detail(raw[:64]) if detail else f"'{raw[:64]}' is not an integer"
        raise BadRequestError(f"The query parameter '{name}' was malformed:\n{message}")
    return int(raw)


def paging(request: Request, collection: str) -> tuple[int, int]:
    """``skip`` and ``limit`` with OpenWhisk's ranges (limit 0 means 200)."""

    def not_int(raw: str) -> str:
        return f"The value '{raw}' is not an integer for {collection}."

    limit = query_int(request, "limit", 30, detail=not_int)
    skip = query_int(request, "skip", 0, detail=not_int)
    if not 0 <= limit <= 200:
        raise BadRequestError(
            f"The query parameter 'limit' was malformed:\nThe value '{limit}' is not in the range of 0 to 200 for {collection}."
        )
    if skip < 0:
        raise BadRequestError(
            f"The query parameter 'skip' was malformed:\nThe value '{skip}' is not greater than or equal to 0 for {collection}."
        )
    return skip, (limit or 200)


def entity_path(request: Request, namespace: str) -> EntityPath:
    """``/{name}`` or ``/{pkg}/{name}`` from the URL, validated."""
    name = validate_entity_name(request.path_params["name"])
    package = request.path_params.get("pkg")
    if package is not None:
        return EntityPath(namespace, name, validate_entity_name(package))
    return EntityPath(namespace, name)
