"""Alerts: rules over security events and anomalies, deduplicated, and signed for webhooks.

A rule (data: ``data/default_alert_rules.json`` for the platform, or per namespace through the
API) matches event types (shell-style globs), a minimum severity and optional tags. It fires
when ``threshold`` matching events fall within ``window_s`` for one key (by default the event's
namespace, action and type), then stays quiet for that key for ``dedup_s``; events in the quiet
period are counted into the next alert. Platform rules see every namespace; a namespace's rules
see only its events (the platform's administrative namespace's rules see all).

Webhook bodies are signed like Stripe's and GitHub's: ``Stockade-Signature: t=<unix s>,v1=<hex>``
where ``v1 = HMAC-SHA256(secret, "<t>." + body)``; receivers check the signature in constant
time and refuse timestamps older than their tolerance (replays). ``verify_signature`` is the
reference implementation (docs/design/monitoring.md has a standalone recipe).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import re
import secrets
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final, final

from stockade.domain import JSON
from stockade.errors import BadRequestError
from stockade.observability.events import SecurityEvent, Severity

__all__ = [
    "SIGNATURE_HEADER",
    "Alert",
    "AlertEngine",
    "AlertRule",
    "AlertRulesError",
    "load_alert_rules",
    "parse_rule",
    "sign_payload",
    "verify_signature",
]

SIGNATURE_HEADER: Final = "Stockade-Signature"
_GROUP_FIELDS: Final = ("namespace", "action", "type", "subject")
_DEFAULT_GROUP: Final = ("namespace", "action", "type")
_RULE_ID = re.compile(r"\A[a-z0-9][a-z0-9-]{0,47}\Z")
_TYPE_GLOB = re.compile(r"\A[a-z_.*]{1,64}\Z")
_MAX_WINDOWS: Final = 50_000
_KNOWN_FIELDS: Final = frozenset(
    {"id", "comment", "types", "min_severity", "tags", "threshold", "window_s", "dedup_s", "group_by", "severity"}
)


def _bad(message: str) -> BadRequestError:
    return BadRequestError(f"The request content was malformed:\n{message}")


@final
@dataclass(frozen=True, slots=True)
class AlertRule:
    """When events become an alert, and how loud it is."""

    id: str
    types: tuple[str, ...]
    comment: str = ""
    min_severity: Severity = Severity.INFO
    tags: tuple[str, ...] = ()
    threshold: int = 1
    window_s: int = 60
    dedup_s: int = 300
    group_by: tuple[str, ...] = _DEFAULT_GROUP
    severity: Severity | None = None  # None: the triggering event's severity
    namespace: str = ""  # "" for a platform rule
    _patterns: tuple[re.Pattern[str], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_patterns", tuple(re.compile(fnmatch.translate(t)) for t in self.types))

    def matches(self, event: SecurityEvent) -> bool:
        """Type, severity and tags match (the namespace scope is the engine's business)."""
        if event.severity < self.min_severity:
            return False
        name = event.type.value
        if not any(p.match(name) for p in self._patterns):
            return False
        if self.tags:
            tags = event.details.get("tags")
            if not isinstance(tags, list) or not set(self.tags).intersection(t for t in tags if isinstance(t, str)):
                return False
        return True

    def key_of(self, event: SecurityEvent) -> str:
        """The deduplication key: the ``group_by`` fields of the event."""
        values = {
            "namespace": event.namespace,
            "action": event.action,
            "type": event.type.value,
            "subject": event.subject,
        }
        return "|".join(values[f] for f in self.group_by)

    def to_json(self) -> dict[str, JSON]:
        """The stored and API form."""
        doc: dict[str, JSON] = {
            "id": self.id,
            "comment": self.comment,
            "types": list(self.types),
            "min_severity": self.min_severity.label,
            "tags": list(self.tags),
            "threshold": self.threshold,
            "window_s": self.window_s,
            "dedup_s": self.dedup_s,
            "group_by": list(self.group_by),
            "severity": self.severity.label if self.severity is not None else None,
        }
        if self.namespace:
            doc["namespace"] = self.namespace
        return doc


def _int_in(doc: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = doc.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(f"'{name}' must be an integer from {low} to {high}")
    return value


def _strings(doc: Mapping[str, Any], name: str) -> list[str]:
    value = doc.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"'{name}' must be an array of strings")
    return value


def parse_rule(doc: Any, namespace: str = "") -> AlertRule:
    """Validate a rule document (API body or data file entry); BadRequestError names the problem."""
    if not isinstance(doc, Mapping):
        raise _bad("a rule must be an object")
    unknown = set(doc) - _KNOWN_FIELDS - {"namespace"}
    if unknown:
        raise _bad(f"unknown rule fields: {', '.join(sorted(unknown))}")
    ident = doc.get("id")
    if not isinstance(ident, str) or not _RULE_ID.match(ident):
        raise _bad("'id' must be 1-48 characters a-z, 0-9 and '-'")
    types = _strings(doc, "types")
    if not types or len(types) > 20 or not all(_TYPE_GLOB.match(t) for t in types):
        raise _bad("'types' must list 1-20 event types or globs such as 'sandbox.*'")
    tags = _strings(doc, "tags")
    group_by = _strings(doc, "group_by") or list(_DEFAULT_GROUP)
    if not set(group_by) <= set(_GROUP_FIELDS):
        raise _bad(f"'group_by' may use {', '.join(_GROUP_FIELDS)}")
    comment = doc.get("comment", "")
    if not isinstance(comment, str) or len(comment) > 500:
        raise _bad("'comment' must be a string of at most 500 characters")
    try:
        min_severity = Severity.parse(doc.get("min_severity", "info"))
        raw_severity = doc.get("severity")
        severity = Severity.parse(raw_severity) if raw_severity is not None else None
    except ValueError as exc:
        raise _bad(str(exc)) from None
    return AlertRule(
        id=ident,
        types=tuple(types),
        comment=comment,
        min_severity=min_severity,
        tags=tuple(tags[:10]),
        threshold=_int_in(doc, "threshold", 1, 1, 10_000),
        window_s=_int_in(doc, "window_s", 60, 1, 86_400),
        dedup_s=_int_in(doc, "dedup_s", 300, 0, 86_400),
        group_by=tuple(group_by),
        severity=severity,
        namespace=namespace,
    )


class AlertRulesError(ValueError):
    """An alert rules file that cannot be used (the message says which rule and why)."""


def load_alert_rules(path: str | Path | None = None) -> list[AlertRule]:
    """The shipped platform rules, or those of ``path`` (which replace them); AlertRulesError if invalid."""
    try:
        if path:
            text = Path(path).read_text()
        else:
            text = (resources.files("stockade.observability") / "data" / "default_alert_rules.json").read_text()
        doc = json.loads(text)
    except (OSError, ValueError) as exc:
        raise AlertRulesError(f"cannot read alert rules {path or '(defaults)'}: {exc}") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("rules"), list):
        raise AlertRulesError("an alert rules file is an object with a 'rules' array")
    rules = []
    for entry in doc["rules"]:
        try:
            rules.append(parse_rule(entry))
        except BadRequestError as exc:
            raise AlertRulesError(
                f"alert rule {entry.get('id') if isinstance(entry, Mapping) else '?'}: {exc.message}"
            ) from None
    if len({r.id for r in rules}) != len(rules):
        raise AlertRulesError("alert rule ids must be unique")
    return rules


@final
@dataclass(frozen=True, slots=True)
class Alert:
    """A rule fired: which rule, about what, how bad, and how many events it covers."""

    alert_id: str
    namespace: str  # whose alert it is (the event's namespace, or the platform's for platform events)
    rule_id: str
    severity: Severity
    type: str  # the triggering event's type
    action: str
    key: str
    title: str
    count: int  # events covered (threshold + those suppressed since the last alert)
    first_ms: int
    last_ms: int
    event_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, JSON]:
        """The API, stored and webhook form."""
        return {
            "id": self.alert_id,
            "namespace": self.namespace,
            "rule": self.rule_id,
            "severity": self.severity.label,
            "type": self.type,
            "action": self.action,
            "key": self.key,
            "title": self.title,
            "count": self.count,
            "first": self.first_ms,
            "last": self.last_ms,
            "events": list(self.event_ids),
            "tags": list(self.tags),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Alert:
        """The inverse of ``to_json``."""
        return cls(
            alert_id=str(doc["id"]),
            namespace=str(doc["namespace"]),
            rule_id=str(doc["rule"]),
            severity=Severity.parse(doc["severity"]),
            type=str(doc["type"]),
            action=str(doc.get("action") or ""),
            key=str(doc.get("key") or ""),
            title=str(doc.get("title") or ""),
            count=int(doc.get("count") or 0),
            first_ms=int(doc.get("first") or 0),
            last_ms=int(doc.get("last") or 0),
            event_ids=tuple(str(e) for e in doc.get("events") or ()),
            tags=tuple(str(t) for t in doc.get("tags") or ()),
        )


@dataclass(slots=True)
class _Window:
    times: deque[int]
    ids: deque[str]
    last_fired_ms: int | None = None
    suppressed: int = 0
    first_ms: int = 0


@dataclass(slots=True)
class AlertEngine:
    """Evaluates rules on each event; keeps one small window per (rule, key)."""

    admin_namespace: str
    platform_rules: list[AlertRule] = field(default_factory=list)
    namespace_rules: dict[str, list[AlertRule]] = field(default_factory=dict)
    _windows: OrderedDict[tuple[str, str, str], _Window] = field(default_factory=OrderedDict)

    def set_namespace_rules(self, rules: Iterable[AlertRule]) -> None:
        """Replace every namespace's rules (reloaded from the store)."""
        by_ns: dict[str, list[AlertRule]] = {}
        for rule in rules:
            by_ns.setdefault(rule.namespace, []).append(rule)
        self.namespace_rules = by_ns

    def _rules_for(self, event: SecurityEvent) -> Iterable[AlertRule]:
        yield from self.platform_rules
        if event.namespace and event.namespace != self.admin_namespace:
            yield from self.namespace_rules.get(event.namespace, ())
        yield from self.namespace_rules.get(self.admin_namespace, ())

    def evaluate(self, event: SecurityEvent) -> list[Alert]:
        """The alerts ``event`` raises (usually none)."""
        raised: list[Alert] = []
        for rule in self._rules_for(event):
            if not rule.matches(event):
                continue
            key = rule.key_of(event)
            slot = (rule.namespace, rule.id, key)
            window = self._windows.get(slot)
            if window is None:
                window = _Window(deque(maxlen=rule.threshold), deque(maxlen=5), first_ms=event.time_ms)
                self._windows[slot] = window
                if len(self._windows) > _MAX_WINDOWS:
                    self._windows.popitem(last=False)
            else:
                self._windows.move_to_end(slot)
            now = event.time_ms
            if window.last_fired_ms is not None and now - window.last_fired_ms < rule.dedup_s * 1000:
                window.suppressed += 1
                window.ids.append(event.event_id)
                continue
            window.times.append(now)
            window.ids.append(event.event_id)
            if len(window.times) < rule.threshold or now - window.times[0] > rule.window_s * 1000:
                continue
            raised.append(self._fire(rule, event, key, window))
        return raised

    def _fire(self, rule: AlertRule, event: SecurityEvent, key: str, window: _Window) -> Alert:
        count = len(window.times) + window.suppressed
        first = min(window.times[0], window.first_ms) if window.suppressed else window.times[0]
        tags = event.details.get("tags")
        alert = Alert(
            alert_id=secrets.token_hex(16),
            namespace=event.namespace or self.admin_namespace,
            rule_id=rule.id,
            severity=rule.severity if rule.severity is not None else event.severity,
            type=event.type.value,
            action=event.action,
            key=key,
            title=_title(rule, event, count),
            count=count,
            first_ms=first,
            last_ms=event.time_ms,
            event_ids=tuple(window.ids),
            tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
        )
        window.last_fired_ms = event.time_ms
        window.times.clear()
        window.ids.clear()
        window.suppressed = 0
        window.first_ms = event.time_ms
        return alert

    def statistics(self) -> dict[str, int]:
        """Rules and open windows."""
        return {
            "platform_rules": len(self.platform_rules),
            "namespace_rules": sum(len(v) for v in self.namespace_rules.values()),
            "windows": len(self._windows),
        }


def _title(rule: AlertRule, event: SecurityEvent, count: int) -> str:
    where = (
        f"/{event.namespace}/{event.action}"
        if event.action
        else (f"/{event.namespace}" if event.namespace else "platform")
    )
    times = f" ({count} events)" if count > 1 else ""
    return f"{event.type.value} at {where}{times}: rule {rule.id}"


def sign_payload(secret: bytes, body: bytes, timestamp_s: int) -> str:
    """The ``Stockade-Signature`` header value for ``body`` sent at ``timestamp_s``."""
    digest = hmac.new(secret, f"{timestamp_s}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp_s},v1={digest}"


def verify_signature(secret: bytes, header: str, body: bytes, now_s: int, *, tolerance_s: int = 300) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and is at most ``tolerance_s`` old."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(name, []).append(value)
    stamps = parts.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs(now_s - timestamp) > tolerance_s:
        return False
    expected = sign_payload(secret, body, timestamp).split("v1=", 1)[1]
    # Invariant: every candidate is compared in constant time; any match is enough (secret rollover).
    return any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", []))
