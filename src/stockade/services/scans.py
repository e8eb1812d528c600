"""The deploy gate: scan every code action before it is written, and keep watching it.

``DeployGate.check`` runs the scanner (off the event loop), looks up advisories for the action's
dependencies in the store, applies the namespace's policy (which severities block, which warn)
and raises DeployBlockedError listing the blocking findings, unless the caller accepts the risk
with a reason, which is logged (``deploy.risk_accepted``), handed to the audit hook and kept in
the stored report. ``record`` stores the report per action version once the action is written.
``import_advisories`` stores OSV advisories and rescans deployed versions' dependency
inventories, raising ``security.action_vulnerable`` for each action that became vulnerable.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, final

import structlog

from stockade.config import ScanSettings
from stockade.domain import JSON, Action, Clock, EntityPath, Identity, Sealed, kv_to_dict, validate_namespace
from stockade.errors import BadRequestError, DeployBlockedError, ForbiddenError, NotFoundError, PayloadTooLargeError
from stockade.security.authz import Permission
from stockade.security.scanner import (
    Advisory,
    AdvisoryError,
    Finding,
    ScanInput,
    Scanner,
    ScanReport,
    Severity,
    parse_osv,
    parse_severities,
    to_sarif,
)
from stockade.security.scanner.dependencies import advisory_coverage_findings
from stockade.services.audit import PLATFORM_CHAIN, AuditEvent, AuditLog
from stockade.store import AdvisoryRecord, Store

__all__ = [
    "ActionVulnerable",
    "AuditHook",
    "Authorizer",
    "DeployChecked",
    "DeployDecision",
    "DeployGate",
    "GateAudit",
    "GateResult",
    "RiskAccepted",
    "ScanPolicy",
    "SecurityEvents",
]

log = structlog.get_logger("stockade.scans")

_ADVISORY_RULES = frozenset({"advisories.unavailable", "advisories.stale"})
_COVERAGE_TTL_S = 30.0
MAX_REASON_CHARS = 500
MAX_LISTED_FINDINGS = 25
MAX_IMPORT_BATCH = 5000
_RESCAN_PAGE = 500
_PARSED_CACHE = 4096


@final
@dataclass(frozen=True, slots=True)
class ScanPolicy:
    """Which severities block a deploy and which only warn."""

    block: frozenset[Severity]
    warn: frozenset[Severity]
    # Missing or stale advisories block (``"advisories": "block"``) instead of warning.
    require_advisories: bool = False

    @classmethod
    def from_settings(cls, settings: ScanSettings) -> ScanPolicy:
        """The platform default."""
        return cls(parse_severities(settings.block_severities), parse_severities(settings.warn_severities))

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ScanPolicy:
        """From ``{"block": [...], "warn": [...], "advisories": "warn"|"block"}``; BadRequestError
        on unknown severities."""
        advisories = doc.get("advisories", "warn")
        if advisories not in ("warn", "block"):
            raise BadRequestError('The request content was malformed:\n\'advisories\' must be "warn" or "block"')
        try:
            return cls(
                parse_severities(doc.get("block") or []),
                parse_severities(doc.get("warn") or []),
                advisories == "block",
            )
        except (ValueError, TypeError) as exc:
            raise BadRequestError(f"The request content was malformed:\n{exc}") from None

    def to_json(self) -> dict[str, JSON]:
        """JSON form, most severe first."""
        order = list(Severity)
        out: dict[str, JSON] = {
            "block": sorted((s.value for s in self.block), key=lambda v: order.index(Severity(v))),
            "warn": sorted((s.value for s in self.warn), key=lambda v: order.index(Severity(v))),
        }
        if self.require_advisories:
            out["advisories"] = "block"
        return out

    def blocking(self, report: ScanReport) -> list[Finding]:
        """The report's findings that block under this policy."""
        found = report.matching(self.block)
        if self.require_advisories:
            found += [f for f in report.findings if f.rule_id in _ADVISORY_RULES and f not in found]
        return found


@final
@dataclass(frozen=True, slots=True)
class RiskAccepted:
    """A deploy let through despite blocking findings: who, why, what."""

    namespace: str
    action: str
    version: str
    subject: str
    reason: str
    findings: tuple[str, ...]  # "rule file:line" of each blocking finding
    when_ms: int


@final
@dataclass(frozen=True, slots=True)
class ActionVulnerable:
    """A deployed action version newly affected by imported advisories."""

    namespace: str
    action: str
    version: str
    advisories: tuple[str, ...]
    when_ms: int


@final
@dataclass(frozen=True, slots=True)
class DeployDecision:
    """A gate decision worth an audit entry: "blocked", "warned" or "accepted" (with a reason)."""

    namespace: str
    action: str
    version: str
    subject: str
    decision: str
    blocking: tuple[str, ...]  # finding ids at a blocking severity
    warnings: tuple[str, ...]  # finding ids at a warning severity
    reason: str | None
    when_ms: int


class AuditHook(Protocol):
    """Where security decisions go besides the log: the audit log (``GateAudit``)."""

    async def risk_accepted(self, event: RiskAccepted) -> None:
        """Record an accepted risk."""

    async def deploy_decided(self, event: DeployDecision) -> None:
        """Record a block, a warning or an override."""


class AuditSink(Protocol):
    """The audit log's public API (``AuditLog.record``)."""

    def record(self, event: AuditEvent) -> None:
        """Queue an entry."""


_AUDIT_ACTIONS = {"blocked": "deploy.blocked", "warned": "deploy.warned", "accepted": "deploy.risk_accepted"}
_AUDIT_OUTCOMES = {"blocked": "denied", "warned": "ok", "accepted": "ok"}


class GateAudit:
    """The gate's decisions as audit entries in the action namespace's chain."""

    def __init__(self, audit: AuditSink) -> None:
        self._audit = audit

    async def risk_accepted(self, event: RiskAccepted) -> None:
        """Recorded by ``deploy_decided`` (the accepted decision carries the reason)."""

    async def deploy_decided(self, event: DeployDecision) -> None:
        """One entry: who, which action version, the finding ids and, for overrides, the reason."""
        details: dict[str, JSON] = {
            "version": event.version,
            "decision": event.decision,
            "findings": list(event.blocking),
            "warnings": list(event.warnings),
        }
        if event.reason is not None:
            details["reason"] = event.reason
        self._audit.record(
            AuditEvent(
                namespace=event.namespace,
                actor=event.subject,
                action=_AUDIT_ACTIONS[event.decision],
                resource=f"/{event.namespace}/{event.action}@{event.version}",
                outcome=_AUDIT_OUTCOMES[event.decision],
                details=details,
            )
        )


@final
@dataclass(frozen=True, slots=True)
class DeployChecked:
    """The gate's decision on one deploy ("passed", "blocked" or "accepted"), findings by severity."""

    namespace: str
    action: str
    version: str
    subject: str
    decision: str
    counts: Mapping[str, int]
    blocking: tuple[str, ...]  # "rule file:line" of each blocking finding
    when_ms: int


class SecurityEvents(Protocol):
    """Where security events go besides the log (the events store arrives with its own issue)."""

    async def action_vulnerable(self, event: ActionVulnerable) -> None:
        """Raise an event for a newly vulnerable action."""

    async def deploy_checked(self, event: DeployChecked) -> None:
        """Count a gate decision and raise an event when it blocked or was overridden."""


class Authorizer(Protocol):
    """The permission check the gate needs (``AccessService.allows``)."""

    async def allows(self, identity: Identity, namespace: str, permission: Permission) -> bool:
        """Whether ``identity`` holds ``permission`` in ``namespace``."""


class _NoHook:
    async def risk_accepted(self, event: RiskAccepted) -> None:
        """Nothing beyond the structured log yet."""

    async def deploy_decided(self, event: DeployDecision) -> None:
        """Nothing beyond the structured log yet."""

    async def action_vulnerable(self, event: ActionVulnerable) -> None:
        """Nothing beyond the structured log yet."""

    async def deploy_checked(self, event: DeployChecked) -> None:
        """Nothing beyond the structured log yet."""


@final
@dataclass(frozen=True, slots=True)
class GateResult:
    """The outcome of a passed (or accepted) check, to be stored once the action is written."""

    report: ScanReport
    policy: ScanPolicy
    decision: str  # "passed", "accepted" or "skipped"
    accepted: RiskAccepted | None = None
    warnings: int = 0


def _finding_id(finding: Finding) -> str:
    """``rule location`` plus the advisory id when there is one (what an auditor looks up)."""
    base = f"{finding.rule_id} {finding.location}"
    return f"{base} {finding.advisory.id}" if finding.advisory is not None else base


def _clean_reason(raw: str) -> str:
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in raw)
    text = " ".join(text.split())
    if not text:
        raise BadRequestError("acceptRisk needs a reason: say why the findings are acceptable.")
    if len(text) > MAX_REASON_CHARS:
        raise BadRequestError(f"acceptRisk reason is longer than {MAX_REASON_CHARS} characters.")
    return text


def _blocked_message(blocking: Sequence[Finding], policy: ScanPolicy) -> str:
    severities = ", ".join(policy.to_json()["block"])
    lines = [
        f"Deploy blocked by the security gate: {len(blocking)} finding(s) at a blocking severity "
        f"({severities}). Fix them, or deploy anyway with acceptRisk=<reason> "
        '(CLI: --accept-risk "reason"); the reason and your identity are recorded.'
    ]
    lines += [f"- {f.describe()}" for f in blocking[:MAX_LISTED_FINDINGS]]
    if len(blocking) > MAX_LISTED_FINDINGS:
        lines.append(f"- ... and {len(blocking) - MAX_LISTED_FINDINGS} more (see the scan report)")
    return "\n".join(lines)


class DeployGate:
    """Scan, decide, record; import advisories and rescan."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: ScanSettings,
        *,
        admin_namespace: str,
        scanner: Scanner | None = None,
        audit: AuditHook | None = None,
        events: SecurityEvents | None = None,
        access: Authorizer | None = None,
        audit_log: AuditLog | None = None,
    ) -> None:
        self._access = access
        self._audit_log = audit_log
        self._store = store
        self._clock = clock
        self._settings = settings
        self._admin_namespace = admin_namespace
        self._scanner = scanner
        self._audit: AuditHook = audit or _NoHook()
        self._events: SecurityEvents = events or _NoHook()
        self._default_policy = ScanPolicy.from_settings(settings)
        # Invariant: scans run on this one thread, off the event loop and one at a time (bandit
        # and detect-secrets keep module-level state).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stockade-scan")
        self._parsed: OrderedDict[tuple[str, str], Advisory] = OrderedDict()
        self._coverage_cache: tuple[float, dict[str, tuple[int, int | None]]] | None = None

    @property
    def scanner(self) -> Scanner:
        """The scanner, created on first use (loading rules and analysers costs a little)."""
        if self._scanner is None:
            self._scanner = Scanner()
        return self._scanner

    async def _off_loop(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # Policy.

    async def policy(self, namespace: str) -> ScanPolicy:
        """The namespace's policy: its stored override, else the platform default."""
        doc = await self._store.get_scan_policy(namespace)
        return ScanPolicy.from_json(doc) if doc is not None else self._default_policy

    async def set_policy(self, identity: Identity, namespace: str, doc: Any, *, source: str = "") -> ScanPolicy:
        """Set a namespace's override (platform administrators only); ``None`` resets it. Audited."""
        await self._require_admin(identity)
        validate_namespace(namespace)
        if doc is None:
            await self._store.delete_scan_policy(namespace)
            self._record(identity, namespace, "scanpolicy.reset", f"{namespace}/scanpolicy", source, {})
            return self._default_policy
        if not isinstance(doc, Mapping):
            raise BadRequestError("The request content was malformed:\nthe policy must be an object")
        policy = ScanPolicy.from_json(doc)
        await self._store.put_scan_policy(namespace, policy.to_json(), self._clock.now_ms())
        self._record(identity, namespace, "scanpolicy.changed", f"{namespace}/scanpolicy", source, policy.to_json())
        return policy

    async def _require_admin(self, identity: Identity) -> None:
        """ROLES in the platform's administrative namespace (a permission, not a namespace match)."""
        if self._access is None or not await self._access.allows(identity, self._admin_namespace, Permission.ROLES):
            raise ForbiddenError()

    def record_advisory_sync(self, identity: Identity, outcomes: Sequence[JSON], source: str) -> None:
        """Audit a sync of the advisory exports (who, from where, what changed per ecosystem)."""
        self.forget_coverage()
        self._record(
            identity, PLATFORM_CHAIN, "advisories.synced", "advisories", source, {"ecosystems": list(outcomes)}
        )

    def _record(
        self, identity: Identity, chain: str, action: str, resource: str, source: str, details: dict[str, JSON]
    ) -> None:
        if self._audit_log is not None:
            self._audit_log.record(AuditEvent(chain, identity.subject, action, resource, "ok", source, details))

    # The gate.

    async def _coverage(self) -> dict[str, tuple[int, int | None]]:
        """Advisories per ecosystem and their age (cached briefly: one query per many deploys)."""
        now = self._clock.monotonic()
        if self._coverage_cache is None or now - self._coverage_cache[0] > _COVERAGE_TTL_S:
            self._coverage_cache = (now, await self._store.advisory_coverage())
        return self._coverage_cache[1]

    def forget_coverage(self) -> None:
        """Drop the cached coverage (after an import or a sync)."""
        self._coverage_cache = None

    async def _advisories(self, packages: Mapping[str, Sequence[str]]) -> list[Advisory]:
        advisories: list[Advisory] = []
        for ecosystem, names in packages.items():
            for doc in await self._store.find_advisories(ecosystem, names):
                key = (str(doc.get("id")), str(doc.get("modified")))
                cached = self._parsed.get(key)
                if cached is None:
                    try:
                        cached = parse_osv(doc)
                    except AdvisoryError:
                        continue  # stored documents were parsed on import; a bad one is skipped
                    self._parsed[key] = cached
                    if len(self._parsed) > _PARSED_CACHE:
                        self._parsed.popitem(last=False)
                advisories.append(cached)
        return advisories

    async def check(self, identity: Identity, action: Action, accept_risk: str | None) -> GateResult:
        """Scan ``action``; raise DeployBlockedError unless it passes or ``accept_risk`` says why."""
        reason = _clean_reason(accept_risk) if accept_risk is not None else None
        policy = await self.policy(action.path.namespace)
        if self._settings.insecure_disable_gate:
            return GateResult(ScanReport(target=action.path.fqn), policy, "skipped")
        scan = ScanInput(
            code=action.exec.code,
            binary=action.exec.binary,
            family=action.exec.family,
            # Values sealed earlier were scanned when they were written; only new plaintext is scanned.
            parameters={kv.key: kv.value for kv in action.parameters if not isinstance(kv.value, Sealed)},
            annotations=kv_to_dict(action.annotations),
            target=action.path.fqn,
        )
        prepared = await self._off_loop(self.scanner.prepare, scan)
        prepared.findings.extend(
            advisory_coverage_findings(
                prepared.dependencies,
                await self._coverage(),
                self.scanner.rules,
                now_ms=self._clock.now_ms(),
                max_age_ms=self._settings.advisories_max_age_days * 86_400_000,
            )
        )
        advisories = await self._advisories(prepared.packages)
        report: ScanReport = await self._off_loop(self.scanner.complete, prepared, advisories)
        blocking = policy.blocking(report)
        warnings = len(report.matching(policy.warn))
        log.info(
            "deploy.scanned",
            namespace=action.path.namespace,
            action=action.path.key,
            version=action.version,
            findings=report.counts(),
            blocking=len(blocking),
            duration_ms=report.duration_ms,
        )
        located = tuple(_finding_id(f) for f in blocking)
        warned = tuple(_finding_id(f) for f in report.matching(policy.warn))

        async def audited(decision: str, reason: str | None = None) -> None:
            await self._audit.deploy_decided(
                DeployDecision(
                    action.path.namespace,
                    action.path.key,
                    action.version,
                    identity.subject,
                    decision,
                    located,
                    warned,
                    reason,
                    self._clock.now_ms(),
                )
            )

        async def decided(decision: str) -> None:
            await self._events.deploy_checked(
                DeployChecked(
                    action.path.namespace,
                    action.path.key,
                    action.version,
                    identity.subject,
                    decision,
                    report.counts(),
                    located,
                    self._clock.now_ms(),
                )
            )

        if not blocking:
            if warned:
                await audited("warned")
            await decided("passed")
            return GateResult(report, policy, "passed", warnings=warnings)
        if reason is None:
            log.warning(
                "deploy.blocked",
                namespace=action.path.namespace,
                action=action.path.key,
                version=action.version,
                subject=identity.subject,
                findings=list(located),
            )
            await audited("blocked")
            await decided("blocked")
            raise DeployBlockedError(_blocked_message(blocking, policy))
        accepted = RiskAccepted(
            namespace=action.path.namespace,
            action=action.path.key,
            version=action.version,
            subject=identity.subject,
            reason=reason,
            findings=located,
            when_ms=self._clock.now_ms(),
        )
        log.warning(
            "deploy.risk_accepted",
            namespace=accepted.namespace,
            action=accepted.action,
            version=accepted.version,
            subject=accepted.subject,
            reason=accepted.reason,
            findings=list(accepted.findings),
        )
        await self._audit.risk_accepted(accepted)
        await audited("accepted", reason)
        await decided("accepted")
        return GateResult(report, policy, "accepted", accepted, warnings)

    async def record(self, action: Action, result: GateResult) -> None:
        """Store the report of the version just written."""
        doc: dict[str, JSON] = {
            "namespace": action.path.namespace,
            "action": action.path.key,
            "version": action.version,
            "created": self._clock.now_ms(),
            "decision": result.decision,
            "policy": result.policy.to_json(),
            "blocking": [f.to_json() for f in result.policy.blocking(result.report)],
            "acceptedRisk": None
            if result.accepted is None
            else {
                "subject": result.accepted.subject,
                "reason": result.accepted.reason,
                "findings": list(result.accepted.findings),
                "when": result.accepted.when_ms,
            },
            "report": result.report.to_json(),
        }
        await self._store.put_scan_report(action.path.namespace, action.path.key, action.version, doc, doc["created"])

    async def report(
        self, identity: Identity, path: EntityPath, *, version: str | None, current_version: str | None
    ) -> dict[str, JSON]:
        """The stored report of ``version`` (default: ``current_version``) of the caller's action."""
        if path.namespace != identity.namespace:
            raise ForbiddenError()
        wanted = version or current_version
        if wanted is None:
            raise NotFoundError()
        doc = await self._store.get_scan_report(path.namespace, path.key, wanted)
        if doc is None:
            raise NotFoundError(f"No scan report for version {wanted} of this action.")
        return doc

    @staticmethod
    def to_sarif(doc: Mapping[str, Any]) -> dict[str, JSON]:
        """A stored report document as SARIF 2.1.0."""
        policy = ScanPolicy.from_json(doc.get("policy") or {})
        return to_sarif(ScanReport.from_json(doc.get("report") or {}), blocking=policy.block)

    # Advisories and monitoring.

    async def advisory_count(self, identity: Identity) -> int:
        """How many advisories are stored (platform administrators only)."""
        await self._require_admin(identity)
        return await self._store.count_advisories()

    async def import_advisories(self, identity: Identity, docs: Any, *, source: str = "") -> dict[str, JSON]:
        """Store a batch of OSV documents and rescan deployed actions against the new ones. Audited."""
        await self._require_admin(identity)
        if not isinstance(docs, list):
            raise BadRequestError("The request content was malformed:\n'advisories' must be an array of OSV objects")
        if len(docs) > MAX_IMPORT_BATCH:
            raise PayloadTooLargeError(f"At most {MAX_IMPORT_BATCH} advisories per request; send smaller batches.")
        parsed: list[Advisory] = []
        rejected: list[dict[str, JSON]] = []
        for index, doc in enumerate(docs):
            try:
                parsed.append(parse_osv(doc))
            except AdvisoryError as exc:
                ident = doc.get("id") if isinstance(doc, Mapping) else None
                rejected.append({"index": index, "id": ident if isinstance(ident, str) else None, "error": str(exc)})
        outcome = await self._store.upsert_advisories(
            [AdvisoryRecord(a.id, a.modified, dict(a.doc), a.packages) for a in parsed], self._clock.now_ms()
        )
        self.forget_coverage()
        changed_ids = set(outcome.created) | set(outcome.updated)
        changed = [a for a in parsed if a.id in changed_ids]
        events = await self.rescan(changed) if changed else []
        log.info(
            "advisories.imported",
            created=len(outcome.created),
            updated=len(outcome.updated),
            unchanged=len(outcome.unchanged),
            rejected=len(rejected),
            newly_vulnerable=len(events),
        )
        self._record(
            identity,
            PLATFORM_CHAIN,
            "advisories.imported",
            "advisories",
            source,
            {
                "created": sorted(outcome.created)[:MAX_LISTED_FINDINGS],
                "updated": sorted(outcome.updated)[:MAX_LISTED_FINDINGS],
                "counts": {"created": len(outcome.created), "updated": len(outcome.updated), "rejected": len(rejected)},
            },
        )
        return {
            "created": len(outcome.created),
            "updated": len(outcome.updated),
            "unchanged": len(outcome.unchanged),
            "rejected": rejected,
            "newlyVulnerable": [
                {"namespace": e.namespace, "action": e.action, "version": e.version, "advisories": list(e.advisories)}
                for e in events
            ],
        }

    async def rescan(self, advisories: Iterable[Advisory]) -> list[ActionVulnerable]:
        """Match every deployed version's stored inventory against ``advisories``."""
        fresh = list(advisories)
        events: list[ActionVulnerable] = []
        after: tuple[str, str] | None = None
        while True:
            page = await self._store.list_deployed_action_versions(after=after, limit=_RESCAN_PAGE)
            if not page:
                return events
            after = (page[-1].namespace, page[-1].name)
            for ref in page:
                doc = await self._store.get_scan_report(ref.namespace, ref.name, ref.version)
                if doc is None or not isinstance(doc.get("report"), Mapping):
                    continue  # sequences, and versions deployed before the gate existed
                report = ScanReport.from_json(doc["report"])
                if not report.dependencies:
                    continue
                known = report.advisory_ids()
                found = [f for f in self.scanner.recheck(report.dependencies, fresh) if f.advisory is not None]
                new = [f for f in found if f.advisory is not None and f.advisory.id not in known]
                if not new:
                    continue
                now = self._clock.now_ms()
                updated = {**doc, "report": report.with_findings(new).to_json(), "rescanned": now}
                await self._store.put_scan_report(ref.namespace, ref.name, ref.version, updated, now)
                event = ActionVulnerable(
                    ref.namespace,
                    ref.name,
                    ref.version,
                    tuple(sorted({f.advisory.id for f in new if f.advisory is not None})),
                    now,
                )
                log.warning(
                    "security.action_vulnerable",
                    namespace=event.namespace,
                    action=event.action,
                    version=event.version,
                    advisories=list(event.advisories),
                )
                await self._events.action_vulnerable(event)
                events.append(event)
