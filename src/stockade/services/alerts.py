"""Alert use cases: webhooks and rules per namespace, alert and dead-letter listings, and delivery.

Webhooks are called by the platform (never by actions). Each delivery is a POST of the alert as
JSON, signed with the webhook's secret (``Stockade-Signature``, see observability/alerts.py),
retried with exponential backoff and jitter, and recorded as a dead letter after
``webhook_max_attempts`` failures (or when the platform stops first). Secrets are sealed with
the namespace data key and opened only to sign. Redirects are not followed, and by default
only public https:// addresses are accepted (checked when the webhook is added and again,
after DNS resolution, before every delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import random
import re
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

from stockade import __version__
from stockade.config import ObservabilitySettings
from stockade.domain import JSON, Clock, Identity
from stockade.errors import BadRequestError, ForbiddenError, NotFoundError
from stockade.observability.alerts import SIGNATURE_HEADER, Alert, AlertEngine, parse_rule, sign_payload
from stockade.observability.events import SecurityEvent, Severity
from stockade.observability.metrics import Metrics
from stockade.security.authz import Permission
from stockade.services.access import AccessService
from stockade.services.audit import AuditEvent
from stockade.services.events import EventPipeline
from stockade.services.vault import ParameterVault
from stockade.store import AlertAck, AlertQuery, DeadLetter, Store, WebhookRecord

__all__ = ["AlertService", "WebhookDispatcher", "check_webhook_url"]

log = structlog.get_logger("stockade.alerts")

MAX_WEBHOOKS = 20
MAX_ACK_NOTE_CHARS = 500
_ALERT_ID_RE = re.compile(r"\A[0-9a-zA-Z_-]{1,64}\Z")
MAX_RULES = 50
MIN_SECRET_CHARS = 16
MAX_BACKOFF_S = 60.0
_WEBHOOKS_TTL_S = 5.0


def _malformed(detail: str) -> BadRequestError:
    return BadRequestError(f"The request content was malformed:\n{detail}")


def _is_public(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


def check_webhook_url(url: Any, settings: ObservabilitySettings) -> str:
    """A webhook URL the platform may call: https (http only if allowed), a host, no credentials."""
    if not isinstance(url, str) or not 0 < len(url) <= 2048:
        raise _malformed("'url' must be a URL of at most 2048 characters")
    parts = urlsplit(url)
    allowed = ("https", "http") if settings.allow_plain_http_webhooks else ("https",)
    if parts.scheme not in allowed:
        raise _malformed(f"'url' must use {' or '.join(allowed)}")
    if not parts.hostname or parts.username or parts.password:
        raise _malformed("'url' must name a host and carry no credentials")
    host = parts.hostname
    if not settings.allow_private_webhook_hosts:
        is_literal = host.replace(".", "").isdigit() or ":" in host
        if host == "localhost" or host.endswith(".localhost") or (is_literal and not _is_public(host)):
            raise _malformed("'url' must be a public address (private, loopback and link-local hosts are refused)")
    return url


async def _resolves_public(host: str, port: int) -> bool:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port)
    return bool(infos) and all(_is_public(str(info[4][0])) for info in infos)


class WebhookDispatcher:
    """Delivers alerts to the webhooks of their namespace (and the platform's), with retries."""

    def __init__(
        self,
        store: Store,
        vault: ParameterVault,
        clock: Clock,
        metrics: Metrics,
        settings: ObservabilitySettings,
        *,
        admin_namespace: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._store = store
        self._vault = vault
        self._clock = clock
        self._metrics = metrics
        self._settings = settings
        self._admin = admin_namespace
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._tasks: dict[asyncio.Task[None], tuple[Alert, WebhookRecord]] = {}
        self._webhooks: list[WebhookRecord] = []
        self._loaded_at: float | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._settings.webhook_timeout_s,
                follow_redirects=False,
                transport=self._transport,
                headers={"User-Agent": f"stockade-alerts/{__version__}"},
            )
        return self._client

    def forget(self) -> None:
        """Re-read webhooks on the next alert (after a change)."""
        self._loaded_at = None

    def deliver(self, alert: Alert) -> None:
        """Start delivering ``alert`` to every matching webhook (returns at once)."""
        task = asyncio.create_task(self._fan_out(alert))
        self._tasks[task] = (alert, WebhookRecord("", alert.namespace, "", {}, 0, 0, ""))
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    async def _targets(self, alert: Alert) -> list[WebhookRecord]:
        now = self._clock.monotonic()
        if self._loaded_at is None or now - self._loaded_at > _WEBHOOKS_TTL_S:
            self._webhooks = await self._store.list_webhooks()
            self._loaded_at = now
        wanted = {alert.namespace, self._admin}
        return [w for w in self._webhooks if w.namespace in wanted and int(alert.severity) >= w.min_severity]

    async def _fan_out(self, alert: Alert) -> None:
        for webhook in await self._targets(alert):
            task = asyncio.create_task(self._deliver(alert, webhook))
            self._tasks[task] = (alert, webhook)
            task.add_done_callback(self._done)

    async def _deliver(self, alert: Alert, webhook: WebhookRecord) -> None:
        delivery_id = secrets.token_hex(16)
        body = json.dumps(
            {"id": delivery_id, "type": "alert", "sentAt": self._clock.now_ms(), "alert": alert.to_json()},
            separators=(",", ":"),
        ).encode()
        attempts = 0
        error = ""
        while attempts < self._settings.webhook_max_attempts:
            attempts += 1
            try:
                await self._post(webhook, body, delivery_id)
            except Exception as exc:  # every failure is retried, then dead-lettered
                error = str(exc)[:300] or type(exc).__name__
                self._metrics.delivery("failed")
                log.warning("alert.delivery_failed", webhook=webhook.id, alert_id=alert.alert_id, attempt=attempts)
            else:
                self._metrics.delivery("delivered")
                log.info("alert.delivered", webhook=webhook.id, alert_id=alert.alert_id, attempts=attempts)
                return
            if attempts < self._settings.webhook_max_attempts:
                backoff = min(self._settings.webhook_backoff_s * 2 ** (attempts - 1), MAX_BACKOFF_S)
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not a secret
        await self._dead_letter(alert, webhook, attempts, error)

    async def _post(self, webhook: WebhookRecord, body: bytes, delivery_id: str) -> None:
        parts = urlsplit(webhook.url)
        if not self._settings.allow_private_webhook_hosts:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            if not await _resolves_public(parts.hostname or "", port):
                raise RuntimeError("webhook host resolves to a non-public address")
        context = (webhook.namespace, "webhooks", webhook.id, "secret")
        secret = await self._vault.open_json(context, {k: str(v) for k, v in webhook.sealed_secret.items()})
        timestamp = self._clock.now_ms() // 1000
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign_payload(str(secret).encode(), body, timestamp),
            "Stockade-Delivery": delivery_id,
        }
        response = await self._http().post(webhook.url, content=body, headers=headers)
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"HTTP {response.status_code}")

    async def _dead_letter(self, alert: Alert, webhook: WebhookRecord, attempts: int, error: str) -> None:
        self._metrics.delivery("dead_lettered")
        log.error("alert.dead_lettered", webhook=webhook.id, alert_id=alert.alert_id, attempts=attempts)
        record = DeadLetter(
            id=secrets.token_hex(16),
            namespace=webhook.namespace,
            webhook_id=webhook.id,
            alert_id=alert.alert_id,
            attempts=attempts,
            last_error=error,
            at=self._clock.now_ms(),
            doc={"alert": alert.to_json(), "url": webhook.url},
        )
        try:
            await self._store.put_dead_letter(record)
        except Exception:
            log.exception("alert.dead_letter_failed", webhook=webhook.id, alert_id=alert.alert_id)

    async def wait_idle(self) -> None:
        """Wait until every delivery in progress has finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, *, grace_s: float = 2.0) -> None:
        """Give deliveries ``grace_s`` to finish; dead-letter the rest."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace_s)
        for task, (alert, webhook) in list(self._tasks.items()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            if webhook.id:
                await self._dead_letter(alert, webhook, 0, "the platform stopped before delivery")
        if self._client is not None:
            await self._client.aclose()


def _webhook_json(record: WebhookRecord) -> dict[str, JSON]:
    return {
        "id": record.id,
        "namespace": record.namespace,
        "url": record.url,
        "minSeverity": Severity(record.min_severity).label,
        "created": record.created,
        "createdBy": record.subject,
        "secretFingerprint": str(record.sealed_secret.get("fp", "")),
    }


class AlertService:
    """Webhooks, rules and alert listings of a namespace."""

    def __init__(
        self,
        store: Store,
        vault: ParameterVault,
        clock: Clock,
        settings: ObservabilitySettings,
        pipeline: EventPipeline,
        dispatcher: WebhookDispatcher,
        *,
        admin_namespace: str,
    ) -> None:
        # Set by build_services: role checks (MONITOR to read, ROLES to change).
        self.access: AccessService | None = None
        self._store = store
        self._vault = vault
        self._clock = clock
        self._settings = settings
        self._pipeline = pipeline
        self.dispatcher = dispatcher
        self._admin = admin_namespace

    @property
    def engine(self) -> AlertEngine:
        """The rule engine (platform rules and the namespaces' rules)."""
        return self._pipeline.engine

    async def require(self, identity: Identity, namespace: str, *, write: bool) -> None:
        """Reading a namespace's events and alerts needs MONITOR (owners, auditors); changing its
        webhooks and rules needs ROLES (owners). The platform's administrative namespace may read
        every namespace's."""
        if self.access is None:
            if namespace == identity.namespace:
                return
            raise ForbiddenError(f"The supplied authentication is not authorized to access '{namespace}'.")
        permission = Permission.ROLES if write else Permission.MONITOR
        if not write and await self.access.allows(identity, self._admin, Permission.MONITOR):
            return  # monitors of the platform's administrative namespace see every namespace
        await self.access.require(identity, namespace, permission, f"{namespace}/monitoring")

    # -- webhooks ------------------------------------------------------------------------------

    async def add_webhook(self, identity: Identity, namespace: str, body: Any) -> dict[str, JSON]:
        """Add a webhook ``{"url", "secret", "minSeverity"?}``; the secret is sealed and never returned."""
        await self.require(identity, namespace, write=True)
        if not isinstance(body, Mapping):
            raise _malformed("the body must be an object")
        url = check_webhook_url(body.get("url"), self._settings)
        secret = body.get("secret")
        if not isinstance(secret, str) or not MIN_SECRET_CHARS <= len(secret) <= 256:
            raise _malformed(f"'secret' must be a string of {MIN_SECRET_CHARS} to 256 characters")
        try:
            min_severity = Severity.parse(body.get("minSeverity", "medium"))
        except ValueError as exc:
            raise _malformed(str(exc)) from None
        if len(await self._store.list_webhooks(namespace)) >= MAX_WEBHOOKS:
            raise BadRequestError(f"A namespace may have at most {MAX_WEBHOOKS} webhooks.")
        webhook_id = secrets.token_hex(8)
        sealed = await self._vault.seal_json(namespace, (namespace, "webhooks", webhook_id, "secret"), secret)
        record = WebhookRecord(
            webhook_id, namespace, url, dict(sealed), int(min_severity), self._clock.now_ms(), identity.subject
        )
        await self._store.put_webhook(record)
        self.dispatcher.forget()
        log.info("alert.webhook_added", namespace=namespace, webhook=webhook_id, subject=identity.subject)
        return _webhook_json(record)

    async def list_webhooks(self, identity: Identity, namespace: str) -> list[dict[str, JSON]]:
        """The namespace's webhooks (URLs and secret fingerprints)."""
        await self.require(identity, namespace, write=False)
        return [_webhook_json(w) for w in await self._store.list_webhooks(namespace)]

    async def delete_webhook(self, identity: Identity, namespace: str, webhook_id: str) -> None:
        """Remove a webhook."""
        await self.require(identity, namespace, write=True)
        if not await self._store.delete_webhook(namespace, webhook_id):
            raise NotFoundError()
        self.dispatcher.forget()
        log.info("alert.webhook_deleted", namespace=namespace, webhook=webhook_id, subject=identity.subject)

    # -- rules ---------------------------------------------------------------------------------

    async def put_rule(self, identity: Identity, namespace: str, rule_id: str, body: Any) -> dict[str, JSON]:
        """Create or replace a namespace rule (the body is a rule document; its id is the URL's)."""
        await self.require(identity, namespace, write=True)
        if not isinstance(body, Mapping):
            raise _malformed("the body must be an object")
        rule = parse_rule({**body, "id": rule_id}, namespace)
        existing = await self._store.list_alert_rules(namespace)
        if len(existing) >= MAX_RULES and all(doc.get("id") != rule_id for _, doc in existing):
            raise BadRequestError(f"A namespace may have at most {MAX_RULES} alert rules.")
        await self._store.put_alert_rule(namespace, rule.id, rule.to_json(), self._clock.now_ms())
        await self._pipeline.reload_rules()
        return rule.to_json()

    async def list_rules(self, identity: Identity, namespace: str) -> dict[str, JSON]:
        """The platform rules (apply everywhere) and the namespace's own."""
        await self.require(identity, namespace, write=False)
        own = [doc for _, doc in await self._store.list_alert_rules(namespace)]
        return {"platform": [r.to_json() for r in self.engine.platform_rules], "namespace": list(own)}

    async def delete_rule(self, identity: Identity, namespace: str, rule_id: str) -> None:
        """Remove a namespace rule."""
        await self.require(identity, namespace, write=True)
        if not await self._store.delete_alert_rule(namespace, rule_id):
            raise NotFoundError()
        await self._pipeline.reload_rules()

    # -- listings ------------------------------------------------------------------------------

    async def list_alerts(self, identity: Identity, query: AlertQuery) -> list[dict[str, JSON]]:
        """Alerts of a namespace, newest first (buffered events are evaluated first)."""
        await self.require(identity, query.namespace, write=False)
        await self._pipeline.flush()
        return [a.to_json() for a in await self._store.list_alerts(query)]

    async def list_dead_letters(self, identity: Identity, namespace: str, limit: int) -> list[dict[str, JSON]]:
        """Undeliverable alerts of a namespace's webhooks, newest first."""
        await self.require(identity, namespace, write=False)
        return [
            {
                "id": d.id,
                "webhook": d.webhook_id,
                "alert": d.alert_id,
                "attempts": d.attempts,
                "lastError": d.last_error,
                "at": d.at,
                "url": d.doc.get("url"),
            }
            for d in await self._store.list_dead_letters(namespace, limit)
        ]

    # -- detail and acknowledgment ---------------------------------------------------------------

    async def alert_detail(
        self, identity: Identity, namespace: str, alert_id: str
    ) -> tuple[Alert, list[SecurityEvent], AlertAck | None]:
        """One alert, the events it covers (its evidence) and its acknowledgment; 404 if unknown."""
        await self.require(identity, namespace, write=False)
        if not _ALERT_ID_RE.match(alert_id):
            raise NotFoundError()
        await self._pipeline.flush()
        alert = await self._store.get_alert(namespace, alert_id)
        if alert is None:
            raise NotFoundError()
        namespaces = (namespace, "") if namespace == self._admin else (namespace,)
        evidence = await self._store.get_events_by_id(namespaces, alert.event_ids[:100])
        acks = await self._store.list_alert_acks(namespace, [alert_id])
        return alert, evidence, acks.get(alert_id)

    async def acknowledgments(self, identity: Identity, namespace: str, alert_ids: list[str]) -> dict[str, AlertAck]:
        """Acknowledgments of these alerts of ``namespace``."""
        await self.require(identity, namespace, write=False)
        return await self._store.list_alert_acks(namespace, alert_ids[:500])

    async def acknowledge(self, identity: Identity, namespace: str, alert_id: str, note: str) -> AlertAck:
        """Acknowledge an alert (MONITOR, like reading it); the first acknowledgment stands. Audited."""
        alert, _evidence, existing = await self.alert_detail(identity, namespace, alert_id)
        if existing is not None:
            return existing
        cleaned = "".join(c for c in note if c.isprintable())[:MAX_ACK_NOTE_CHARS]
        ack = AlertAck(namespace, alert.alert_id, identity.subject, self._clock.now_ms(), cleaned)
        if not await self._store.put_alert_ack(ack):
            found = await self._store.list_alert_acks(namespace, [alert_id])
            return found.get(alert_id, ack)
        if self.access is not None:
            self.access.audit(
                AuditEvent(namespace, identity.subject, "alert.acknowledged", f"alerts/{alert.alert_id}", "ok")
            )
        log.info("alert.acknowledged", namespace=namespace, alert_id=alert.alert_id, subject=identity.subject)
        return ack
