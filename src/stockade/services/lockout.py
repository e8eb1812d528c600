"""Brute-force protection: failed logins counted per (subject, source) and per source, in the store.

Two scopes with separate thresholds: a (subject, source) pair is locked after
``pair_lock_after`` failures in the window, a source after ``source_lock_after`` whatever the
subjects it tried. A subject alone is never locked, so an attacker guessing a victim's key from
its own address locks only itself out, never the victim calling from elsewhere. Counters and
lockouts live in the store (every process adds to the same counter, a restart forgets nothing);
each process mirrors the active lockouts and refreshes the mirror at most every ``refresh_s``.
"""

from __future__ import annotations

import math

import structlog

from stockade.domain import Clock
from stockade.errors import ThrottledError
from stockade.store import LoginStore

__all__ = ["LOCKED_MESSAGE", "LoginGuard", "pair_scope", "source_scope"]

log = structlog.get_logger("stockade.lockout")

LOCKED_MESSAGE = "Too many failed authentication attempts from this address; try again later."
_MAX_SUBJECT = 128
_MAX_DELAY_S = 5.0
_PRUNE_EVERY_MS = 60_000


def source_scope(source: str) -> str:
    """The counter of one client address."""
    return f"source:{source[:200]}"


def pair_scope(subject: str, source: str) -> str:
    """The counter of one subject (a presented key uuid) from one client address."""
    return f"pair:{subject[:_MAX_SUBJECT]} {source[:200]}"


class LoginGuard:
    """Checks and counts failed logins; 429 while a scope is locked."""

    def __init__(
        self,
        store: LoginStore,
        clock: Clock,
        *,
        window_s: float = 60,
        slow_after: int = 5,
        pair_lock_after: int = 20,
        source_lock_after: int = 100,
        lock_s: float = 300,
        refresh_s: float = 1.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._window_ms = int(window_s * 1000)
        self._slow_after = slow_after
        self._pair_lock_after = pair_lock_after
        self._source_lock_after = source_lock_after
        self._lock_ms = int(lock_s * 1000)
        self._refresh_ms = int(refresh_s * 1000)
        self._locks: dict[str, int] = {}
        self._loaded_ms: int | None = None
        self._refreshing = False
        self._pruned_ms = 0

    async def _refresh(self, now_ms: int) -> None:
        if self._refreshing:
            return
        if self._loaded_ms is not None and now_ms - self._loaded_ms < self._refresh_ms:
            return
        self._refreshing = True
        try:
            self._locks = await self._store.login_locks(now_ms)
            self._loaded_ms = now_ms
        finally:
            self._refreshing = False

    def _locked(self, scope: str, now_ms: int) -> bool:
        until = self._locks.get(scope)
        return until is not None and now_ms < until

    async def check(self, subject: str, source: str) -> None:
        """429 while ``source``, or ``subject`` from ``source``, is locked out."""
        now_ms = self._clock.now_ms()
        await self._refresh(now_ms)
        scopes = [source_scope(source), *([pair_scope(subject, source)] if subject else [])]
        locked_until = max((self._locks.get(scope, 0) for scope in scopes if self._locked(scope, now_ms)), default=0)
        if locked_until:
            raise ThrottledError(LOCKED_MESSAGE, retry_after_s=max(1, math.ceil((locked_until - now_ms) / 1000)))

    async def is_locked(self, subject: str, source: str) -> bool:
        """Whether the pair or the source is refused now."""
        try:
            await self.check(subject, source)
        except ThrottledError:
            return True
        return False

    async def failed(self, subject: str, source: str) -> float:
        """Count a failure of ``subject`` from ``source``; how long the caller should delay its answer (s)."""
        now_ms = self._clock.now_ms()
        pair = pair_scope(subject, source)
        origin = source_scope(source)
        pair_count = await self._store.count_login_failure(pair, now_ms, self._window_ms)
        source_count = await self._store.count_login_failure(origin, now_ms, self._window_ms)
        until = now_ms + self._lock_ms
        for scope, count, limit in (
            (pair, pair_count, self._pair_lock_after),
            (origin, source_count, self._source_lock_after),
        ):
            if count >= limit and not self._locked(scope, now_ms):
                await self._store.lock_login(scope, until)
                self._locks[scope] = until
                log.warning("auth.locked_out", scope=scope.split(":", 1)[0], source=source, failures=count)
        if now_ms - self._pruned_ms >= _PRUNE_EVERY_MS:
            # Many sources each leave a row: forget those whose window and lockout are over.
            self._pruned_ms = now_ms
            await self.prune()
        if self._locked(pair, now_ms) or self._locked(origin, now_ms):
            return 0.0
        return min(_MAX_DELAY_S, 0.5 * max(0, pair_count - self._slow_after))

    async def prune(self) -> int:
        """Forget counters whose window and lockout are over."""
        return await self._store.prune_login_failures(self._clock.now_ms() - max(self._window_ms, self._lock_ms))
