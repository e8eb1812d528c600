"""SQLite driver specifics: file permissions, WAL, error mapping."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from stockade.errors import StoreError
from stockade.store import KeyRecord, Put, open_sqlite_store
from stockade.store.sqlite import SqliteDriver


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


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
