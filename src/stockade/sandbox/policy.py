"""Sandbox policies are data: seccomp deny lists and Landlock rules per runtime, read from policies/*.json.

Every entry carries its reason, and loading validates the whole file: unknown keys, missing reasons,
unknown errno or access names and malformed numbers are errors, never ignored. (Syscall names are
checked against libseccomp when the filter is compiled, see ``seccomp.compile_policy``.)
"""

from __future__ import annotations

import errno as errno_module
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, final

from stockade.sandbox.spec import RuntimeFamily

__all__ = [
    "POLICY_DIR",
    "ArgCondition",
    "LandlockPathRule",
    "LandlockPolicy",
    "LandlockPortRule",
    "PolicyError",
    "SeccompPolicy",
    "SeccompRule",
    "load_landlock_policy",
    "load_seccomp_policy",
]

POLICY_DIR = Path(__file__).resolve().parent / "policies"

# Only these two: with plain eq/ne on an int argument a caller sets the high 32 bits, which the kernel
# drops but the filter compares. masked_eq with mask 0xFFFFFFFF compares only what the kernel uses, and
# "gt 0" (unsigned, all 64 bits) over-approximates "non-zero" safely.
ConditionOp = Literal["masked_eq", "gt"]
PathAccess = Literal["read", "write", "execute"]
PortAccess = Literal["bind", "connect"]
PortWhen = Literal["always", "egress"]
Scope = Literal["abstract_unix_socket", "signal"]

_SYSCALL_NAME = re.compile(r"\A[a-z][a-z0-9_]*\Z")
_PLACEHOLDERS = frozenset({"{node}", "{ld_so}"})


class PolicyError(ValueError):
    """A policy file is malformed; the sandbox refuses to start rather than run with a partial policy."""


@final
@dataclass(frozen=True, slots=True)
class ArgCondition:
    """A condition on one syscall argument: ``arg & mask == value`` (masked_eq) or ``arg > value`` (gt, unsigned)."""

    arg: int
    op: ConditionOp
    value: int
    mask: int = 0


@final
@dataclass(frozen=True, slots=True)
class SeccompRule:
    """Deny ``syscall`` with ``errno`` when every condition holds (always, without conditions)."""

    syscall: str
    errno: int
    reason: str
    when: tuple[ArgCondition, ...] = ()


@final
@dataclass(frozen=True, slots=True)
class SeccompPolicy:
    """A deny list; every syscall not listed is allowed."""

    name: str
    rules: tuple[SeccompRule, ...]


@final
@dataclass(frozen=True, slots=True)
class LandlockPathRule:
    """Rights granted beneath ``path`` (a sandbox path, or a placeholder like ``{node}``)."""

    path: str
    access: frozenset[PathAccess]
    reason: str


@final
@dataclass(frozen=True, slots=True)
class LandlockPortRule:
    """TCP rights on ``port``; ``when="egress"`` rules apply only to sandboxes with an egress socket."""

    port: int
    access: frozenset[PortAccess]
    when: PortWhen
    reason: str


@final
@dataclass(frozen=True, slots=True)
class LandlockPolicy:
    """An allow list: anything Landlock can restrict and this policy does not grant is denied."""

    name: str
    paths: tuple[LandlockPathRule, ...]
    tcp_ports: tuple[LandlockPortRule, ...]
    scopes: tuple[Scope, ...]


def _read(name: str) -> dict[str, Any]:
    path = POLICY_DIR / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PolicyError(f"{name}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{name}: the top level must be an object")
    return data


def _keys(where: str, entry: Any, required: set[str], optional: set[str] | None = None) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise PolicyError(f"{where}: must be an object")
    missing = required - entry.keys()
    unknown = entry.keys() - required - (optional or set())
    if missing or unknown:
        raise PolicyError(f"{where}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    if "reason" in required and not (isinstance(entry["reason"], str) and entry["reason"].strip()):
        raise PolicyError(f"{where}: every entry needs a non-empty reason")
    return entry


def _number(where: str, value: Any) -> int:
    if isinstance(value, bool):
        raise PolicyError(f"{where}: {value!r} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"0x[0-9a-fA-F]+", value):
        return int(value, 16)
    raise PolicyError(f"{where}: {value!r} is not an integer or 0x-hex string")


def _condition(where: str, entry: Any) -> ArgCondition:
    item = _keys(where, entry, {"arg", "op", "value"}, {"mask"})
    arg = _number(where, item["arg"])
    if not 0 <= arg <= 5:
        raise PolicyError(f"{where}: arg must be 0..5")
    op = item["op"]
    if op not in ("masked_eq", "gt"):
        raise PolicyError(f"{where}: unknown op {op!r}")
    if (op == "masked_eq") != ("mask" in item):
        raise PolicyError(f"{where}: mask is required with masked_eq and only there")
    mask = _number(where, item.get("mask", 0))
    return ArgCondition(arg=arg, op=op, value=_number(where, item["value"]), mask=mask)


def _seccomp_rules(name: str, data: dict[str, Any]) -> list[SeccompRule]:
    rules: list[SeccompRule] = []
    if not isinstance(data["rules"], list):
        raise PolicyError(f"{name}: rules must be a list")
    for index, entry in enumerate(data["rules"]):
        where = f"{name} rule {index}"
        item = _keys(where, entry, {"syscall", "errno", "reason"}, {"when"})
        syscall = item["syscall"]
        if not (isinstance(syscall, str) and _SYSCALL_NAME.match(syscall)):
            raise PolicyError(f"{where}: bad syscall name {syscall!r}")
        code = getattr(errno_module, str(item["errno"]), None)
        if not isinstance(code, int) or not str(item["errno"]).startswith("E"):
            raise PolicyError(f"{where}: unknown errno {item['errno']!r}")
        when = item.get("when", [])
        if not isinstance(when, list):
            raise PolicyError(f"{where}: when must be a list")
        conditions = tuple(_condition(f"{where} when {i}", c) for i, c in enumerate(when))
        rules.append(SeccompRule(syscall=syscall, errno=code, reason=item["reason"], when=conditions))
    return rules


def load_seccomp_policy(family: RuntimeFamily) -> SeccompPolicy:
    """Read and validate ``seccomp-<family>.json`` and the base list it extends."""
    name = f"seccomp-{family}.json"
    data = _keys(name, _read(name), {"description", "default_action", "rules"}, {"extends"})
    rules: list[SeccompRule] = []
    if "extends" in data:
        base_name = data["extends"]
        if base_name != "seccomp-base.json":
            raise PolicyError(f"{name}: may only extend seccomp-base.json")
        base = _keys(base_name, _read(base_name), {"description", "default_action", "rules"})
        if base["default_action"] != "allow":
            raise PolicyError(f"{base_name}: default_action must be allow (this is a deny list)")
        rules.extend(_seccomp_rules(base_name, base))
    if data["default_action"] != "allow":
        raise PolicyError(f"{name}: default_action must be allow (this is a deny list)")
    rules.extend(_seccomp_rules(name, data))
    seen: set[tuple[str, tuple[ArgCondition, ...]]] = set()
    for rule in rules:
        key = (rule.syscall, rule.when)
        if key in seen:
            raise PolicyError(f"{name}: duplicate rule for {rule.syscall}")
        seen.add(key)
    return SeccompPolicy(name=name, rules=tuple(rules))


def _access(where: str, value: Any, allowed: frozenset[str]) -> frozenset[Any]:
    if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
        raise PolicyError(f"{where}: access must be a non-empty list of names")
    unknown = set(value) - allowed
    if unknown:
        raise PolicyError(f"{where}: unknown access {sorted(unknown)}")
    return frozenset(value)


def load_landlock_policy(family: RuntimeFamily) -> LandlockPolicy:
    """Read and validate ``landlock-<family>.json``."""
    name = f"landlock-{family}.json"
    data = _keys(name, _read(name), {"description", "paths", "tcp_ports", "scopes"})
    paths: list[LandlockPathRule] = []
    for index, entry in enumerate(data["paths"]):
        where = f"{name} path {index}"
        item = _keys(where, entry, {"path", "access", "reason"})
        path = item["path"]
        if not isinstance(path, str) or not (path.startswith("/") or path in _PLACEHOLDERS):
            raise PolicyError(f"{where}: path must be absolute or one of {sorted(_PLACEHOLDERS)}")
        access = _access(where, item["access"], frozenset({"read", "write", "execute"}))
        paths.append(LandlockPathRule(path=path, access=access, reason=item["reason"]))
    ports: list[LandlockPortRule] = []
    for index, entry in enumerate(data["tcp_ports"]):
        where = f"{name} tcp_ports {index}"
        item = _keys(where, entry, {"port", "access", "when", "reason"})
        port = _number(where, item["port"])
        if not 0 < port < 65536:
            raise PolicyError(f"{where}: port out of range")
        if item["when"] not in ("always", "egress"):
            raise PolicyError(f"{where}: when must be 'always' or 'egress'")
        access = _access(where, item["access"], frozenset({"bind", "connect"}))
        ports.append(LandlockPortRule(port=port, access=access, when=item["when"], reason=item["reason"]))
    scopes: list[Scope] = []
    for index, entry in enumerate(data["scopes"]):
        where = f"{name} scopes {index}"
        item = _keys(where, entry, {"scope", "reason"})
        if item["scope"] not in ("abstract_unix_socket", "signal"):
            raise PolicyError(f"{where}: unknown scope {item['scope']!r}")
        scopes.append(item["scope"])
    return LandlockPolicy(name=name, paths=tuple(paths), tcp_ports=tuple(ports), scopes=tuple(scopes))
