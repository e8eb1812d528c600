"""PostgreSQL driver specifics: placeholders, command tags, error mapping, concurrent migrations."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from stockade.errors import StoreError
from stockade.store import open_store
from stockade.store.postgres import PostgresDriver, numbered_placeholders, open_postgres_store, rows_affected

# Nothing listens on port 1; the password must never appear in an error.
UNREACHABLE = "postgresql://stockade:hunter2@127.0.0.1:1/stockade_test"


@pytest.mark.parametrize(
    ("sql", "numbered"),
    [
        ("SELECT 1", "SELECT 1"),
        ("a = ? AND b = ?", "a = $1 AND b = $2"),
        ("x IN (?,?,?) LIMIT ? OFFSET ?", "x IN ($1,$2,$3) LIMIT $4 OFFSET $5"),
        ("name = '?' AND v = ?", "name = '?' AND v = $1"),
        ("s = 'it''s ?' AND v = ?", "s = 'it''s ?' AND v = $1"),
        ('"odd?col" = ?', '"odd?col" = $1'),
        ("v = ? -- why?\nAND w = ?", "v = $1 -- why?\nAND w = $2"),
        ("v = ? /* what? */ AND w = ?", "v = $1 /* what? */ AND w = $2"),
    ],
)
def test_question_marks_become_numbered_outside_quotes_and_comments(sql, numbered):
    assert numbered_placeholders(sql) == numbered


def test_placeholders_are_rewritten_once_per_sql_string():
    sql = "SELECT ? -- test_placeholders_are_rewritten_once_per_sql_string"
    numbered_placeholders(sql)
    hits = numbered_placeholders.cache_info().hits

    assert numbered_placeholders(sql) == "SELECT $1 -- test_placeholders_are_rewritten_once_per_sql_string"
    assert numbered_placeholders.cache_info().hits == hits + 1


@pytest.mark.parametrize(
    ("status", "count"),
    [("UPDATE 1", 1), ("UPDATE 0", 0), ("INSERT 0 3", 3), ("DELETE 12", 12), ("SELECT 5", 5), ("CREATE TABLE", 0)],
)
def test_row_counts_come_from_the_command_tag(status, count):
    assert rows_affected(status) == count


def test_the_url_is_not_in_the_drivers_repr():
    assert "hunter2" not in repr(PostgresDriver(UNREACHABLE))


async def test_an_unreachable_server_is_a_store_error_that_names_no_url():
    store = open_postgres_store(UNREACHABLE)

    with pytest.raises(StoreError) as caught:
        await store.open()

    assert caught.value.message == "cannot reach the PostgreSQL server"
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


async def test_a_url_of_another_scheme_is_refused_as_invalid():
    store = open_store("mysql://root:hunter2@127.0.0.1/db", Path("unused"))

    with pytest.raises(StoreError, match="the PostgreSQL URL is invalid"):
        await store.open()


async def test_a_driver_that_is_not_open_refuses_work():
    driver = PostgresDriver(UNREACHABLE)

    with pytest.raises(StoreError, match="store is not open"):
        await driver.transaction([])


@pytest.mark.postgres
async def test_a_missing_database_is_named_as_such(postgres_url):
    url = urlunsplit(urlsplit(postgres_url)._replace(path="/stockade_no_such_database"))
    store = open_postgres_store(url)

    with pytest.raises(StoreError, match="the PostgreSQL database does not exist"):
        await store.open()


@pytest.mark.postgres
async def test_server_errors_become_store_errors_without_sql_or_server_text(postgres_schema_url):
    store = open_postgres_store(postgres_schema_url)
    await store.open()
    try:
        with pytest.raises(StoreError) as caught:
            await store._db.fetchall("SELECT secret_column FROM no_such_table WHERE x = ?", ("hunter2",))
        assert await store._db.fetchone("SELECT ?::int + 1", (1,)) == (2,)  # the pool is still usable
    finally:
        await store.close()

    assert caught.value.message == "the store failed"
    assert caught.value.__cause__ is None


@pytest.mark.postgres
def test_processes_migrating_at_once_each_find_one_consistent_schema(postgres_schema_url):
    """Several processes opening a new database at the same moment all succeed, and migrate it once."""
    program = textwrap.dedent(
        """
        import asyncio, sys, time
        from stockade.store.postgres import open_postgres_store

        async def main():
            store = open_postgres_store(sys.argv[1])
            await asyncio.sleep(float(sys.argv[2]) - time.time())  # start together
            await store.open()
            rows = await store._db.fetchall("SELECT version FROM schema_migrations ORDER BY version")
            await store.close()
            print([r[0] for r in rows])

        asyncio.run(main())
        """
    )
    start_at = time.time() + 1.5  # after every interpreter has started
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", program, postgres_schema_url, str(start_at)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=60), *p.communicate()) for p in processes]

    folder = resources.files("stockade.store") / "migrations" / "postgres"
    expected = str(sorted(int(p.name.split("_", 1)[0]) for p in folder.iterdir() if p.name.endswith(".sql")))
    assert [(code, out.strip()) for code, out, _ in outcomes] == [(0, expected)] * 4, [e for _, _, e in outcomes]
