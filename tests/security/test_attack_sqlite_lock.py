"""Attacks on the inline SQLite writer (issue 16): another process holds the database's write lock.

The live version (invokes under load through `stockade up`) is in ``test_attack_warm_path.py``;
here the driver is attacked directly, with the lock held by a real second process.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from stockade.errors import ServiceUnavailableError, StoreError
from stockade.store.driver import Step
from stockade.store.sqlite import SqliteDriver

HOLD = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@pytest_asyncio.fixture
async def driver(tmp_path: Path) -> AsyncIterator[SqliteDriver]:
    driver = SqliteDriver(tmp_path / "stockade.db")
    await driver.connect()
    await driver.executescript("CREATE TABLE t (x INTEGER)")
    await driver.transaction([Step("INSERT INTO t VALUES (?)", (1,))])
    yield driver
    await driver.close()


@pytest.fixture
def lock_holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the write lock until its stdin gets a line."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "stockade.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                _release(proc)


def _hold(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    proc.wait(30)


async def test_reads_are_served_while_a_write_waits_for_another_process(
    driver: SqliteDriver, lock_holder: subprocess.Popen[str]
) -> None:
    """A write that finds the lock taken waits off the loop; a read issued after it is answered while the
    lock is still held (WAL readers never wait for writers), not queued behind the waiting write."""
    _hold(lock_holder)
    write = asyncio.ensure_future(driver.transaction([Step("INSERT INTO t VALUES (?)", (2,))]))
    for _ in range(3):
        await asyncio.sleep(0)  # the inline attempt found the lock taken; the write now waits for it
    assert not write.done()
    read = asyncio.ensure_future(driver.fetchone("SELECT count(*) FROM t"))
    done, _ = await asyncio.wait({read, write}, return_when=asyncio.FIRST_COMPLETED)
    assert read in done, "the read waited for the write, which waits for another process's lock"
    assert read.result() == (1,)
    assert not write.done()
    _release(lock_holder)
    assert await write == [1]
    assert await driver.fetchone("SELECT count(*) FROM t") == (2,)


async def test_a_lock_held_past_the_wait_is_a_retryable_503_and_nothing_is_written(
    driver: SqliteDriver, lock_holder: subprocess.Popen[str]
) -> None:
    """Another process keeps the lock longer than a write waits: the write fails as 503 (retry later),
    never a 500, and writes nothing; the next write after the lock is gone succeeds."""
    _hold(lock_holder)
    with pytest.raises(StoreError) as raised:
        await driver.transaction([Step("INSERT INTO t VALUES (?)", (3,))])
    assert raised.value.status == ServiceUnavailableError.status
    _release(lock_holder)
    assert await driver.fetchone("SELECT count(*) FROM t") == (1,)
    assert await driver.transaction([Step("INSERT INTO t VALUES (?)", (4,))]) == [1]
