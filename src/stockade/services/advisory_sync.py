"""Advisories that keep themselves current: download OSV's per-ecosystem exports, verify, import.

``{scan.advisories_url}/{ecosystem}/all.zip`` is OSV's export format (one JSON document per
advisory in a zip; the public bucket by default). A sync per ecosystem:

- asks with the validators of the last sync (``If-None-Match`` / ``If-Modified-Since``): a 304
  only records the sync time;
- reads at most ``advisories_max_download_mb`` (declared and actual length must agree), then
  verifies the archive in memory: every member's CRC (zipfile checks it on read), names without
  traversal, per-member and total size caps, JSON that parses as OSV and names the ecosystem
  being synced (an export that smuggles another ecosystem's advisories is rejected per document);
- imports in batches through the store's digest-checked upsert (unchanged advisories are not
  rewritten: incremental), records the sync, and rescans deployed actions against the
  advisories that changed.

The URL comes from settings only, never from a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import zipfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, final

import httpx
import structlog

from stockade.config import ScanSettings
from stockade.domain import JSON, Clock
from stockade.errors import BadRequestError, ServiceUnavailableError
from stockade.security.scanner import Advisory, AdvisoryError, parse_osv
from stockade.store import AdvisoryRecord, AdvisorySync, Store

__all__ = ["AdvisorySyncer", "SyncOutcome"]

log = structlog.get_logger("stockade.advisories")

_MAX_MEMBER_BYTES = 4 * 1024 * 1024
_MAX_UNPACKED_RATIO = 40
_BATCH = 1000


@final
@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """One ecosystem's sync."""

    ecosystem: str
    status: str  # "updated", "not-modified"
    advisories: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    newly_vulnerable: int

    def to_json(self) -> dict[str, JSON]:
        """API form."""
        return {
            "ecosystem": self.ecosystem,
            "status": self.status,
            "advisories": self.advisories,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "newlyVulnerable": self.newly_vulnerable,
        }


def _verify_export(data: bytes, ecosystem: str, max_unpacked: int) -> tuple[list[Advisory], int]:
    """The advisories of one export, and how many documents were rejected (runs off the loop)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise BadRequestError(f"the {ecosystem} advisory export is not a zip archive") from None
    with archive:
        infos = archive.infolist()
        if sum(i.file_size for i in infos) > max_unpacked:
            raise BadRequestError(f"the {ecosystem} advisory export unpacks beyond {max_unpacked} bytes")
        advisories: list[Advisory] = []
        rejected = 0
        for info in infos:
            name = info.filename
            if info.is_dir():
                continue
            if name.startswith("/") or ".." in name.split("/") or "\\" in name or not name.endswith(".json"):
                rejected += 1
                continue
            if info.file_size > _MAX_MEMBER_BYTES:
                rejected += 1
                continue
            try:
                doc = json.loads(archive.read(info))  # checks the CRC
            except zipfile.BadZipFile:
                raise BadRequestError(f"the {ecosystem} advisory export is corrupt ({name})") from None
            except ValueError:
                rejected += 1
                continue
            try:
                advisory = parse_osv(doc)
            except AdvisoryError:
                rejected += 1
                continue
            if not any(eco == ecosystem for eco, _name in advisory.packages):
                rejected += 1  # not this ecosystem's: never imported under its name
                continue
            advisories.append(advisory)
    return advisories, rejected


class AdvisorySyncer:
    """Downloads, verifies and imports OSV exports; records each ecosystem's last sync."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: ScanSettings,
        rescan: Callable[[Sequence[Advisory]], Awaitable[int]],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._rescan = rescan
        self._transport = transport
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Sync in the background every ``advisories_sync_interval_h`` hours (when set)."""
        if self._settings.advisories_sync_interval_h > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="advisory-sync")

    async def _run(self) -> None:
        interval_s = self._settings.advisories_sync_interval_h * 3600
        while True:
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed sync is retried at the next interval, never fatal
                log.warning("advisories.sync_failed", reason=str(exc)[:200])
            await asyncio.sleep(interval_s)

    async def close(self) -> None:
        """Stop the background sync."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def ecosystems(self) -> list[str]:
        """The ecosystems synced."""
        return [e.strip() for e in self._settings.advisories_ecosystems.split(",") if e.strip()]

    async def sync(self, ecosystems: Sequence[str] | None = None) -> list[SyncOutcome]:
        """Sync ``ecosystems`` (default: all configured), one at a time."""
        wanted = list(ecosystems) if ecosystems else self.ecosystems
        for ecosystem in wanted:
            if ecosystem not in self.ecosystems:
                raise BadRequestError(f"unknown ecosystem {ecosystem!r} (configured: {', '.join(self.ecosystems)})")
        async with self._lock:
            return [await self._sync_one(e) for e in wanted]

    async def _download(self, url: str, previous: AdvisorySync | None) -> tuple[int, bytes, str, str]:
        headers = {"Accept": "application/zip"}
        if previous is not None and previous.source == url:
            if previous.etag:
                headers["If-None-Match"] = previous.etag
            if previous.last_modified:
                headers["If-Modified-Since"] = previous.last_modified
        limit = self._settings.advisories_max_download_mb * 1024 * 1024
        try:
            async with (
                httpx.AsyncClient(transport=self._transport, timeout=120, follow_redirects=False) as client,
                client.stream("GET", url, headers=headers) as response,
            ):
                if response.status_code == 304:
                    return 304, b"", previous.etag if previous else "", previous.last_modified if previous else ""
                if response.status_code != 200:
                    raise ServiceUnavailableError(f"advisory download {url} answered {response.status_code}")
                declared = response.headers.get("content-length")
                if declared is not None and (not declared.isdigit() or int(declared) > limit):
                    raise ServiceUnavailableError(f"advisory export {url} is larger than {limit} bytes")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > limit:
                        raise ServiceUnavailableError(f"advisory export {url} is larger than {limit} bytes")
                    chunks.append(chunk)
                if declared is not None and int(declared) != size:
                    raise ServiceUnavailableError(f"advisory export {url} was truncated ({size} of {declared} bytes)")
                return (
                    200,
                    b"".join(chunks),
                    response.headers.get("etag", ""),
                    response.headers.get("last-modified", ""),
                )
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"advisory download {url} failed: {type(exc).__name__}") from None

    async def _sync_one(self, ecosystem: str) -> SyncOutcome:
        url = f"{self._settings.advisories_url.rstrip('/')}/{ecosystem}/all.zip"
        previous = next((s for s in await self._store.list_advisory_sync() if s.ecosystem == ecosystem), None)
        status, data, etag, last_modified = await self._download(url, previous)
        now = self._clock.now_ms()
        if status == 304 and previous is not None:
            await self._store.put_advisory_sync(
                AdvisorySync(ecosystem, now, url, etag, last_modified, previous.advisories)
            )
            log.info("advisories.synced", ecosystem=ecosystem, status="not-modified")
            return SyncOutcome(ecosystem, "not-modified", previous.advisories, 0, 0, 0, 0, 0)
        max_unpacked = self._settings.advisories_max_download_mb * 1024 * 1024 * _MAX_UNPACKED_RATIO
        advisories, rejected = await asyncio.to_thread(_verify_export, data, ecosystem, max_unpacked)
        created = updated = unchanged = 0
        changed: list[Advisory] = []
        for start in range(0, len(advisories), _BATCH):
            batch = advisories[start : start + _BATCH]
            outcome = await self._store.upsert_advisories(
                [AdvisoryRecord(a.id, a.modified, dict(a.doc), a.packages) for a in batch], now
            )
            created += len(outcome.created)
            updated += len(outcome.updated)
            unchanged += len(outcome.unchanged)
            ids = set(outcome.created) | set(outcome.updated)
            changed += [a for a in batch if a.id in ids]
        newly = await self._rescan(changed) if changed else 0
        await self._store.put_advisory_sync(AdvisorySync(ecosystem, now, url, etag, last_modified, len(advisories)))
        log.info(
            "advisories.synced",
            ecosystem=ecosystem,
            status="updated",
            advisories=len(advisories),
            created=created,
            updated=updated,
            unchanged=unchanged,
            rejected=rejected,
            newly_vulnerable=newly,
        )
        return SyncOutcome(ecosystem, "updated", len(advisories), created, updated, unchanged, rejected, newly)

    async def status(self, now_ms: int | None = None) -> dict[str, Any]:
        """Per ecosystem: advisories stored, last sync, and whether the data is missing or stale."""
        now = self._clock.now_ms() if now_ms is None else now_ms
        coverage = await self._store.advisory_coverage()
        synced = {s.ecosystem: s for s in await self._store.list_advisory_sync()}
        max_age = self._settings.advisories_max_age_days * 86_400_000
        out: dict[str, Any] = {}
        for ecosystem in self.ecosystems:
            count, last = coverage.get(ecosystem, (0, None))
            sync = synced.get(ecosystem)
            state = "missing" if count == 0 else ("stale" if last is None or now - last > max_age else "current")
            out[ecosystem] = {
                "advisories": count,
                "lastSync": sync.synced if sync else None,
                "lastUpdate": last,
                "source": sync.source if sync else None,
                "state": state,
            }
        return out
