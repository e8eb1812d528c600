"""SQLite driver: the embedded default. WAL, three connections, each used from one thread only.

- ``_conn`` (scripts, large transactions, and any write that would wait for a lock) is
  used only on ``self._executor``'s single thread.
- ``_reader`` (reads) is used only on ``self._read_executor``'s single thread: a WAL reader never
  waits for a writer, so a read is never queued behind a write waiting for a lock that another
  process holds (``sqlite3``, an admin command).
- ``_writer`` runs small transactions inline on the event loop's thread: a commit in WAL mode
  with ``synchronous=NORMAL`` is tens of microseconds of C, cheaper than handing it to a thread
  (issue 16: the hand-off and the GIL contention it caused cost more than the write). It never
  waits: ``busy_timeout=0``, and a transaction that finds the write lock taken (another process,
  or ``_conn`` mid-write) is rolled back and re-run on the executor, which waits as before. It
  never checkpoints on commit (``wal_autocheckpoint=0``, so a commit cannot stall the loop on
  fsync); the executor checkpoints (RESTART) after every ``_CHECKPOINT_EVERY`` inline commits.

Invariant: each connection is used from one thread; a write sees every write committed before it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from stockade.errors import StorageFullError, StoreBusyError, StoreError
from stockade.store.sql import Row, SqlStore, Step, already_exists, concurrent_modification

__all__ = ["SqliteDriver", "open_sqlite_store"]

T = TypeVar("T")

# Primary result codes meaning "cannot write now" (full disk, read-only file or mount, or a
# failed write): answered 507 while reads keep working. https://sqlite.org/rescode.html
_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL = 8, 10, 13
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
# Transactions of at most this many steps run inline on the loop thread; bigger ones (imports,
# recovery batches, retention sweeps) go to the executor.
_INLINE_MAX_STEPS = 64
_CHECKPOINT_EVERY = 256


def _is_busy(exc: sqlite3.Error) -> bool:
    """The database or a table was locked by another connection (SQLITE_BUSY, SQLITE_LOCKED)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)


def _store_error(exc: sqlite3.Error) -> StoreError:
    """A StoreError for a foreign sqlite3 error; full or read-only storage is a StorageFullError."""
    if getattr(exc, "sqlite_errorcode", 0) & 0xFF in (_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL):
        return StorageFullError()
    if _is_busy(exc):
        # The lock stayed taken (another process) past busy_timeout: retryable, nothing written.
        return StoreBusyError()
    return StoreError("the store failed")


def _connect(path: Path, *pragmas: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with the common pragmas."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in (*pragmas, "synchronous=NORMAL", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")  # constants of this module, never input
    return conn


async def _on(
    executor: ThreadPoolExecutor, conn: sqlite3.Connection | None, fn: Callable[[sqlite3.Connection], T]
) -> T:
    """``fn(conn)`` on ``executor``, the one thread ``conn`` is used from."""
    if conn is None:
        raise StoreError("store is not open")
    try:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, conn)
    except sqlite3.Error as exc:  # foreign exceptions stop here (house style rule 6)
        raise _store_error(exc) from None


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class SqliteDriver:
    """A Driver over one SQLite database file."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stockade-sqlite")
        self._read_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stockade-sqlite-read")
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._inline_commits = 0
        self._checkpoint: asyncio.Future[Any] | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await _on(self._executor, self._conn, fn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await _on(self._read_executor, self._reader, fn)

    async def connect(self) -> None:
        """Open the database file (created with mode 0600) in WAL mode."""

        def _open() -> sqlite3.Connection:
            self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self._path.exists():
                self._path.touch(mode=0o600)
            return _connect(self._path, "journal_mode=WAL", "busy_timeout=5000")

        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._executor, _open)
        # Opened on the executor; from now on used only on this (the loop's) thread.
        self._writer = await loop.run_in_executor(
            self._executor, _connect, self._path, "busy_timeout=0", "wal_autocheckpoint=0"
        )

        self._reader = await loop.run_in_executor(
            self._read_executor, _connect, self._path, "query_only=ON", "busy_timeout=5000"
        )

    async def close(self) -> None:
        """Close the connections and the worker threads."""
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._reader is not None:
            await self._read(lambda c: c.close())
            self._reader = None
        if self._conn is not None:
            await self._run(lambda c: c.close())
            self._conn = None
        self._read_executor.shutdown(wait=True)
        self._executor.shutdown(wait=True)

    async def fetchone(self, sql: str, args: tuple[Any, ...] = ()) -> Row | None:
        """First row."""
        row = await self._read(lambda c: c.execute(sql, args).fetchone())
        return tuple(row) if row is not None else None

    async def fetchall(self, sql: str, args: tuple[Any, ...] = ()) -> list[Row]:
        """All rows."""
        rows = await self._read(lambda c: c.execute(sql, args).fetchall())
        return [tuple(r) for r in rows]

    async def transaction(self, steps: Sequence[Step]) -> list[int]:
        """All steps or none."""

        def _tx(conn: sqlite3.Connection) -> list[int]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                counts = []
                for step in steps:
                    cursor = conn.execute(step.sql, step.args)
                    if step.expect_rows is not None and cursor.rowcount != step.expect_rows:
                        raise concurrent_modification()
                    counts.append(cursor.rowcount)
            except sqlite3.IntegrityError as exc:
                _rollback(conn)
                if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                    raise already_exists() from None
                raise StoreError("the store refused a write") from None
            except BaseException:
                # SQLite may have rolled back already (SQLITE_FULL mid-statement): a second
                # ROLLBACK would fail and hide the error that matters.
                _rollback(conn)
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error:
                # A failed COMMIT (SQLITE_FULL, SQLITE_IOERR) can leave the transaction open:
                # roll it back, or every later BEGIN on this connection would fail too.
                _rollback(conn)
                raise
            return counts

        writer = self._writer
        if writer is not None and len(steps) <= _INLINE_MAX_STEPS:
            try:
                counts = _tx(writer)
            except sqlite3.Error as exc:
                if not _is_busy(exc):
                    raise _store_error(exc) from None
                # The write lock is taken: wait for it on the executor, never on the loop.
            else:
                self._after_inline_commit()
                return counts
        return await self._run(_tx)

    def _after_inline_commit(self) -> None:
        self._inline_commits += 1
        if self._inline_commits % _CHECKPOINT_EVERY or (self._checkpoint is not None and not self._checkpoint.done()):
            return

        def _checkpoint(conn: sqlite3.Connection) -> None:
            # RESTART: writers wait (the inline writer, finding the lock taken, re-runs its
            # transaction here, behind this) until every frame is back in the database, so the
            # next write starts the WAL over and it cannot grow without bound under steady load.
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()

        conn = self._conn
        if conn is None:
            return
        # Submitted now (not from a task that would wait for the loop to come round).
        self._checkpoint = asyncio.get_running_loop().run_in_executor(self._executor, _checkpoint, conn)
        # A failed checkpoint is retried after the next _CHECKPOINT_EVERY commits; never unhandled.
        self._checkpoint.add_done_callback(lambda fut: fut.cancelled() or fut.exception())

    async def executescript(self, script: str) -> None:
        """Run a script in one transaction."""

        def _script(conn: sqlite3.Connection) -> None:
            body = script.strip().rstrip(";")
            try:
                conn.executescript(f"BEGIN;\n{body};\nCOMMIT;")
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        await self._run(_script)


def open_sqlite_store(path: Path) -> SqlStore:
    """A SqlStore over the SQLite file at ``path`` (call ``open()`` before use)."""
    return SqlStore(SqliteDriver(path))
