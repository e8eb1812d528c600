"""The Driver seam: what a database engine provides to the SQL store, and transaction steps."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, final, runtime_checkable

from stockade.errors import ConflictError

__all__ = ["Driver", "MigrationLocking", "Row", "Step", "already_exists", "concurrent_modification"]

Row = tuple[Any, ...]


@final
@dataclass(frozen=True, slots=True)
class Step:
    """One statement of a transaction; ``expect_rows`` guards conditional writes."""

    sql: str
    args: tuple[Any, ...] = ()
    expect_rows: int | None = None


class Driver(Protocol):
    """What an engine provides to SqlStore."""

    dialect: str  # "sqlite" or "postgres": selects the migrations folder

    async def connect(self) -> None:
        """Open connections."""

    async def close(self) -> None:
        """Close connections."""

    async def fetchone(self, sql: str, args: tuple[Any, ...] = ()) -> Row | None:
        """First row or None."""

    async def fetchall(self, sql: str, args: tuple[Any, ...] = ()) -> list[Row]:
        """All rows."""

    async def transaction(self, steps: Sequence[Step]) -> list[int]:
        """Run steps in one transaction; returns row counts. Raises ConflictError on a unique
        violation or when a step's ``expect_rows`` is not met (and rolls back)."""

    async def executescript(self, script: str) -> None:
        """Run a multi-statement script (migrations), in a transaction."""


@runtime_checkable
class MigrationLocking(Protocol):
    """Optional Driver hook: serialise migrations across processes sharing one database."""

    def migration_lock(self) -> AbstractAsyncContextManager[None]:
        """Held while SqlStore reads the schema version and applies pending migrations."""


def concurrent_modification() -> ConflictError:
    """A conditional write lost a race (OpenWhisk's message)."""
    return ConflictError("Concurrent modification to resource detected.")


def already_exists() -> ConflictError:
    """A create hit an existing row."""
    return ConflictError("resource already exists")
