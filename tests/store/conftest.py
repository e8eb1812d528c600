"""Store fixtures: one fresh store per test, over SQLite or PostgreSQL.

PostgreSQL isolation: a database per test module (dropped afterwards) and a schema per test, chosen
through ``search_path`` in the URL. Where the role may not create databases, the schemas go in the
given database instead.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest

from stockade.store import SqlStore, open_sqlite_store
from stockade.store.postgres import open_postgres_store

T = TypeVar("T")


def run_admin(coro: Coroutine[Any, Any, T]) -> T:
    """Run set-up SQL on a loop of its own, away from the test's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` (asyncpg passes unknown query keys as settings)."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), ("search_path", schema)]
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def _create_database(url: str, name: str) -> bool:
    """Create ``name``; False if the role may not. Prefers a natural-language (ICU) collation, as
    production databases usually have, so that results depending on collation show up."""
    try:
        await _execute(url, f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
    except asyncpg.InsufficientPrivilegeError:
        return False
    except asyncpg.PostgresError:  # before PostgreSQL 15, or built without ICU
        await _execute(url, f"CREATE DATABASE {name}")
    return True


async def _drop_database(url: str, name: str) -> None:
    try:
        await _execute(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    except asyncpg.PostgresSyntaxError:  # before PostgreSQL 13
        await _execute(url, f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="module")
def postgres_module_url(postgres_url: str) -> Iterator[str]:
    """A database for this test module, dropped afterwards (or the given one, if creating is denied)."""
    name = f"stockade_t_{secrets.token_hex(6)}"
    try:
        created = run_admin(_create_database(postgres_url, name))
    except (asyncpg.PostgresError, OSError) as exc:
        pytest.skip(f"PostgreSQL unavailable: cannot create a test database ({type(exc).__name__})")
    if not created:
        yield postgres_url
        return
    try:
        yield with_database(postgres_url, name)
    finally:
        run_admin(_drop_database(postgres_url, name))


@pytest.fixture
def postgres_schema_url(postgres_module_url: str) -> Iterator[str]:
    """A URL whose tables land in a fresh, empty schema."""
    schema = f"t_{secrets.token_hex(6)}"
    try:
        run_admin(_execute(postgres_module_url, f"CREATE SCHEMA {schema}"))
    except asyncpg.PostgresError as exc:
        pytest.skip(f"PostgreSQL unavailable: cannot create a test schema ({type(exc).__name__})")
    try:
        yield with_search_path(postgres_module_url, schema)
    finally:
        run_admin(_execute(postgres_module_url, f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> str:
    """The engine under test."""
    return str(request.param)


@pytest.fixture
def store_location(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    """Where a fresh store lives: a SQLite file path or a PostgreSQL URL."""
    if engine == "sqlite":
        return tmp_path / "data" / "stockade.db"
    return str(request.getfixturevalue("postgres_schema_url"))


StoreFactory = Callable[[], Awaitable[SqlStore]]


@pytest.fixture
async def make_store(store_location: Path | str) -> AsyncIterator[StoreFactory]:
    """Opens stores over the same location; closes them all afterwards."""
    opened: list[SqlStore] = []

    async def _open() -> SqlStore:
        if isinstance(store_location, Path):
            store = open_sqlite_store(store_location)
        else:
            store = open_postgres_store(store_location)
        await store.open()
        opened.append(store)
        return store

    yield _open
    for store in opened:
        await store.close()


@pytest.fixture
async def store(make_store: StoreFactory) -> SqlStore:
    """A fresh, migrated store."""
    return await make_store()
