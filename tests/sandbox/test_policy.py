"""Seccomp and Landlock policies are data: they load, validate, compile, and reject malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stockade.sandbox import policy, seccomp
from stockade.sandbox.policy import PolicyError, load_landlock_policy, load_seccomp_policy

MUST_DENY = {
    "ptrace",
    "process_vm_readv",
    "mount",
    "umount2",
    "pivot_root",
    "unshare",
    "setns",
    "bpf",
    "io_uring_setup",
    "userfaultfd",
    "keyctl",
    "add_key",
    "perf_event_open",
    "kexec_load",
    "init_module",
    "finit_module",
}


@pytest.mark.parametrize("family", ["python", "nodejs"])
def test_every_shipped_seccomp_policy_loads_and_compiles(family: str) -> None:
    """Each runtime's list validates, names the dangerous syscalls, and compiles to whole BPF instructions."""
    loaded = load_seccomp_policy(family)  # type: ignore[arg-type]
    names = {rule.syscall for rule in loaded.rules}
    assert names >= MUST_DENY
    assert all(rule.reason.strip() for rule in loaded.rules)
    program = seccomp.compile_policy(loaded)
    assert program
    assert len(program) % 8 == 0


def test_python_denies_exec_and_node_does_not() -> None:
    """Node is exec'd after the filter is loaded, so only Python sandboxes deny execve outright."""
    python = {r.syscall for r in load_seccomp_policy("python").rules if not r.when}
    nodejs = {r.syscall for r in load_seccomp_policy("nodejs").rules if not r.when}
    assert {"execve", "execveat"} <= python
    assert not {"execve", "execveat"} & nodejs


def test_compiled_filter_kills_foreign_architectures() -> None:
    """The compiled filter's bad-arch action is KILL_PROCESS (no x32 or i386 syscall slips past)."""
    text = seccomp.describe(load_seccomp_policy("python"))
    assert "invalid architecture action\naction KILL_PROCESS" in text
    # Argument checks compare only the low 32 bits the kernel uses.
    assert "$a0.lo32 & 0xffffffff == 16" in text


@pytest.mark.parametrize("family", ["python", "nodejs"])
def test_every_shipped_landlock_policy_loads(family: str) -> None:
    """Landlock rules validate; / is read-only and /tmp is the only writable directory."""
    loaded = load_landlock_policy(family)  # type: ignore[arg-type]
    writable = [rule.path for rule in loaded.paths if "write" in rule.access]
    assert sorted(writable) == ["/dev/null", "/tmp"]
    executable = [rule.path for rule in loaded.paths if "execute" in rule.access]
    assert executable == ([] if family == "python" else ["{node}", "{ld_so}"])
    assert set(loaded.scopes) == {"abstract_unix_socket", "signal"}
    assert all(port.when == "egress" for port in loaded.tcp_ports)


def _with_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, data: object) -> None:
    for shipped in policy.POLICY_DIR.iterdir():
        (tmp_path / shipped.name).write_text(shipped.read_text())
    (tmp_path / name).write_text(json.dumps(data))
    monkeypatch.setattr(policy, "POLICY_DIR", tmp_path)


BAD_SECCOMP = [
    ({"syscall": "ptrace", "errno": "EPERM"}, "reason"),
    ({"syscall": "ptrace", "errno": "EPERM", "reason": " "}, "reason"),
    ({"syscall": "ptrace", "errno": "ENOTANERRNO", "reason": "x"}, "errno"),
    ({"syscall": "Bad Name", "errno": "EPERM", "reason": "x"}, "syscall"),
    ({"syscall": "ptrace", "errno": "EPERM", "reason": "x", "extra": 1}, "unknown"),
    ({"syscall": "socket", "errno": "EPERM", "reason": "x", "when": [{"arg": 0, "op": "eq", "value": 1}]}, "op"),
    ({"syscall": "socket", "errno": "EPERM", "reason": "x", "when": [{"arg": 9, "op": "gt", "value": 1}]}, "arg"),
    (
        {"syscall": "socket", "errno": "EPERM", "reason": "x", "when": [{"arg": 0, "op": "masked_eq", "value": 1}]},
        "mask",
    ),
]


@pytest.mark.parametrize(("rule", "complaint"), BAD_SECCOMP)
def test_malformed_seccomp_rules_are_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rule: dict[str, object], complaint: str
) -> None:
    """A malformed entry fails the whole load, naming what is wrong."""
    _with_policy(
        tmp_path, monkeypatch, "seccomp-python.json", {"description": "d", "default_action": "allow", "rules": [rule]}
    )
    with pytest.raises(PolicyError, match=complaint):
        load_seccomp_policy("python")


def test_an_allow_list_or_duplicate_rule_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only deny lists over a default of allow; the same rule twice is a mistake."""
    rule = {"syscall": "ptrace", "errno": "EPERM", "reason": "x"}
    _with_policy(
        tmp_path, monkeypatch, "seccomp-python.json", {"description": "d", "default_action": "deny", "rules": []}
    )
    with pytest.raises(PolicyError, match="default_action"):
        load_seccomp_policy("python")
    _with_policy(
        tmp_path,
        monkeypatch,
        "seccomp-python.json",
        {"description": "d", "default_action": "allow", "rules": [rule, rule]},
    )
    with pytest.raises(PolicyError, match="duplicate"):
        load_seccomp_policy("python")


def test_unknown_syscall_fails_at_compile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A syscall libseccomp does not know is an error, not a silently missing rule."""
    rule = {"syscall": "no_such_syscall", "errno": "EPERM", "reason": "x"}
    _with_policy(
        tmp_path, monkeypatch, "seccomp-python.json", {"description": "d", "default_action": "allow", "rules": [rule]}
    )
    with pytest.raises(PolicyError, match="no_such_syscall"):
        seccomp.compile_policy(load_seccomp_policy("python"))


BAD_LANDLOCK = [
    ({"paths": [{"path": "relative", "access": ["read"], "reason": "x"}]}, "absolute"),
    ({"paths": [{"path": "/", "access": ["fly"], "reason": "x"}]}, "unknown access"),
    ({"paths": [{"path": "/", "access": ["read"]}]}, "reason"),
    ({"tcp_ports": [{"port": 0, "access": ["bind"], "when": "always", "reason": "x"}]}, "port"),
    ({"tcp_ports": [{"port": 80, "access": ["bind"], "when": "sometimes", "reason": "x"}]}, "when"),
    ({"scopes": [{"scope": "everything", "reason": "x"}]}, "scope"),
]


@pytest.mark.parametrize(("change", "complaint"), BAD_LANDLOCK)
def test_malformed_landlock_rules_are_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, object], complaint: str
) -> None:
    """A malformed Landlock entry fails the whole load."""
    data: dict[str, object] = {"description": "d", "paths": [], "tcp_ports": [], "scopes": [], **change}
    _with_policy(tmp_path, monkeypatch, "landlock-python.json", data)
    with pytest.raises(PolicyError, match=complaint):
        load_landlock_policy("python")
