"""Storage of API gateway routes, per-client quota counters and per-namespace throttle overrides.

``SqlGateway`` is mixed into ``SqlStore``. Quota counters are reserved with one conditional
update (in blocks: see services/apis.py), so processes sharing a database never let a client
past its quota together, and the counts survive restarts. Changing a namespace's throttles bumps
the security epoch, which every API process watches, so they all reload within one poll.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol, final

from stockade.domain import ApiRoute, NamespaceLimits, api_route_from_json, api_route_to_json
from stockade.store.driver import Driver, Step

__all__ = ["GatewayStore", "QuotaWindow", "SqlGateway"]


@final
@dataclass(frozen=True, slots=True)
class QuotaWindow:
    """One quota period of a client on a route: at most ``limit`` requests until ``expires_ms``."""

    period: str  # "d:2026-01-31" or "m:2026-01"
    limit: int
    expires_ms: int


class GatewayStore(Protocol):
    """Routes, quota counters and namespace throttles."""

    async def put_api_route(self, route: ApiRoute, *, replace: bool) -> None:
        """Create a route (ConflictError if it exists), or replace it when ``replace``."""

    async def list_api_routes(self, namespace: str) -> list[ApiRoute]:
        """The namespace's routes by base path, relative path and verb."""

    async def count_api_routes(self, namespace: str) -> int:
        """How many routes the namespace has."""

    async def delete_api_routes(
        self, namespace: str, base_path: str, rel_path: str | None = None, verb: str | None = None
    ) -> int:
        """Delete the routes of a base path (of one relative path, of one verb); how many went."""

    async def reserve_quota(self, namespace: str, route_id: str, client: str, window: QuotaWindow, units: int) -> bool:
        """Count ``units`` requests in ``window`` if they all fit under its limit; False (nothing counted) if not."""

    async def release_quota(self, namespace: str, route_id: str, client: str, period: str, units: int) -> None:
        """Give back ``units`` reserved but unused requests of ``period``."""

    async def prune_quota_usage(self, now_ms: int) -> int:
        """Drop counters of periods that ended before ``now_ms``."""

    async def get_namespace_limits(self, namespace: str) -> NamespaceLimits | None:
        """The namespace's throttle overrides."""

    async def list_namespace_limits(self) -> list[NamespaceLimits]:
        """Every namespace's throttle overrides."""

    async def put_namespace_limits(self, limits: NamespaceLimits) -> None:
        """Set a namespace's overrides (and bump the security epoch)."""

    async def delete_namespace_limits(self, namespace: str) -> bool:
        """Back to the platform defaults; False if there were no overrides."""


_BUMP_EPOCH = Step("UPDATE security_epoch SET epoch = epoch + 1 WHERE id = 1")


class SqlGateway:
    """GatewayStore over the SQL driver of the class it is mixed into."""

    _db: Driver

    async def put_api_route(self, route: ApiRoute, *, replace: bool) -> None:
        """Insert, or delete then insert, in one transaction."""
        key = (route.namespace, route.base_path, route.rel_path, route.verb)
        doc = json.dumps(api_route_to_json(route), separators=(",", ":"), sort_keys=True)
        steps = []
        if replace:
            steps.append(
                Step("DELETE FROM api_routes WHERE namespace = ? AND base_path = ? AND rel_path = ? AND verb = ?", key)
            )
        steps.append(
            Step(
                "INSERT INTO api_routes (namespace, base_path, rel_path, verb, doc, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*key, doc, route.created, route.updated),
            )
        )
        await self._db.transaction(steps)

    async def list_api_routes(self, namespace: str) -> list[ApiRoute]:
        """Routes in a stable order."""
        rows = await self._db.fetchall(
            "SELECT doc, created, updated FROM api_routes WHERE namespace = ? ORDER BY base_path, rel_path, verb",
            (namespace,),
        )
        return [api_route_from_json(namespace, json.loads(r[0]), created=int(r[1]), updated=int(r[2])) for r in rows]

    async def count_api_routes(self, namespace: str) -> int:
        """Route count."""
        row = await self._db.fetchone("SELECT COUNT(*) FROM api_routes WHERE namespace = ?", (namespace,))
        return int(row[0]) if row else 0

    async def delete_api_routes(
        self, namespace: str, base_path: str, rel_path: str | None = None, verb: str | None = None
    ) -> int:
        """Delete by base path, optionally narrowed."""
        sql = "DELETE FROM api_routes WHERE namespace = ? AND base_path = ?"
        args: list[str] = [namespace, base_path]
        if rel_path is not None:
            sql += " AND rel_path = ?"
            args.append(rel_path)
        if verb is not None:
            sql += " AND verb = ?"
            args.append(verb)
        counts = await self._db.transaction([Step(sql, tuple(args))])
        return counts[0]

    async def reserve_quota(self, namespace: str, route_id: str, client: str, window: QuotaWindow, units: int) -> bool:
        """One conditional increment: concurrent reservations (any process) never pass the limit together."""
        key = (namespace, route_id, client, window.period)
        counts = await self._db.transaction(
            [
                Step(
                    "INSERT INTO api_quota_usage (namespace, route_id, client, period, used, expires)"
                    " VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT DO NOTHING",
                    (*key, window.expires_ms),
                ),
                Step(
                    "UPDATE api_quota_usage SET used = used + ?"
                    " WHERE namespace = ? AND route_id = ? AND client = ? AND period = ? AND used + ? <= ?",
                    (units, *key, units, window.limit),
                ),
            ]
        )
        return counts[1] == 1

    async def release_quota(self, namespace: str, route_id: str, client: str, period: str, units: int) -> None:
        """Decrement, never below zero."""
        await self._db.transaction(
            [
                Step(
                    "UPDATE api_quota_usage SET used = CASE WHEN used > ? THEN used - ? ELSE 0 END"
                    " WHERE namespace = ? AND route_id = ? AND client = ? AND period = ?",
                    (units, units, namespace, route_id, client, period),
                )
            ]
        )

    async def prune_quota_usage(self, now_ms: int) -> int:
        """Delete ended periods."""
        counts = await self._db.transaction([Step("DELETE FROM api_quota_usage WHERE expires < ?", (now_ms,))])
        return counts[0]

    @staticmethod
    def _limits(row: tuple[object, ...]) -> NamespaceLimits:
        def value(v: object) -> int | None:
            return None if v is None else int(str(v))

        return NamespaceLimits(str(row[0]), value(row[1]), value(row[2]), value(row[3]), int(str(row[4])))

    async def get_namespace_limits(self, namespace: str) -> NamespaceLimits | None:
        """One namespace's overrides."""
        row = await self._db.fetchone(
            "SELECT namespace, invocations_per_minute, concurrent_invocations, fires_per_minute, updated"
            " FROM namespace_limits WHERE namespace = ?",
            (namespace,),
        )
        return self._limits(row) if row else None

    async def list_namespace_limits(self) -> list[NamespaceLimits]:
        """All overrides."""
        rows = await self._db.fetchall(
            "SELECT namespace, invocations_per_minute, concurrent_invocations, fires_per_minute, updated"
            " FROM namespace_limits ORDER BY namespace"
        )
        return [self._limits(r) for r in rows]

    async def put_namespace_limits(self, limits: NamespaceLimits) -> None:
        """Upsert, and bump the epoch in the same transaction."""
        await self._db.transaction(
            [
                Step("DELETE FROM namespace_limits WHERE namespace = ?", (limits.namespace,)),
                Step(
                    "INSERT INTO namespace_limits"
                    " (namespace, invocations_per_minute, concurrent_invocations, fires_per_minute, updated)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        limits.namespace,
                        limits.invocations_per_minute,
                        limits.concurrent_invocations,
                        limits.fires_per_minute,
                        limits.updated,
                    ),
                ),
                _BUMP_EPOCH,
            ]
        )

    async def delete_namespace_limits(self, namespace: str) -> bool:
        """Remove the overrides, and bump the epoch."""
        counts = await self._db.transaction(
            [Step("DELETE FROM namespace_limits WHERE namespace = ?", (namespace,)), _BUMP_EPOCH]
        )
        return counts[0] == 1
