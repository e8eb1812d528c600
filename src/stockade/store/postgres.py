"""PostgreSQL driver: the store for deployments with more than one server process.

SqlStore writes ``?`` placeholders; this driver rewrites them to ``$1..$n`` once per SQL string.
asyncpg and socket errors stop here (house style rule 6): a unique violation becomes ConflictError,
anything else a StoreError whose message holds no URL, SQL or server text.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from stockade.errors import StorageFullError, StoreError
from stockade.store.sql import Row, SqlStore, Step, already_exists, concurrent_modification

__all__ = ["PostgresDriver", "numbered_placeholders", "open_postgres_store", "rows_affected"]

# Key of the advisory lock that serialises migrations ("Stockade" in ASCII). Advisory locks are
# scoped to one database, so separate databases on one server migrate independently.
_MIGRATION_LOCK_KEY = 0x53746F636B616465
# How long a process waits for another one's migration before giving up.
_MIGRATION_WAIT_S = 300.0

# What asyncpg raises besides its own PostgresError tree: client-side faults and the socket.
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError)

# Quoted strings and identifiers ('' and "" escape quotes) and comments, which keep their ``?``,
# or a bare ``?``. Not handled, and not used by SqlStore: E'' strings, $$ quoting, jsonb ``?``.
_TOKENS = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|\?""", re.DOTALL)


@functools.lru_cache(maxsize=512)
def numbered_placeholders(sql: str) -> str:
    """``sql`` with each ``?`` outside quotes and comments replaced by ``$1``, ``$2``, …"""
    counter = itertools.count(1)

    def _swap(match: re.Match[str]) -> str:
        lexeme = match.group()
        return f"${next(counter)}" if lexeme == "?" else lexeme

    return _TOKENS.sub(_swap, sql)


def rows_affected(status: str) -> int:
    """The row count in a command tag: "UPDATE 1" → 1, "INSERT 0 3" → 3, "CREATE TABLE" → 0."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _connect_failure(exc: BaseException) -> StoreError:
    """A StoreError saying why connecting failed, in words that name no host, user or password."""
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return StoreError("PostgreSQL refused the store's credentials")
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return StoreError("the PostgreSQL database does not exist")
    if isinstance(exc, ValueError):  # asyncpg.ClientConfigurationError included
        return StoreError("the PostgreSQL URL is invalid")
    if isinstance(exc, OSError | TimeoutError | asyncpg.PostgresConnectionError | asyncpg.CannotConnectNowError):
        return StoreError("cannot reach the PostgreSQL server")
    return StoreError("cannot connect to the PostgreSQL store")


class PostgresDriver:
    """A Driver over an asyncpg connection pool."""

    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        command_timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self._url = url  # may carry a password: never logged, never put in a message
        self._min_size = min_size
        self._max_size = max_size
        self._command_timeout_s = command_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._pool: Any = None  # asyncpg.Pool once connected

    def __repr__(self) -> str:
        return "PostgresDriver(<url hidden>)"

    async def connect(self) -> None:
        """Open the pool (idempotent)."""
        if self._pool is not None:
            return
        try:
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=self._min_size,
                max_size=self._max_size,
                command_timeout=self._command_timeout_s,
                timeout=self._connect_timeout_s,
                server_settings={"application_name": "stockade"},
            )
        except (*_DB_ERRORS, ValueError) as exc:
            raise _connect_failure(exc) from None

    async def close(self) -> None:
        """Close the pool, forcibly if connections do not come back in time."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), self._command_timeout_s)
        except _DB_ERRORS:
            pool.terminate()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        pool = self._pool
        if pool is None:
            raise StoreError("store is not open")
        async with pool.acquire() as conn:
            yield conn

    async def fetchone(self, sql: str, args: tuple[Any, ...] = ()) -> Row | None:
        """First row or None."""
        try:
            async with self._connection() as conn:
                row = await conn.fetchrow(numbered_placeholders(sql), *args)
        except _DB_ERRORS:
            raise StoreError("the store failed") from None
        return tuple(row) if row is not None else None

    async def fetchall(self, sql: str, args: tuple[Any, ...] = ()) -> list[Row]:
        """All rows."""
        try:
            async with self._connection() as conn:
                rows = await conn.fetch(numbered_placeholders(sql), *args)
        except _DB_ERRORS:
            raise StoreError("the store failed") from None
        return [tuple(r) for r in rows]

    async def transaction(self, steps: Sequence[Step]) -> list[int]:
        """All steps or none (READ COMMITTED: a guarded UPDATE re-checks its WHERE after a wait)."""
        counts: list[int] = []
        try:
            async with self._connection() as conn, conn.transaction():
                for step in steps:
                    status = await conn.execute(numbered_placeholders(step.sql), *step.args)
                    count = rows_affected(status)
                    if step.expect_rows is not None and count != step.expect_rows:
                        raise concurrent_modification()  # leaving the block rolls back
                    counts.append(count)
        except asyncpg.UniqueViolationError:
            raise already_exists() from None
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
            # Two batches raced for the same rows and the server picked a loser.
            raise concurrent_modification() from None
        except asyncpg.IntegrityConstraintViolationError:
            raise StoreError("the store refused a write") from None
        except (asyncpg.DiskFullError, asyncpg.ReadOnlySQLTransactionError):
            # Out of space, or a read-only standby: 507 while reads keep working.
            raise StorageFullError() from None
        except _DB_ERRORS:
            raise StoreError("the store failed") from None
        return counts

    async def executescript(self, script: str) -> None:
        """Run a multi-statement script (no parameters) in one transaction."""
        try:
            async with self._connection() as conn, conn.transaction():
                await conn.execute(script)
        except _DB_ERRORS:
            raise StoreError("the store failed to run a script") from None

    @asynccontextmanager
    async def migration_lock(self) -> AsyncIterator[None]:
        """Hold the migration advisory lock while SqlStore migrates, so processes migrate in turn."""
        # A connection of its own rather than one from the pool, so that migrating needs no
        # second pool slot; closing it releases the session lock, as does this process dying.
        try:
            conn = await asyncpg.connect(
                self._url,
                timeout=self._connect_timeout_s,
                server_settings={"application_name": "stockade-migrate"},
            )
        except (*_DB_ERRORS, ValueError) as exc:
            raise _connect_failure(exc) from None
        try:
            try:
                await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY, timeout=_MIGRATION_WAIT_S)
            except _DB_ERRORS:
                raise StoreError("could not take the migration lock") from None
            yield
        finally:
            try:
                await conn.close(timeout=self._command_timeout_s)
            except _DB_ERRORS:
                conn.terminate()


def open_postgres_store(url: str) -> SqlStore:
    """A SqlStore over the PostgreSQL database at ``url`` (call ``open()`` before use)."""
    return SqlStore(PostgresDriver(url))
