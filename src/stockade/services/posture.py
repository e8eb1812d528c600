"""A namespace's security posture: each action's risk facts, the namespace's settings, and what
to fix first.

Nothing here decides who may see what: every fact is read through the service (and so the
permission check) the API uses for it. A fact the caller may not read is reported as hidden,
never computed some other way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final, final

from stockade.domain import JSON, EntityPath, Identity, is_truthy, parse_policy
from stockade.errors import ForbiddenError, NotFoundError, PlatformError
from stockade.observability.events import EventType
from stockade.security.authz import Permission
from stockade.services.access import AccessService
from stockade.services.actions import ActionService
from stockade.services.alerts import AlertService
from stockade.services.events import EventPipeline
from stockade.services.scans import DeployGate
from stockade.services.secrets import parse_secret_refs
from stockade.store import EventQuery

__all__ = ["ActionPosture", "NamespacePosture", "PostureService", "Risk"]

MAX_ACTIONS: Final = 1000
_DAY_MS: Final = 86_400_000
# What to fix first: the severity rank of each risk (higher first).
RISK_RANK: Final = {"critical": 4, "high": 3, "medium": 2, "low": 1}
RISK_IDS: Final = frozenset(
    {
        "tamper",
        "web_without_auth",
        "accepted_risk",
        "unrestricted_egress",
        "secrets_and_egress",
        "web_without_schema",
        "token_without_grants",
        "invalid_policy",
        "unprotected_namespace",
        "old_key",
    }
)


@final
@dataclass(frozen=True, slots=True)
class RiskCatalogue:
    """The posture's risks as data (policies/posture.json): severity, text and fix of each."""

    key_age_warn_days: int
    risks: dict[str, dict[str, str]]


def load_risk_catalogue(text: str | None = None) -> RiskCatalogue:
    """Parse and validate the packaged catalogue (or ``text``): every risk the code reports, no other."""
    raw = text if text is not None else (resources.files("stockade.services") / "policies" / "posture.json").read_text()
    doc = json.loads(raw)
    risks = doc.get("risks")
    if not isinstance(risks, dict) or set(risks) != RISK_IDS:
        raise ValueError(f"posture.json must describe exactly the risks {sorted(RISK_IDS)}")
    for risk_id, entry in risks.items():
        if entry.get("severity") not in RISK_RANK:
            raise ValueError(f"posture.json: {risk_id!r} has no valid severity")
        if not all(isinstance(entry.get(k), str) and entry[k] for k in ("text", "fix", "reason")):
            raise ValueError(f"posture.json: {risk_id!r} needs text, fix and reason")
    days = doc.get("key_age_warn_days")
    if not isinstance(days, int) or days < 1:
        raise ValueError("posture.json: key_age_warn_days must be a positive integer")
    return RiskCatalogue(days, {k: {f: str(v) for f, v in e.items()} for k, e in risks.items()})


CATALOGUE: Final = load_risk_catalogue()


def _risk(risk_id: str, action: str, **facts: object) -> Risk:
    """A risk from the catalogue; the facts fill its placeholders (they are values, never templates)."""
    entry = CATALOGUE.risks[risk_id]
    values = {"action": action, **facts}
    return Risk(entry["severity"], entry["text"].format(**values), action, entry["fix"].format(**values))


@final
@dataclass(frozen=True, slots=True)
class Risk:
    """One thing to fix: how bad, what, where the fix is, and how."""

    severity: str  # critical, high, medium, low
    text: str
    action: str  # the action's key ("" for the namespace)
    fix: str  # the command or change that fixes it


@final
@dataclass(frozen=True, slots=True)
class ActionPosture:
    """The risk facts of one action."""

    key: str  # "name" or "pkg/name"
    kind: str
    version: str
    web: bool
    web_requires_auth: bool
    egress: tuple[str, ...]
    secrets: tuple[str, ...]
    scoped_token: bool
    invoke_grants: tuple[str, ...]
    input_schema: bool
    reuse: str
    gate: str  # passed, accepted, skipped, none, hidden
    accepted_risk: str
    accepted_findings: tuple[str, ...]
    tamper_events: int | None  # None: hidden from this caller
    policy_error: str
    risks: tuple[Risk, ...] = ()


@final
@dataclass(frozen=True, slots=True)
class KeyAge:
    """An API key of the namespace and its age."""

    uuid: str
    subject: str
    age_days: int
    revoked: bool


@final
@dataclass(frozen=True, slots=True)
class NamespacePosture:
    """Everything the posture page shows."""

    namespace: str
    protected: bool
    keys: tuple[KeyAge, ...] | None  # None: hidden (needs the roles permission)
    scan_block: tuple[str, ...]
    scan_warn: tuple[str, ...]
    actions: tuple[ActionPosture, ...]
    fix_first: tuple[Risk, ...]
    truncated: bool = False
    hidden: tuple[str, ...] = field(default_factory=tuple)


def _reuse_mode(annotations: dict[str, Any]) -> str:
    if is_truthy(annotations.get("sandbox-use-once")):
        return "fresh sandbox per run"
    if is_truthy(annotations.get("sandbox-wipe-tmp")):
        return "warm reuse, /tmp wiped per run"
    return "warm reuse (same action version only)"


def _annotations(summary: dict[str, JSON]) -> dict[str, Any]:
    raw = summary.get("annotations")
    out: dict[str, Any] = {}
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and isinstance(item.get("key"), str):
                out[str(item["key"])] = item.get("value")
    return out


class PostureService:
    """Builds a namespace's posture from the services that own each fact."""

    def __init__(
        self,
        access: AccessService,
        actions: ActionService,
        scans: DeployGate,
        alerts: AlertService,
        events: EventPipeline,
        now_ms: Callable[[], int],
    ) -> None:
        self._access = access
        self._actions = actions
        self._scans = scans
        self._alerts = alerts
        self._events = events
        self._now_ms = now_ms

    async def of(self, identity: Identity, namespace: str) -> NamespacePosture:
        """The posture of ``namespace`` as ``identity`` may see it (403 without READ)."""
        policy = await self._access.policy(identity, namespace)  # READ, 403 otherwise
        hidden: list[str] = []
        summaries: list[dict[str, JSON]] = []
        while len(summaries) < MAX_ACTIONS:
            page = await self._actions.list(identity, namespace, None, skip=len(summaries), limit=200)
            summaries.extend(page)
            if len(page) < 200:
                break
        keys = await self._keys(identity, namespace, hidden)
        tamper = await self._tamper_counts(identity, namespace, hidden)
        may_read_reports = namespace == identity.namespace and await self._access.allows(
            identity, namespace, Permission.READ_CODE
        )
        if not may_read_reports:
            hidden.append("deploy-gate results (need read_code in your own namespace)")
        actions = [await self._action(identity, namespace, s, tamper, may_read_reports) for s in summaries]
        scan = await self._scans.policy(namespace)
        ns_risks = self._namespace_risks(bool(policy.get("protected")), keys)
        fix_first = sorted(
            [*ns_risks, *(r for a in actions for r in a.risks)],
            key=lambda r: -RISK_RANK.get(r.severity, 0),
        )
        return NamespacePosture(
            namespace=namespace,
            protected=bool(policy.get("protected")),
            keys=keys,
            scan_block=tuple(sorted(s.value for s in scan.block)),
            scan_warn=tuple(sorted(s.value for s in scan.warn)),
            actions=tuple(actions),
            fix_first=tuple(fix_first),
            truncated=len(summaries) >= MAX_ACTIONS,
            hidden=tuple(hidden),
        )

    async def _keys(self, identity: Identity, namespace: str, hidden: list[str]) -> tuple[KeyAge, ...] | None:
        try:
            listed = await self._access.list_keys(identity, namespace)
        except ForbiddenError:
            hidden.append("key ages (need the roles permission)")
            return None
        now = self._now_ms()
        return tuple(
            KeyAge(
                uuid=str(k["uuid"]),
                subject=str(k["subject"]),
                age_days=max(0, (now - int(str(k["created"]))) // _DAY_MS),
                revoked=k.get("revoked") is not None,
            )
            for k in listed
        )

    async def _tamper_counts(self, identity: Identity, namespace: str, hidden: list[str]) -> dict[str, int] | None:
        try:
            await self._alerts.require(identity, namespace, write=False)
        except ForbiddenError:
            hidden.append("tamper events (need the monitor permission)")
            return None
        since = self._now_ms() - 7 * _DAY_MS
        found = await self._events.list(
            EventQuery(
                namespaces=(namespace,),
                types=(EventType.SANDBOX_TAMPER.value, EventType.SANDBOX_STRAY_PROCESS.value),
                since_ms=since,
                limit=200,
            )
        )
        counts: dict[str, int] = {}
        for event in found:
            counts[event.action] = counts.get(event.action, 0) + 1
        return counts

    async def _action(
        self,
        identity: Identity,
        namespace: str,
        summary: dict[str, JSON],
        tamper: dict[str, int] | None,
        may_read_reports: bool,
    ) -> ActionPosture:
        path_ns = str(summary.get("namespace", namespace))
        package = path_ns.split("/", 1)[1] if "/" in path_ns else ""
        key = f"{package}/{summary['name']}" if package else str(summary["name"])
        annotations = _annotations(summary)
        policy_error = ""
        try:
            policy = parse_policy(annotations.get("policy"), namespace)
        except PlatformError as exc:
            policy, policy_error = parse_policy(None, namespace), exc.message
        secrets: list[str] = []
        if annotations.get("secrets") is not None:
            try:
                secrets = sorted(set(parse_secret_refs(annotations["secrets"]).values()))
            except PlatformError as exc:
                policy_error = policy_error or exc.message
        web = is_truthy(annotations.get("web-export"))
        gate, accepted = "hidden", ""
        findings: tuple[str, ...] = ()
        if may_read_reports:
            gate, accepted, findings = await self._gate(identity, namespace, key, str(summary.get("version", "")))
        facts = ActionPosture(
            key=key,
            kind=str(annotations.get("exec", "")),
            version=str(summary.get("version", "")),
            web=web,
            web_requires_auth=is_truthy(annotations.get("require-whisk-auth")),
            egress=policy.egress,
            secrets=tuple(secrets),
            scoped_token=is_truthy(annotations.get("provide-api-key")),
            invoke_grants=policy.invoke,
            input_schema=annotations.get("input-schema") is not None,
            reuse=_reuse_mode(annotations),
            gate=gate,
            accepted_risk=accepted,
            accepted_findings=findings,
            tamper_events=None if tamper is None else tamper.get(key, 0),
            policy_error=policy_error,
        )
        return _with_risks(facts)

    async def _gate(
        self, identity: Identity, namespace: str, key: str, version: str
    ) -> tuple[str, str, tuple[str, ...]]:
        try:
            pkg, _, name = key.rpartition("/")
            path = EntityPath(namespace, name, pkg or None)
            doc = await self._scans.report(identity, path, version=None, current_version=version)
        except NotFoundError:
            return "none", "", ()
        except ForbiddenError:
            return "hidden", "", ()
        accepted = doc.get("acceptedRisk")
        if isinstance(accepted, dict):
            raw = accepted.get("findings")
            findings = tuple(str(f) for f in raw) if isinstance(raw, list) else ()
            return str(doc.get("decision", "")), str(accepted.get("reason", "")), findings
        return str(doc.get("decision", "")), "", ()

    @staticmethod
    def _namespace_risks(protected: bool, keys: tuple[KeyAge, ...] | None) -> list[Risk]:
        risks = [] if protected else [_risk("unprotected_namespace", "")]
        risks.extend(
            _risk("old_key", "", uuid=key.uuid, subject=key.subject, days=key.age_days)
            for key in keys or ()
            if not key.revoked and key.age_days >= CATALOGUE.key_age_warn_days
        )
        return risks


def _with_risks(facts: ActionPosture) -> ActionPosture:
    key = facts.key
    risks: list[Risk] = []
    if facts.tamper_events:
        risks.append(_risk("tamper", key, count=facts.tamper_events))
    if facts.web and not facts.web_requires_auth:
        risks.append(_risk("web_without_auth", key))
    if facts.accepted_risk:
        risks.append(_risk("accepted_risk", key, reason=facts.accepted_risk))
    if any(t in ("*", "*:*", "0.0.0.0/0", "::/0") or t.startswith("*") for t in facts.egress):
        risks.append(_risk("unrestricted_egress", key))
    if facts.secrets and facts.egress:
        risks.append(_risk("secrets_and_egress", key))
    if facts.web and not facts.input_schema:
        risks.append(_risk("web_without_schema", key))
    if facts.scoped_token and not facts.invoke_grants:
        risks.append(_risk("token_without_grants", key))
    if facts.policy_error:
        risks.append(_risk("invalid_policy", key, error=facts.policy_error))
    return ActionPosture(**{**_fields(facts), "risks": tuple(risks)})


def _fields(facts: ActionPosture) -> dict[str, Any]:
    return {name: getattr(facts, name) for name in ActionPosture.__dataclass_fields__}
