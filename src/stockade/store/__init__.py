"""Persistent state: the Store protocol and its SQLite and PostgreSQL implementations."""

from __future__ import annotations

from pathlib import Path

from stockade.store.access import AccessStore, AuditRecord, RoleBinding
from stockade.store.base import (
    ActionVersionRef,
    ActivationQuery,
    AdvisoryRecord,
    AdvisorySync,
    AdvisoryUpsert,
    Collection,
    Delete,
    KeyRecord,
    Put,
    Store,
    StoredEntity,
    Write,
)
from stockade.store.console import AlertAck, ConsoleSession, ConsoleStore
from stockade.store.gateway import GatewayStore, QuotaWindow
from stockade.store.journal import AUDIT_INTENT, AuditIntent, JournalStore, OutboxEntry, PendingActivation, RateCount
from stockade.store.logins import LoginStore
from stockade.store.monitoring import AlertQuery, DeadLetter, EventQuery, MonitoringStore, WebhookRecord
from stockade.store.sql import SqlStore
from stockade.store.sqlite import open_sqlite_store

__all__ = [
    "AUDIT_INTENT",
    "AccessStore",
    "ActionVersionRef",
    "ActivationQuery",
    "AdvisoryRecord",
    "AdvisorySync",
    "AdvisoryUpsert",
    "AlertAck",
    "AlertQuery",
    "AuditIntent",
    "AuditRecord",
    "Collection",
    "ConsoleSession",
    "ConsoleStore",
    "DeadLetter",
    "Delete",
    "EventQuery",
    "GatewayStore",
    "JournalStore",
    "KeyRecord",
    "LoginStore",
    "MonitoringStore",
    "OutboxEntry",
    "PendingActivation",
    "Put",
    "QuotaWindow",
    "RateCount",
    "RoleBinding",
    "SqlStore",
    "Store",
    "StoredEntity",
    "WebhookRecord",
    "Write",
    "open_sqlite_store",
    "open_store",
]


def open_store(url: str, data_dir: Path) -> SqlStore:
    """The store for a settings URL: ``sqlite`` (in ``data_dir``) or ``postgresql://``."""
    if url == "sqlite":
        return open_sqlite_store(data_dir / "stockade.db")
    from stockade.store.postgres import open_postgres_store  # asyncpg only when configured

    return open_postgres_store(url)
