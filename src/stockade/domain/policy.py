"""Per-action policy: what an action may do, declared in its ``policy`` annotation.

``{"invoke": ["/ns/pkg/other", "/ns/tools/*"], "egress": ["api.example.com:443"]}``. Default:
nothing. Patterns are FQNs with an optional trailing ``*`` on the last segment; they never
reach into another namespace unless written out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from stockade.domain.entities import JSON
from stockade.errors import BadRequestError

__all__ = ["POLICY_ANNOTATION", "ActionPolicy", "fqn_matches", "lint_policy", "parse_policy"]

POLICY_ANNOTATION = "policy"
_KNOWN = frozenset({"invoke", "egress", "secrets"})


@final
@dataclass(frozen=True, slots=True)
class ActionPolicy:
    """An action's grants; empty tuples mean nothing is allowed."""

    invoke: tuple[str, ...] = ()
    egress: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()

    def may_invoke(self, fqn: str) -> bool:
        """True when ``fqn`` matches an invoke grant."""
        return any(fqn_matches(pattern, fqn) for pattern in self.invoke)


def fqn_matches(pattern: str, fqn: str) -> bool:
    """``/ns/pkg/act`` matches itself; ``/ns/pkg/*`` matches the package's actions; ``*`` alone matches all."""
    if pattern == "*":
        return True
    if pattern.endswith("/*"):
        prefix = pattern[:-1]
        return fqn.startswith(prefix) and "/" not in fqn[len(prefix) :]
    return pattern == fqn


def _strings(raw: JSON, key: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        raise BadRequestError(f"The annotation 'policy' must give '{key}' as a list of strings.")
    return tuple(raw)


def parse_policy(raw: JSON, namespace: str) -> ActionPolicy:
    """Validate a ``policy`` annotation; ``_`` in invoke patterns means the action's namespace."""
    if raw is None:
        return ActionPolicy()
    if not isinstance(raw, dict):
        raise BadRequestError("The annotation 'policy' must be an object with 'invoke', 'egress' and 'secrets' lists.")
    unknown = set(raw) - _KNOWN
    if unknown:
        raise BadRequestError(f"The annotation 'policy' has unknown keys: {', '.join(sorted(unknown))}.")
    invoke = []
    for pattern in _strings(raw.get("invoke"), "invoke"):
        if pattern != "*" and not pattern.startswith("/"):
            raise BadRequestError(f"invoke grant '{pattern}' must be a fully qualified name like /ns/pkg/action.")
        invoke.append(pattern.replace("/_/", f"/{namespace}/", 1) if pattern.startswith("/_/") else pattern)
    return ActionPolicy(tuple(invoke), _strings(raw.get("egress"), "egress"), _strings(raw.get("secrets"), "secrets"))


def lint_policy(policy: ActionPolicy, namespace: str, *, provides_api_key: bool) -> list[str]:
    """Findings about broad or useless grants (for ``stockade policy lint``)."""
    findings = []
    for pattern in policy.invoke:
        if pattern == "*":
            findings.append("invoke grant '*' lets the action invoke every action it can see")
        elif pattern.endswith("/*") and pattern.count("/") <= 2:
            findings.append(f"invoke grant '{pattern}' covers a whole namespace")
        elif not pattern.startswith(f"/{namespace}/"):
            findings.append(f"invoke grant '{pattern}' reaches outside the namespace '{namespace}'")
    findings.extend(
        f"egress grant '{target}' is unrestricted"
        for target in policy.egress
        if target in ("*", "*:*", "0.0.0.0/0", "::/0") or target.startswith("*")
    )
    findings.extend(f"secrets grant '{name}' is a wildcard" for name in policy.secrets if "*" in name)
    if provides_api_key and not policy.invoke:
        findings.append("provide-api-key is set but the policy grants no invoke: the action's token can do nothing")
    return findings
