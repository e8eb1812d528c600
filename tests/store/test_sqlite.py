"""SQLite driver specifics: file permissions, WAL, error mapping."""

from __future__ import annotations

import asyncio
import sqlite3
import stat

import pytest

from stockade.errors import StorageFullError, StoreError
from stockade.store import KeyRecord, Put, open_sqlite_store
from stockade.store.sql import Step
from stockade.store.sqlite import SqliteDriver


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
async def driver(tmp_path):
    """A connected driver on ``tmp_path/stockade.db``, closed after the test."""
    connected = SqliteDriver(tmp_path / "stockade.db")
    await connected.connect()
    yield connected
    await connected.close()


async def test_the_database_file_is_private_and_in_wal_mode(tmp_path):
    path = tmp_path / "data" / "stockade.db"
    store = open_sqlite_store(path)
    await store.open()
    try:
        await store.apply([Put("ns1", "a", "actions", {"secret": 1}, 1)])

        assert mode(path) == 0o600
        assert mode(path.parent) == 0o700
        wal = path.with_name("stockade.db-wal")
        assert wal.exists()  # WAL is in use, and its file is as private as the database
        assert mode(wal) == 0o600
        with sqlite3.connect(path) as reader:
            assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        await store.close()


async def test_sqlite_errors_become_store_errors_without_internals(tmp_path):
    driver = SqliteDriver(tmp_path / "stockade.db")
    await driver.connect()
    try:
        with pytest.raises(StoreError) as caught:
            await driver.fetchall("SELECT secret_column FROM no_such_table")
    finally:
        await driver.close()

    assert caught.value.message == "the store failed"
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


async def test_a_closed_driver_refuses_work(tmp_path):
    driver = SqliteDriver(tmp_path / "stockade.db")

    with pytest.raises(StoreError, match="store is not open"):
        await driver.fetchone("SELECT 1")


async def test_a_foreign_key_failure_is_a_store_error_not_a_conflict(tmp_path):
    store = open_sqlite_store(tmp_path / "stockade.db")
    await store.open()
    try:
        with pytest.raises(StoreError, match="the store refused a write"):
            await store.put_key(KeyRecord("k", b"h", "alice", "no-such-namespace", 1))
    finally:
        await store.close()


async def test_a_write_that_finds_the_lock_taken_waits_off_the_loop_and_then_commits(driver, tmp_path):
    # Small transactions commit inline on the loop's thread (issue 16); one that finds the write
    # lock held (here by another process's connection) must neither fail nor block the loop: it
    # waits on the executor and commits once the lock is released.
    await driver.executescript("CREATE TABLE t (n INTEGER)")
    other = sqlite3.connect(tmp_path / "stockade.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    write = asyncio.ensure_future(driver.transaction([Step("INSERT INTO t VALUES (?)", (2,))]))
    ticks = 0
    while ticks < 20:  # the loop keeps running while the write waits
        await asyncio.sleep(0.01)
        ticks += 1
    assert not write.done()
    other.execute("COMMIT")
    other.close()
    assert await asyncio.wait_for(write, timeout=10) == [1]
    assert await driver.fetchall("SELECT n FROM t ORDER BY n") == [(1,), (2,)]


async def test_inline_commits_are_checkpointed_so_the_wal_does_not_grow_without_bound(driver, tmp_path):
    await driver.executescript("CREATE TABLE t (n INTEGER, pad TEXT)")
    for n in range(1500):
        await driver.transaction([Step("INSERT INTO t VALUES (?, ?)", (n, "x" * 3000))])
        checkpoint = driver._checkpoint
        if checkpoint is not None and not checkpoint.done():
            # A server's loop turns over between requests and the executor gets its turn; this
            # tight loop never yields, so let the checkpoint run (on a loaded host it may not).
            await checkpoint
    wal = (tmp_path / "stockade.db-wal").stat().st_size
    # Without checkpoints (wal_autocheckpoint is off on the inline writer) these 1,500 commits
    # of a row over 3 pages leave an 18.7 MB WAL; checkpointed every 256 commits, about 3 MB.
    assert wal < 9_000_000
    assert await driver.fetchone("SELECT count(*) FROM t") == (1500,)


async def test_a_full_disk_on_an_inline_commit_is_a_storage_full_error(driver):
    await driver.executescript("CREATE TABLE t (pad TEXT)")
    assert driver._writer is not None
    driver._writer.execute("PRAGMA max_page_count = 8")  # the inline writer's file is "full"
    with pytest.raises(StorageFullError):
        await driver.transaction([Step("INSERT INTO t VALUES (?)", ("x" * 200_000,))])
    # Nothing half-written: the writer is usable again, and the row is not there.
    assert not driver._writer.in_transaction
    assert await driver.fetchone("SELECT count(*) FROM t") == (0,)
