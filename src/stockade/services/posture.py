"""A namespace's security posture: each action's risk facts, the namespace's settings, and what
to fix first.

Nothing here decides who may see what: every fact is read through the service (and so the
permission check) the API uses for it. A fact the caller may not read is reported as hidden,
never computed some other way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
KEY_AGE_WARN_DAYS: Final = 90
_DAY_MS: Final = 86_400_000
# What to fix first: severity rank of each risk (higher first). Policy as data, one place.
RISK_RANK: Final = {"critical": 4, "high": 3, "medium": 2, "low": 1}


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
        now_ms: Any,
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
        now = int(self._now_ms())
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
        since = int(self._now_ms()) - 7 * _DAY_MS
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
        risks = []
        if not protected:
            risks.append(
                Risk(
                    "low",
                    "The namespace is not protected: any developer can change production.",
                    "",
                    "stockade key create ci-bot --role deployer && stockade policy protect on",
                )
            )
        risks.extend(
            Risk(
                "medium",
                f"API key {key.uuid} ({key.subject}) is {key.age_days} days old.",
                "",
                f"stockade admin key-rotate {key.uuid}",
            )
            for key in keys or ()
            if not key.revoked and key.age_days >= KEY_AGE_WARN_DAYS
        )
        return risks


def _with_risks(facts: ActionPosture) -> ActionPosture:
    risks: list[Risk] = []
    key = facts.key
    if facts.tamper_events:
        risks.append(
            Risk(
                "critical",
                f"{facts.tamper_events} sandbox tamper event(s) in the last 7 days.",
                key,
                "Inspect the events, redeploy the action from source, rotate its secrets.",
            )
        )
    if facts.web and not facts.web_requires_auth:
        risks.append(
            Risk(
                "high",
                "Web-exported without authentication: anyone can call it.",
                key,
                f"stockade action update {key} -a require-whisk-auth true",
            )
        )
    if facts.accepted_risk:
        risks.append(
            Risk(
                "high",
                f"Deployed with accepted risk: {facts.accepted_risk}",
                key,
                "Fix the findings and redeploy without --accept-risk.",
            )
        )
    if any(t in ("*", "*:*", "0.0.0.0/0", "::/0") or t.startswith("*") for t in facts.egress):
        risks.append(
            Risk(
                "high",
                "Unrestricted egress grant.",
                key,
                f'stockade action update {key} -a policy \'{{"egress": ["host.example:443"]}}\'',
            )
        )
    if facts.secrets and facts.egress:
        risks.append(
            Risk(
                "medium",
                "Holds secrets and may reach the network.",
                key,
                "Narrow the egress grants to the hosts the secrets are for.",
            )
        )
    if facts.web and not facts.input_schema:
        risks.append(
            Risk(
                "medium",
                "Web-exported without an input schema.",
                key,
                f"stockade action update {key} -a input-schema @schema.json",
            )
        )
    if facts.scoped_token and not facts.invoke_grants:
        risks.append(
            Risk(
                "low",
                "Receives a token but its policy grants no invoke.",
                key,
                f"stockade action update {key} -a provide-api-key false",
            )
        )
    if facts.policy_error:
        risks.append(Risk("medium", f"Invalid policy: {facts.policy_error}", key, "Fix the policy annotation."))
    return ActionPosture(**{**_fields(facts), "risks": tuple(risks)})


def _fields(facts: ActionPosture) -> dict[str, Any]:
    return {name: getattr(facts, name) for name in ActionPosture.__dataclass_fields__}
