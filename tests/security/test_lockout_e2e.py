"""Lockouts against a real `stockade up` on loopback: an attacker locks only itself out, and
forwarded headers from a peer that is not a configured proxy change nothing."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

import httpx
import pytest

from e2e.conftest import start_server, stop_server

pytestmark = pytest.mark.e2e

WEB_ACTION = {
    "exec": {"kind": "python:3", "code": "def main(args):\n    return {'ok': True}\n"},
    "annotations": [{"key": "web-export", "value": True}, {"key": "require-whisk-auth", "value": True}],
}


def basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}


def started(tmp_path, settings: str):
    config = tmp_path / "stockade.toml"
    config.write_text(settings)
    return start_server(tmp_path / "data", "--config", str(config))


def audit_sources(data_dir, action: str, at_least: int) -> list[str]:
    """Sources of the platform chain's ``action`` entries (read with `stockade admin audit-export`)."""
    deadline = time.monotonic() + 30
    while True:
        out = subprocess.run(
            [sys.executable, "-m", "stockade.admin", "--data-dir", str(data_dir), "audit-export"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        sources = [e["source"] for e in map(json.loads, out.splitlines()) if e["action"] == action]
        if len(sources) >= at_least or time.monotonic() > deadline:
            return sources
        time.sleep(0.2)


@pytest.fixture
def proxied(tmp_path):
    """A server behind a trusted proxy on loopback, with slowing off so the attack runs quickly."""
    (tmp_path / "data").mkdir()
    proc, server = started(tmp_path, '[auth]\ntrusted_proxies = "127.0.0.1"\nslow_after_failures = 100000\n')
    try:
        yield server
    finally:
        stop_server(proc)


def test_a_thousand_bad_web_logins_from_one_address_do_not_stop_a_valid_key_from_another(proxied):
    owner = basic(proxied.auth)
    victim_uuid = proxied.auth.split(":")[0]
    with httpx.Client(base_url=proxied.url, timeout=60) as client:
        r = client.put("/api/v1/namespaces/guest/actions/hello", headers=owner, json=WEB_ACTION)
        assert r.status_code == 200, r.text
        attacker = {"X-Forwarded-For": "203.0.113.7", **basic(f"{victim_uuid}:{'0' * 64}")}
        statuses = [
            client.get("/api/v1/web/guest/default/hello.json", headers=attacker).status_code for _ in range(1000)
        ]
        assert set(statuses) == {401}
        # The victim, from its own address, is not locked out.
        victim = {"X-Forwarded-For": "198.51.100.9", **owner}
        ok = client.get("/api/v1/web/guest/default/hello.json", headers=victim)
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"ok": True}
        assert client.get("/api/v1/namespaces/guest/actions", headers=victim).status_code == 200
        # The attacker's address is: even the right key is refused from there.
        from_attacker = {"X-Forwarded-For": "203.0.113.7", **owner}
        assert client.get("/api/v1/namespaces/guest/actions", headers=from_attacker).status_code == 429
    sources = audit_sources(proxied.data_dir, "auth.failed", 100)
    assert set(sources) == {"203.0.113.7"}


@pytest.fixture
def direct(tmp_path):
    """A server with no trusted proxies (the default), small thresholds."""
    (tmp_path / "data").mkdir()
    settings = "[auth]\nslow_after_failures = 100000\nlockout_after_failures = 5\nsource_lockout_after_failures = 8\n"
    proc, server = started(tmp_path, settings)
    try:
        yield server
    finally:
        stop_server(proc)


def test_forged_forwarded_for_from_an_untrusted_peer_changes_nothing(direct):
    with httpx.Client(base_url=direct.url, timeout=60) as client:
        for i in range(8):
            forged = {"X-Forwarded-For": f"192.0.2.{i + 1}", **basic(f"uuid-{i}:{'0' * 64}")}
            assert client.get("/api/v1/namespaces", headers=forged).status_code == 401
        # The lockout applies to the real peer whatever address it claims.
        fresh = {"X-Forwarded-For": "198.51.100.200", **basic(direct.auth)}
        assert client.get("/api/v1/namespaces", headers=fresh).status_code == 429
    # The audit log records the real peer, never a forged address.
    sources = audit_sources(direct.data_dir, "auth.failed", 8)
    assert len(sources) == 8
    assert set(sources) == {"127.0.0.1"}
