"""`--help` of every command group and command, compared with stored snapshots.

Regenerate after an intended change with ``STOCKADE_TEST_UPDATE_SNAPSHOTS=1 pytest tests/cli``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stockade.cli.main import run

SNAPSHOTS = Path(__file__).parent / "snapshots"

COMMANDS = {
    "action": ["create", "update", "get", "list", "delete", "invoke"],
    "activation": ["list", "get", "logs", "result", "poll"],
    "package": ["create", "update", "bind", "get", "list", "delete"],
    "trigger": ["create", "update", "fire", "get", "list", "delete"],
    "rule": ["create", "update", "enable", "disable", "get", "list", "delete"],
    "namespace": ["list", "get"],
    "secret": ["set", "rotate", "list", "get", "delete"],
    "advisories": ["import", "sync", "status"],
    "scan": ["report"],
    "role": ["list", "grant", "revoke"],
    "key": ["list", "create", "revoke"],
    "audit": ["list", "verify", "export"],
    "policy": ["get", "protect", "lint"],
    "api": ["create", "list", "delete"],
    "events": ["list"],
    "alerts": ["list", "dead-letters", "webhook", "rule"],
}
# Top-level commands without verbs.
LEAVES = ["deploy", "undeploy", "export"]
# Verbs that are groups themselves: (group, verb) → their verbs.
NESTED = {
    ("alerts", "webhook"): ["add", "list", "delete"],
    ("alerts", "rule"): ["list", "set", "delete"],
}
CASES = [
    [],
    *([group] for group in COMMANDS),
    *([leaf] for leaf in LEAVES),
    *([group, verb] for group, verbs in COMMANDS.items() for verb in verbs),
    *([*parent, verb] for parent, verbs in NESTED.items() for verb in verbs),
]


def _snapshot_name(argv: list[str]) -> str:
    return "_".join(["stockade", *argv]) + ".txt"


@pytest.mark.parametrize("argv", CASES, ids=lambda argv: " ".join(argv) or "stockade")
def test_help_matches_snapshot(argv, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps to the terminal width
    assert run([*argv, "--help"]) == 0
    text = capsys.readouterr().out
    path = SNAPSHOTS / _snapshot_name(argv)
    if os.environ.get("STOCKADE_TEST_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing snapshot {path.name}; run with STOCKADE_TEST_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(), (
        f"--help drifted from {path.name}; regenerate with STOCKADE_TEST_UPDATE_SNAPSHOTS=1"
    )


def test_every_registered_command_has_a_snapshot_case():
    """A new command group or verb must be added to COMMANDS (and so get a snapshot)."""
    from stockade.cli.main import build_parser

    parser = build_parser()
    groups = parser._subparsers._group_actions[0].choices
    registered = {
        name: sorted(sub._subparsers._group_actions[0].choices) if sub._subparsers else []
        for name, sub in groups.items()
        if name not in ("up", "admin", "controller", "invoker")
    }
    assert registered == {**{name: sorted(verbs) for name, verbs in COMMANDS.items()}, **{key: [] for key in LEAVES}}


def test_no_stale_snapshots():
    expected = {_snapshot_name(argv) for argv in CASES}
    assert {path.name for path in SNAPSHOTS.glob("*.txt")} == expected
