"""API gateway routes: managing them (with access checks), looking them up fast, and quotas.

Management needs WRITE on the namespace (READ to list). Serving (the gateway) looks routes up
through ``routes_of``: cached per namespace for ``cache_ttl_s`` and dropped on this process's
writes, so another process's change shows within that time. Quotas are counted in the store
(services/quotas.py: they survive restarts and bind every process); token buckets are the gateway's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Final

import structlog
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from stockade.domain import JSON, ApiRoute, Clock, Identity, normalise_base_path, normalise_relative_path
from stockade.domain.apis import MAX_ROUTES_PER_NAMESPACE, MAX_SCHEMA_BYTES
from stockade.errors import BadRequestError, ConflictError, NotFoundError
from stockade.security.authz import Permission
from stockade.services.access import AccessService
from stockade.services.quotas import QuotaLeases
from stockade.store import Store

__all__ = ["ApiService", "check_request_schema", "has_nested_quantifier"]

log = structlog.get_logger("stockade.apis")

_PRUNE_EVERY_S: Final = 3600.0
_MAX_CACHED_NAMESPACES: Final = 10_000


def _walk_patterns(schema: JSON) -> Iterator[str]:
    """Every regular expression in a schema (``pattern`` values, ``patternProperties`` keys)."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            if key == "patternProperties" and isinstance(value, dict):
                yield from value
            yield from _walk_patterns(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _walk_patterns(item)


def _walk_refs(schema: JSON) -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield value
            yield from _walk_refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _walk_refs(item)


def has_nested_quantifier(pattern: str) -> bool:
    """True when a quantified group contains a quantifier, as in ``(a+)+`` (catastrophic backtracking).

    A heuristic: overlapping alternations such as ``(a|a)*`` are not caught.
    """
    stack: list[bool] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            stack.append(False)
        elif char == ")" and stack:
            inner = stack.pop()
            following = pattern[index + 1 : index + 2]
            if inner and following in ("*", "+", "{"):
                return True
            if stack:
                stack[-1] = stack[-1] or inner or following in ("*", "+", "{")
        elif char in "*+{" and stack:
            stack[-1] = True
        index += 1
    return False


def check_request_schema(schema: JSON) -> None:
    """400 unless ``schema`` is a JSON Schema that is safe to run on untrusted bodies.

    Refused besides invalid schemas: over 64 KiB, non-local ``$ref`` (nothing is ever fetched),
    and regular expressions that do not compile or nest quantifiers (ReDoS on the event loop).
    """
    if schema is None:
        return
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise BadRequestError(f"The request schema is larger than {MAX_SCHEMA_BYTES} bytes.")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise BadRequestError(f"The request schema is not a valid JSON Schema: {exc.message}") from None
    if any(not ref.startswith("#") for ref in _walk_refs(schema)):
        raise BadRequestError("The request schema may only use local references ('#/...').")
    for pattern in _walk_patterns(schema):
        try:
            re.compile(pattern)
        except re.error:
            raise BadRequestError("The request schema has a pattern that is not a valid regular expression.") from None
        if has_nested_quantifier(pattern):
            raise BadRequestError(
                "The request schema has a pattern with nested quantifiers (like '(a+)+'), which can "
                "backtrack catastrophically; rewrite it."
            )


class ApiService:
    """Use case: the routes of a namespace's APIs."""

    def __init__(
        self,
        store: Store,
        access: AccessService,
        clock: Clock,
        *,
        base_url: str,
        max_body_bytes: int,
        cache_ttl_s: float = 2.0,
    ) -> None:
        self._store = store
        self._access = access
        self._clock = clock
        self._base_url = base_url.rstrip("/")
        self._max_body_bytes = max_body_bytes
        self._ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, tuple[ApiRoute, ...]]] = {}
        self._pruned_at = clock.monotonic()
        self._prune_task: asyncio.Task[None] | None = None
        self._quotas = QuotaLeases(store, clock)

    def gateway_url(self, namespace: str, base_path: str) -> str:
        """Where the API of ``base_path`` is served (``gwApiUrl``)."""
        return f"{self._base_url}/api/gw/{namespace}{'' if base_path == '/' else base_path}"

    def route_url(self, route: ApiRoute) -> str:
        """Where one route is served."""
        return self.gateway_url(route.namespace, route.base_path) + ("" if route.rel_path == "/" else route.rel_path)

    # -- management --------------------------------------------------------------------------------

    async def create(self, identity: Identity, route: ApiRoute, *, overwrite: bool) -> ApiRoute:
        """Add a route (409 if it exists unless ``overwrite``); 400 for unsafe options."""
        namespace = route.namespace
        await self._access.require(identity, namespace, Permission.WRITE, f"{namespace}/apis")
        check_request_schema(route.options.request_schema)
        if route.options.max_body_bytes > self._max_body_bytes:
            raise BadRequestError(
                f"The maximum body size cannot exceed the platform's payload limit of {self._max_body_bytes} bytes."
            )
        existing = {(r.base_path, r.rel_path, r.verb): r for r in await self._store.list_api_routes(namespace)}
        previous = existing.get((route.base_path, route.rel_path, route.verb))
        if previous is not None and not overwrite:
            raise ConflictError("resource already exists")
        if previous is None and len(existing) >= MAX_ROUTES_PER_NAMESPACE:
            raise BadRequestError(f"A namespace may have at most {MAX_ROUTES_PER_NAMESPACE} routes.")
        now = self._clock.now_ms()
        stored = replace(route, created=previous.created if previous else now, updated=now)
        await self._store.put_api_route(stored, replace=previous is not None)
        self.forget(namespace)
        log.info("apis.route_saved", namespace=namespace, base_path=route.base_path, rel_path=route.rel_path)
        return stored

    async def list(self, identity: Identity, namespace: str, base_path: str | None = None) -> list[ApiRoute]:
        """The namespace's routes (of one base path)."""
        await self._access.require(identity, namespace, Permission.READ, f"{namespace}/apis")
        routes = await self._store.list_api_routes(namespace)
        if base_path is None:
            return routes
        base = normalise_base_path(base_path)
        return [r for r in routes if r.base_path == base]

    async def delete(
        self, identity: Identity, namespace: str, base_path: str, rel_path: str | None = None, verb: str | None = None
    ) -> int:
        """Delete the routes of a base path (one relative path, one verb); 404 when nothing matched."""
        await self._access.require(identity, namespace, Permission.WRITE, f"{namespace}/apis")
        base = normalise_base_path(base_path)
        rel = normalise_relative_path(rel_path) if rel_path else None
        removed = await self._store.delete_api_routes(namespace, base, rel, verb.upper() if verb else None)
        self.forget(namespace)
        if removed == 0:
            raise NotFoundError()
        return removed

    # -- serving -----------------------------------------------------------------------------------

    def forget(self, namespace: str) -> None:
        """Drop the cached routes of ``namespace``."""
        self._cache.pop(namespace, None)

    async def routes_of(self, namespace: str) -> tuple[ApiRoute, ...]:
        """The namespace's routes for serving (cached; no access check: the routes are public)."""
        now = self._clock.monotonic()
        hit = self._cache.get(namespace)
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[1]
        routes = tuple(await self._store.list_api_routes(namespace))
        if len(self._cache) >= _MAX_CACHED_NAMESPACES:
            self._cache.clear()
        self._cache[namespace] = (now, routes)
        return routes

    async def consume_quota(self, route: ApiRoute, client: str) -> None:
        """Count one request of ``client`` on ``route``; 429 with Retry-After when a quota is spent."""
        if route.options.quota is None:
            return
        self._maybe_prune()
        await self._quotas.consume(route, client)

    def _maybe_prune(self) -> None:
        now = self._clock.monotonic()
        if now - self._pruned_at < _PRUNE_EVERY_S:
            return
        self._pruned_at = now
        self._prune_task = asyncio.get_running_loop().create_task(self._prune(), name="quota-prune")

    async def _prune(self) -> None:
        try:
            removed = await self._store.prune_quota_usage(self._clock.now_ms())
            log.info("apis.quota_pruned", removed=removed)
        except Exception:
            log.exception("apis.quota_prune_failed")

    async def close(self) -> None:
        """Give unused quota reservations back; wait for a prune in progress."""
        await self._quotas.release()
        if self._prune_task is not None:
            with contextlib.suppress(Exception):
                await self._prune_task
