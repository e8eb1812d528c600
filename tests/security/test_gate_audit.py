"""The deploy gate's decisions are on record: a blocked deploy, a warned deploy and an accepted
risk each leave an audit entry (subject, action version, finding ids, the reason for the
override) in the namespace's chain, read back with ``stockade admin audit-export`` after a real
``stockade up`` on loopback served the deploys."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from e2e.conftest import start_server, stop_server

pytestmark = [pytest.mark.e2e]

SHELL_PY = """\
import subprocess


def main(args):
    out = subprocess.check_output(f"echo -n {args['string']} | wc -w", shell=True)
    return {"count": int(out)}
"""
CLEAN_PY = "def main(args):\n    return {'ok': True}\n"


def test_audit_export_shows_blocked_warned_and_accepted_deploys(tmp_path):
    proc, server = start_server(tmp_path)
    uuid, key = server.auth.split(":", 1)
    try:
        with httpx.Client(auth=(uuid, key), timeout=120) as client:
            base = f"{server.url}/api/v1/namespaces/_/actions"
            r = client.put(f"{base}/shell", json={"exec": {"kind": "python:3", "code": SHELL_PY}})
            assert r.status_code == 400, r.text
            assert r.json()["error"].startswith("Deploy blocked")
            web = {
                "exec": {"kind": "python:3", "code": CLEAN_PY},
                "annotations": [{"key": "web-export", "value": True}],
            }
            assert client.put(f"{base}/web", json=web).status_code == 200
            r = client.put(
                f"{base}/shell",
                params={"acceptRisk": "input is validated upstream (ticket SEC-42)"},
                json={"exec": {"kind": "python:3", "code": SHELL_PY}},
            )
            assert r.status_code == 200, r.text
        # `stockade up` said at start that the dependency check has no advisories to use.
        log = server.log_path.read_text()
        assert "WARNING: no PyPI advisories loaded" in log
        assert "WARNING: no npm advisories loaded" in log
    finally:
        stop_server(proc)
    out = subprocess.run(
        [sys.executable, "-m", "stockade.admin", "--data-dir", str(tmp_path), "audit-export", "--namespace", "guest"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    entries = [json.loads(line) for line in out.splitlines() if line.strip()]
    gate = {e["action"]: e for e in entries if e["action"].startswith("deploy.")}
    assert set(gate) == {"deploy.blocked", "deploy.warned", "deploy.risk_accepted"}, [e["action"] for e in entries]

    blocked = gate["deploy.blocked"]
    assert blocked["outcome"] == "denied"
    assert blocked["resource"] == "/guest/shell@0.0.1"
    assert blocked["details"]["findings"] == ["py.command-injection __main__.py:5"]
    assert "reason" not in blocked["details"]

    warned = gate["deploy.warned"]
    assert warned["resource"] == "/guest/web@0.0.1"
    assert warned["details"]["findings"] == []
    assert warned["details"]["warnings"] == ["policy.web-without-auth annotations"]

    accepted = gate["deploy.risk_accepted"]
    assert accepted["resource"] == "/guest/shell@0.0.1"
    assert accepted["details"]["findings"] == ["py.command-injection __main__.py:5"]
    assert accepted["details"]["reason"] == "input is validated upstream (ticket SEC-42)"
    # Who: the deploying subject (the bootstrap key's owner), the same for all three.
    assert {entry["actor"] for entry in gate.values()} == {"guest"}
    # The chain that holds them verifies.
    subprocess.run(
        [sys.executable, "-m", "stockade.admin", "--data-dir", str(tmp_path), "audit-verify", "--namespace", "guest"],
        check=True,
        capture_output=True,
    )
