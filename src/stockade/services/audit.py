"""The audit log: who did what, when, from where, with what outcome, in tamper-evident chains.

One chain per namespace (``""`` for platform-wide events such as failed logins). Each entry's
MAC is HMAC-SHA256 over the previous MAC and the entry, under an audit key that lives with the
master-key-wrapped data keys (not in the rows), so a database writer cannot forge a consistent
chain. Verification walks a chain and names the first altered, removed or reordered entry.
Nobody can edit entries through the API.

A change's entry commits in the change's own transaction (``change_intent``: the store puts it
in ``audit_outbox``, sealed by its own MAC), and the writer then moves outbox entries into their
chains, so no committed change lacks its entry, even across a crash. Other events (refusals,
failed logins) are written behind in batches (``record``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, final

import structlog

from stockade.domain import JSON, Clock
from stockade.errors import ConflictError, StorageFullError
from stockade.security import DataKey
from stockade.services.vault import ParameterVault
from stockade.store import AUDIT_INTENT, AccessStore, AuditIntent, AuditRecord, JournalStore, OutboxEntry

__all__ = ["PLATFORM_CHAIN", "AuditEvent", "AuditLog", "Verification"]

log = structlog.get_logger("stockade.audit")

PLATFORM_CHAIN = ""
# The pseudo-namespace whose data key is the audit MAC key (names cannot be empty elsewhere).
_AUDIT_KEY_NAMESPACE = ""
_GENESIS = "0" * 64


@final
@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One thing worth recording."""

    namespace: str  # the chain; "" for platform-wide
    actor: str  # subject, "anonymous", or an action FQN
    action: str  # e.g. "PUT actions", "auth.failed", "secret.accessed", "deploy.risk_accepted"
    resource: str
    outcome: str  # "ok", "denied", "failed", or an HTTP status
    source: str = ""  # client address
    details: dict[str, JSON] = field(default_factory=dict)


@final
@dataclass(frozen=True, slots=True)
class Verification:
    """The result of walking one chain."""

    chain: str
    entries: int
    head_seq: int
    head_mac: str
    problems: tuple[str, ...]

    @property
    def is_intact(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def to_json(self) -> dict[str, JSON]:
        """API form."""
        return {
            "chain": self.chain,
            "ok": self.is_intact,
            "entries": self.entries,
            "head": {"seq": self.head_seq, "mac": self.head_mac},
            "problems": list(self.problems),
        }


def _entry(event: AuditEvent, key_id: str) -> dict[str, JSON]:
    return {
        "actor": event.actor,
        "action": event.action,
        "resource": event.resource,
        "outcome": event.outcome,
        "source": event.source,
        "details": event.details,
        "kid": key_id,
    }


def _canonical(seq: int, at: int, entry: dict[str, JSON]) -> bytes:
    return json.dumps({"seq": seq, "at": at, "entry": entry}, sort_keys=True, separators=(",", ":")).encode()


def _outbox_mac(key: bytes, chain: str, at: int, entry: dict[str, JSON]) -> str:
    body = json.dumps({"chain": chain, "at": at, "entry": entry}, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, b"outbox\n" + body, hashlib.sha256).hexdigest()


def _mac(key: bytes, prev: str, seq: int, at: int, entry: dict[str, JSON]) -> str:
    return hmac.new(key, prev.encode() + b"\n" + _canonical(seq, at, entry), hashlib.sha256).hexdigest()


class AuditStore(AccessStore, JournalStore, Protocol):
    """What the audit log uses: the chains (access store) and the outbox (journal store)."""


class AuditLog:
    """Append (written behind, in order per chain), read, verify, export."""

    def __init__(self, store: AuditStore, vault: ParameterVault, clock: Clock, *, flush_interval_ms: int = 50) -> None:
        self._store = store
        self._vault = vault
        self._clock = clock
        self._interval_s = flush_interval_ms / 1000
        self._queue: list[tuple[int, AuditEvent]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._lock = asyncio.Lock()
        self._outbox_dirty = False
        self._outbox_checked = 0.0

    def start(self) -> None:
        """Start the background writer."""
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def start_durable(self) -> None:
        """Chain what an earlier process committed to the outbox, then start the writer."""
        await self._drain_outbox()
        self.start()

    async def change_intent(self, make_event: Callable[[], AuditEvent]) -> AuditIntent:
        """The entry a changing request commits with its change (``make_event`` is called then).

        Install it in ``stockade.store.AUDIT_INTENT`` for the request's task.
        """
        key = await self._key()
        clock = self._clock

        def make() -> tuple[str, int, dict[str, JSON], str]:
            event = make_event()
            at = clock.now_ms()
            entry = _entry(event, key.key_id)
            return event.namespace, at, entry, _outbox_mac(key.key, event.namespace, at, entry)

        return AuditIntent(make)

    def outbox_written(self) -> None:
        """A change committed its entry to the outbox: chain it soon."""
        self._outbox_dirty = True
        self._wake.set()

    @contextlib.asynccontextmanager
    async def changing(self, make_event: Callable[[], AuditEvent]) -> AsyncIterator[AuditIntent]:
        """Commit ``make_event()``'s entry with the first change the block makes (for callers
        outside the HTTP edge, e.g. operator commands); ``intent.committed`` says whether it did.
        """
        intent = await self.change_intent(make_event)
        token = AUDIT_INTENT.set(intent)
        try:
            yield intent
        finally:
            AUDIT_INTENT.reset(token)
            if intent.committed:
                self.outbox_written()

    async def _drain_outbox(self) -> None:
        """Move committed outbox entries into their chains (one transaction per batch)."""
        async with self._lock:
            self._outbox_dirty = False
            await self._drain_outbox_locked()

    async def _drain_outbox_locked(self) -> None:
        for _batch in range(100):
            rows = await self._store.list_audit_outbox(500)
            if not rows:
                return
            for _attempt in range(10):
                try:
                    await self._chain_outbox(rows)
                    break
                except ConflictError:
                    rows = await self._store.list_audit_outbox(500)
                    if not rows:
                        return
            else:
                raise ConflictError("audit outbox is too contended to chain")

    async def _chain_outbox(self, rows: list[OutboxEntry]) -> None:
        key = await self._key()
        records: list[AuditRecord] = []
        by_chain: dict[str, list[OutboxEntry]] = {}
        for row in rows:
            by_chain.setdefault(row.chain, []).append(row)
        for chain, items in by_chain.items():
            tail = await self._store.audit_tail(chain)
            seq, prev = (tail.seq, tail.mac) if tail else (0, _GENESIS)
            for row in items:
                entry = dict(row.entry)
                sealed_by = str(entry.get("kid", ""))
                try:
                    outbox_key = key.key if sealed_by == key.key_id else (await self._vault.data_key("", sealed_by)).key
                    intact = hmac.compare_digest(_outbox_mac(outbox_key, row.chain, row.at, row.entry), row.mac)
                except Exception:
                    intact = False
                if not intact:
                    # Altered between its commit and its chaining: chained anyway, and flagged.
                    log.error("audit.outbox_tampered", chain=chain, outbox_id=row.id)
                    entry["tampered"] = True
                entry["kid"] = key.key_id
                seq += 1
                prev = _mac(key.key, prev, seq, row.at, entry)
                records.append(AuditRecord(chain, seq, row.at, entry, prev))
        await self._store.chain_audit_outbox(records, [row.id for row in rows])

    def record(self, event: AuditEvent) -> None:
        """Queue an event (never blocks the caller)."""
        self._queue.append((self._clock.now_ms(), event))
        if len(self._queue) >= 256:
            self._wake.set()

    async def _key(self) -> DataKey:
        return await self._vault.active_key(_AUDIT_KEY_NAMESPACE)

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval_s)
            self._wake.clear()
            try:
                now = self._clock.monotonic()
                if self._outbox_dirty or now - self._outbox_checked > 1.0:
                    self._outbox_checked = now
                    await self._drain_outbox()
                await self.flush()
            except StorageFullError:
                # Kept queued (and committed outbox entries stay there) until space returns.
                log.warning("audit.flush_deferred", reason="storage full or read-only", pending=len(self._queue))
                await asyncio.sleep(0.5)
            except Exception:
                log.exception("audit.flush_failed", pending=len(self._queue))
                await asyncio.sleep(0.5)

    async def flush(self) -> None:
        """Write everything queued, chain by chain, in order."""
        async with self._lock:
            if not self._queue:
                return
            batch, self._queue = self._queue, []
            by_chain: dict[str, list[tuple[int, AuditEvent]]] = {}
            for item in batch:
                by_chain.setdefault(item[1].namespace, []).append(item)
            written: set[str] = set()
            try:
                for chain, items in by_chain.items():
                    await self._append(chain, items)
                    written.add(chain)
            except BaseException:
                # Invariant: nothing is lost; events of unwritten chains go back to the queue's front.
                self._queue[:0] = [item for item in batch if item[1].namespace not in written]
                raise

    async def _append(self, chain: str, items: list[tuple[int, AuditEvent]]) -> None:
        key = await self._key()
        for _attempt in range(10):
            tail = await self._store.audit_tail(chain)
            seq, prev = (tail.seq, tail.mac) if tail else (0, _GENESIS)
            records = []
            for at, event in items:
                seq += 1
                entry = _entry(event, key.key_id)
                prev = _mac(key.key, prev, seq, at, entry)
                records.append(AuditRecord(chain, seq, at, entry, prev))
            try:
                await self._store.append_audit(records)
            except ConflictError:
                continue  # another process appended to this chain: recompute on the new tail
            return
        raise ConflictError(f"audit chain {chain!r} is too contended to append")

    async def close(self) -> None:
        """Flush and stop."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self._drain_outbox()
        await self.flush()

    async def entries(
        self, chain: str, *, since_seq: int = 0, limit: int = 1000, since_ms: int | None = None
    ) -> list[AuditRecord]:
        """Entries of a chain in order (pending ones flushed first)."""
        await self._drain_outbox()
        await self.flush()
        return await self._store.list_audit(chain, since_seq=since_seq, limit=limit, since_ms=since_ms)

    async def iterate(self, chain: str, page: int = 1000) -> AsyncIterator[AuditRecord]:
        """Every entry of a chain, in order."""
        await self._drain_outbox()
        await self.flush()
        since = 0
        while True:
            batch = await self._store.list_audit(chain, since_seq=since, limit=page)
            for record in batch:
                yield record
            if len(batch) < page:
                return
            since = batch[-1].seq

    async def verify(self, chain: str) -> Verification:
        """Walk a chain: contiguous sequence numbers, each MAC over the previous one, valid keys."""
        problems: list[str] = []
        expected_seq, prev, count = 1, _GENESIS, 0
        keys: dict[str, bytes] = {}
        last_seq, last_mac = 0, _GENESIS
        async for record in self.iterate(chain):
            count += 1
            if record.seq != expected_seq:
                problems.append(f"entry {expected_seq} is missing (next present is {record.seq})")
                expected_seq = record.seq
            kid = str(record.entry.get("kid", ""))
            if kid not in keys:
                try:
                    keys[kid] = (await self._vault.data_key(_AUDIT_KEY_NAMESPACE, kid)).key
                except Exception:
                    problems.append(f"entry {record.seq} names an unknown audit key")
                    keys[kid] = b""
            if record.entry.get("tampered") is True:
                problems.append(f"entry {record.seq} was altered before it was chained")
            if keys[kid] and not hmac.compare_digest(
                _mac(keys[kid], prev, record.seq, record.at, record.entry), record.mac
            ):
                problems.append(f"entry {record.seq} was altered, removed from before it, or moved")
            prev = record.mac
            expected_seq += 1
            last_seq, last_mac = record.seq, record.mac
        return Verification(chain, count, last_seq, last_mac, tuple(problems))

    @staticmethod
    def record_to_json(record: AuditRecord) -> dict[str, Any]:
        """Export form (one JSON object per line)."""
        return {"chain": record.chain, "seq": record.seq, "at": record.at, **record.entry, "mac": record.mac}
