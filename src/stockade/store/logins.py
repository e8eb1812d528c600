"""Storage of failed-login counters and lockouts (``SqlLogins`` is mixed into ``SqlStore``).

One row per scope (a source address, or a (subject, source) pair): failures in the current fixed
window and until when the scope is refused. Counting is one atomic upsert, so every process of a
scale-out deployment adds to the same counter, and lockouts survive restarts.
"""

from __future__ import annotations

from typing import Protocol

from stockade.store.driver import Driver, Step

__all__ = ["LoginStore", "SqlLogins"]


class LoginStore(Protocol):
    """Failed-login counters and lockouts, shared by every process."""

    async def count_login_failure(self, scope: str, now_ms: int, window_ms: int) -> int:
        """Count one failure of ``scope``; the failures in its current window (this one included)."""

    async def lock_login(self, scope: str, until_ms: int) -> None:
        """Refuse ``scope`` until ``until_ms``."""

    async def login_locks(self, now_ms: int) -> dict[str, int]:
        """Every scope locked at ``now_ms``, with when its lockout ends."""

    async def prune_login_failures(self, before_ms: int) -> int:
        """Drop rows whose window started and lockout ended before ``before_ms``."""

    async def claim_nonce(self, nonce: str, now_ms: int, keep_ms: int) -> bool:
        """Record a signed request's nonce; False when any process recorded it within ``keep_ms``."""


class SqlLogins:
    """LoginStore over the SQL driver of the class it is mixed into."""

    _db: Driver

    async def count_login_failure(self, scope: str, now_ms: int, window_ms: int) -> int:
        """A new window starts when the old one is over; otherwise the count goes up by one."""
        start_before = now_ms - window_ms
        await self._db.transaction(
            [
                Step(
                    "INSERT INTO login_failures (scope, window_start, failures, locked_until) VALUES (?, ?, 1, 0)"
                    " ON CONFLICT (scope) DO UPDATE SET"
                    " failures = CASE WHEN login_failures.window_start <= ? THEN 1"
                    " ELSE login_failures.failures + 1 END,"
                    " window_start = CASE WHEN login_failures.window_start <= ? THEN ?"
                    " ELSE login_failures.window_start END",
                    (scope, now_ms, start_before, start_before, now_ms),
                )
            ]
        )
        row = await self._db.fetchone("SELECT failures FROM login_failures WHERE scope = ?", (scope,))
        return int(row[0]) if row else 1

    async def lock_login(self, scope: str, until_ms: int) -> None:
        """Set the lockout end (never shortens a longer one)."""
        await self._db.transaction(
            [
                Step(
                    "UPDATE login_failures SET locked_until = CASE WHEN locked_until > ? THEN locked_until ELSE ? END"
                    " WHERE scope = ?",
                    (until_ms, until_ms, scope),
                )
            ]
        )

    async def login_locks(self, now_ms: int) -> dict[str, int]:
        """Active lockouts."""
        rows = await self._db.fetchall(
            "SELECT scope, locked_until FROM login_failures WHERE locked_until > ?", (now_ms,)
        )
        return {str(r[0]): int(r[1]) for r in rows}

    async def prune_login_failures(self, before_ms: int) -> int:
        """Forget old counters."""
        counts = await self._db.transaction(
            [
                Step(
                    "DELETE FROM login_failures WHERE window_start < ? AND locked_until < ?",
                    (before_ms, before_ms),
                )
            ]
        )
        return counts[0]

    async def claim_nonce(self, nonce: str, now_ms: int, keep_ms: int) -> bool:
        """One transaction: forget nonces older than ``keep_ms``, then insert unless present."""
        counts = await self._db.transaction(
            [
                Step("DELETE FROM signature_nonces WHERE seen_ms < ?", (now_ms - keep_ms,)),
                Step(
                    "INSERT INTO signature_nonces (nonce, seen_ms) VALUES (?, ?) ON CONFLICT (nonce) DO NOTHING",
                    (nonce, now_ms),
                ),
            ]
        )
        return counts[-1] == 1
