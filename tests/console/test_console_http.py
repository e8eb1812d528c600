"""The console's sessions, CSRF, headers and role filtering, through the real app (in process).

Each attempt from docs/../attacker-checklist.md that applies to a cookie-session web UI is a test
here: forged cross-site posts, missing/wrong CSRF tokens, session fixation, use after sign-out,
use after the key is revoked, expiry, another namespace's pages, markup in every rendered value.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from dataclasses import replace

from starlette.testclient import TestClient

from stockade.api.app import Platform, create_app
from stockade.config import Settings
from stockade.console import console_routes
from stockade.observability.alerts import Alert
from stockade.observability.events import EventType, SecurityEvent, Severity
from stockade.store import EventQuery, open_sqlite_store
from stockade.testing import InProcessRunner

from .conftest import HTML, Console, make_console

A = "/api/v1/namespaces/_/actions"


def _cookie_header(response, name: str) -> str:
    for value in response.headers.get_list("set-cookie"):
        if value.startswith(name + "="):
            return value
    raise AssertionError(f"no {name} cookie in {response.headers.get_list('set-cookie')}")


def test_login_page_is_served_with_a_strict_csp_and_no_cors(console):
    r = console.client.get("/console/login", headers={**HTML, "origin": "https://evil.example"})
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'none'" in csp
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in r.headers
    assert "<script" not in r.text
    css = console.client.get("/console/static/console.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "url(" not in css.text
    assert "@import" not in css.text


def test_sign_in_sets_a_short_lived_httponly_strict_cookie(console):
    r = console.sign_in(console.keys["guest"])
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/console/ns/guest"
    cookie = _cookie_header(r, "stockade_console").lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/console" in cookie
    assert "max-age=900" in cookie
    assert console.sign_in(console.keys["guest"]).headers["location"] == "/console/ns/guest"
    page = console.client.get("/console/ns/guest", headers=HTML)
    assert page.status_code == 200
    assert "Posture of namespace" in page.text


def test_the_session_token_is_never_stored_in_the_clear(console):
    r = console.sign_in(console.keys["guest"])
    token = console.client.cookies.get("stockade_console")
    assert token
    assert len(token) >= 40
    db = (console.services.settings.data_dir / "db.sqlite").read_bytes()
    assert token.encode() not in db
    assert r.status_code == 303


def test_wrong_credentials_are_refused_and_count_towards_lockout(tmp_path):
    base = Settings(data_dir=tmp_path)
    settings = replace(base, auth=replace(base.auth, slow_after_failures=100, lockout_after_failures=3))
    app, keys, clock = make_console(tmp_path, settings)
    with TestClient(app) as client:
        console = Console(client, keys, clock, app)
        r = console.sign_in(keys["guest"].split(":")[0] + ":wrong")
        assert r.status_code == 401
        assert "Sign-in failed" in r.text
        assert "stockade_console=" not in ";".join(r.headers.get_list("set-cookie"))
        for _ in range(2):
            r = console.sign_in(keys["guest"].split(":")[0] + ":wrong")
        assert r.status_code in (401, 429)
        # Locked out means locked out, even with the right key (lockouts count per key and address).
        assert console.sign_in(keys["guest"]).status_code == 429


def test_pages_without_a_session_redirect_browsers_and_refuse_others(console):
    r = console.client.get("/console/ns/guest", headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login"
    r = console.client.get("/console/ns/guest")
    assert r.status_code == 401
    assert set(r.json()) == {"error", "code"}
    console.client.cookies.set("stockade_console", "forged-session-token", path="/console")
    assert console.client.get("/console/ns/guest").status_code == 401


def test_sign_in_without_the_login_form_token_is_refused(console):
    """Login CSRF: a cross-site form cannot sign the victim in to the attacker's account."""
    r = console.client.post(
        "/console/login", data={"credential": console.keys["guest"], "login_token": "x"}, follow_redirects=False
    )
    assert r.status_code == 403
    assert console.client.cookies.get("stockade_console") is None
    form = console.client.get("/console/login", headers=HTML)
    assert form.status_code == 200
    token = form.text.split('name="login_token" value="')[1].split('"')[0]
    r = console.client.post(
        "/console/login",
        data={"credential": console.keys["guest"], "login_token": token},
        headers={"sec-fetch-site": "cross-site"},
        follow_redirects=False,
    )
    assert r.status_code == 403


def test_state_changes_need_same_origin_and_the_csrf_token(console):
    console.sign_in(console.keys["guest"])
    csrf = console.csrf("/console/ns/guest")
    # A forged cross-site form post (the browser says so), even with the right token.
    r = console.client.post("/console/logout", data={"csrf": csrf}, headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403
    r = console.client.post("/console/logout", data={"csrf": csrf}, headers={"origin": "https://evil.example"})
    assert r.status_code == 403
    # No token, a wrong token, another content type.
    assert console.client.post("/console/logout", data={"other": "x"}).status_code == 403
    assert console.client.post("/console/logout", data={"csrf": "0" * 64}).status_code == 403
    r = console.client.post(
        "/console/logout", content=json.dumps({"csrf": csrf}), headers={"content-type": "application/json"}
    )
    assert r.status_code == 415
    assert console.client.get("/console/ns/guest").status_code == 200  # still signed in
    r = console.client.post(
        "/console/logout", data={"csrf": csrf}, headers={"sec-fetch-site": "same-origin"}, follow_redirects=False
    )
    assert r.status_code == 303
    assert console.client.get("/console/ns/guest").status_code == 401


def test_a_session_token_reused_after_sign_out_is_dead(console):
    console.sign_in(console.keys["guest"])
    token = console.client.cookies.get("stockade_console")
    csrf = console.csrf("/console/ns/guest")
    console.client.post("/console/logout", data={"csrf": csrf})
    console.client.cookies.set("stockade_console", token, path="/console")
    assert console.client.get("/console/ns/guest").status_code == 401


def test_sessions_expire(console):
    console.sign_in(console.keys["guest"])
    assert console.client.get("/console/ns/guest").status_code == 200
    console.clock.advance(899_000)
    assert console.client.get("/console/ns/guest").status_code == 200
    console.clock.advance(2_000)
    assert console.client.get("/console/ns/guest").status_code == 401


def test_revoking_the_key_ends_its_console_sessions_at_once(console):
    made = console.api("POST", "/api/v1/namespaces/_/keys", json={"subject": "alice", "role": "developer"})
    assert made.status_code == 200, made.text
    key = made.json()
    token = key["key"]
    assert console.sign_in(token).status_code == 303
    assert console.client.get("/console/ns/guest/activations").status_code == 200
    assert console.api("DELETE", f"/api/v1/namespaces/_/keys/{key['uuid']}").status_code == 200
    assert console.client.get("/console/ns/guest/activations").status_code == 401


def test_views_are_filtered_by_role_exactly_as_the_api(console):
    made = console.api("POST", "/api/v1/namespaces/_/keys", json={"subject": "vera", "role": "viewer"}).json()
    token = made["key"]
    viewer_auth = {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}
    assert console.sign_in(token).status_code == 303
    pages = {
        "/console/ns/guest": "/api/v1/namespaces/guest/actions",
        "/console/ns/guest/activations": "/api/v1/namespaces/guest/activations",
        "/console/ns/guest/events": "/api/v1/namespaces/guest/events",
        "/console/ns/guest/alerts": "/api/v1/namespaces/guest/alerts",
        "/console/ns/guest/audit": "/api/v1/namespaces/guest/audit",
        "/console/ns/other": "/api/v1/namespaces/other/actions",
        "/console/ns/other/activations": "/api/v1/namespaces/other/activations",
        "/console/ns/other/audit": "/api/v1/namespaces/other/audit",
    }
    for page, api in pages.items():
        expected = console.client.get(api, headers=viewer_auth).status_code
        got = console.client.get(page).status_code
        assert got == expected, (page, got, api, expected)
    # A viewer sees the posture but not key ages (roles) or gate results (read_code).
    posture = console.client.get("/console/ns/guest", headers=HTML).text
    assert "key ages (need the roles permission)" in posture
    assert console.client.get("/console/ns/guest/audit", headers=HTML).status_code == 403


def test_posture_shows_risky_and_safe_actions_and_what_to_fix_first(console):
    risky = {
        "exec": {"kind": "python:3", "code": "def main(a):\n    return a\n"},
        "annotations": [
            {"key": "web-export", "value": True},
            {"key": "policy", "value": {"egress": ["*:443"]}},
        ],
    }
    safe = {
        "exec": {"kind": "python:3", "code": "def main(a):\n    return {}\n"},
        "annotations": [
            {"key": "web-export", "value": True},
            {"key": "require-whisk-auth", "value": True},
            {"key": "input-schema", "value": {"type": "object"}},
            {"key": "sandbox-use-once", "value": True},
        ],
    }
    assert console.api("PUT", f"{A}/risky", json=risky).status_code == 200
    assert console.api("PUT", f"{A}/safe", json=safe).status_code == 200
    console.sign_in(console.keys["guest"])
    page = console.client.get("/console/ns/guest", headers=HTML).text
    fixes = page.split("What to fix first")[1].split("Namespace settings")[0]
    assert "risky</a>: Web-exported without authentication" in fixes
    assert "Unrestricted egress grant" in fixes
    assert "safe</a>" not in fixes
    assert "exported, NO auth" in page
    assert "exported, auth required" in page
    assert "fresh sandbox per run" in page
    assert "passed" in page  # the deploy gate's last decision
    detail = console.client.get("/console/ns/guest/actions/safe", headers=HTML)
    assert detail.status_code == 200
    assert "<svg" in detail.text
    assert "Invocations" in detail.text
    assert console.client.get("/console/ns/guest/actions/nope", headers=HTML).status_code == 404
    assert console.client.get("/console/ns/guest/actions/a/b/c").status_code == 400


def test_markup_in_names_results_logs_and_annotations_is_shown_as_text(console):
    payload = "<script>alert(1)</script><img src=x onerror=alert(2)>{{7*7}}"
    code = f"def main(a):\n    print({payload!r})\n    return {{'html': {payload!r}}}\n"
    action = {"exec": {"kind": "python:3", "code": code}, "annotations": [{"key": "description", "value": payload}]}
    assert console.api("PUT", f"{A}/xss", json=action).status_code == 200
    r = console.api("POST", f"{A}/xss?blocking=true")
    assert r.status_code == 200, r.text
    activation_id = r.json()["activationId"]
    console.sign_in(console.keys["guest"])
    detail = console.client.get(f"/console/ns/guest/activations/{activation_id}", headers=HTML)
    assert detail.status_code == 200
    assert "<script>alert" not in detail.text
    assert "<img src=x" not in detail.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail.text
    assert "{{7*7}}" in detail.text
    assert ">49<" not in detail.text


def test_alert_detail_and_acknowledgment(console):
    now = console.clock.now_ms()
    alert = Alert(
        "a" * 32,
        "guest",
        "sandbox-compromise",
        Severity.CRITICAL,
        "sandbox.tamper",
        "fn",
        "k",
        "<b>tamper</b> in fn",
        1,
        now,
        now,
    )
    console.run(console.services.store.put_alerts, [alert])
    console.sign_in(console.keys["guest"])
    listing = console.client.get("/console/ns/guest/alerts", headers=HTML).text
    assert "&lt;b&gt;tamper&lt;/b&gt; in fn" in listing
    assert ">open<" in listing
    url = f"/console/ns/guest/alerts/{'a' * 32}"
    csrf = console.csrf(url)
    assert console.client.post(url + "/ack", data={"note": "looking"}).status_code == 403
    r = console.client.post(url + "/ack", data={"csrf": csrf, "note": "<i>on it</i>"}, follow_redirects=False)
    assert r.status_code == 303
    page = console.client.get(url, headers=HTML).text
    assert "acknowledged by guest" in page
    assert "&lt;i&gt;on it&lt;/i&gt;" in page
    assert "Acknowledge</button>" not in page
    assert "acknowledged by" in console.client.get("/console/ns/guest/alerts?status=acknowledged", headers=HTML).text
    assert console.client.get("/console/ns/guest/alerts/" + "b" * 32).status_code == 404
    assert console.client.get("/console/ns/guest/alerts/..%2f..").status_code == 404
    assert console.client.get("/console/ns/guest/alerts?status=bogus").status_code == 400


def test_audit_verification_entries_and_export(console):
    console.sign_in(console.keys["guest"])
    console.run(console.services.audit.flush)
    page = console.client.get("/console/ns/guest/audit", headers=HTML)
    assert page.status_code == 200
    assert "Intact:" in page.text
    assert "console.sign_in" in page.text
    export = console.client.get("/console/ns/guest/audit/export")
    assert export.status_code == 200
    assert export.headers["content-disposition"].startswith("attachment;")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert any(line["action"] == "console.sign_in" for line in lines)
    assert all("mac" in line for line in lines)
    assert console.client.get("/console/ns/guest/audit?since=-1").status_code == 400


def test_bad_input_gets_openwhisk_errors_not_500s(console):
    console.sign_in(console.keys["guest"])
    for path, status in [
        ("/console/ns/Bad%20NS!", 400),
        ("/console/ns/guest/activations?page=0", 400),
        ("/console/ns/guest/activations?since=yesterday", 400),
        ("/console/ns/guest/activations?name=../../x", 400),
        ("/console/ns/guest/activations/not-an-id", 400),
        ("/console/ns/guest/events?type=nope", 400),
        ("/console/ns/guest/events?severity=huge", 400),
        ("/console/static/../../etc/passwd", 404),
        ("/console/static/x.js", 404),
    ]:
        r = console.client.get(path)
        assert r.status_code == status, (path, r.status_code, r.text)
        assert set(r.json()) == {"error", "code"}
    big = console.client.post(
        "/console/logout",
        content=b"csrf=" + b"x" * 20000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert big.status_code == 413


def test_secrets_wired_and_recent_tamper_events_reach_the_posture(console):
    assert (
        console.api("PUT", "/api/v1/namespaces/_/secrets/db-password", json={"value": "s3cret-value"}).status_code
        == 200
    )
    wired = {
        "exec": {"kind": "python:3", "code": "def main(a):\n    return {}\n"},
        "annotations": [
            {"key": "secrets", "value": {"DB_PASSWORD": "db-password"}},
            {"key": "policy", "value": {"egress": ["db.example.com:5432"]}},
        ],
    }
    r = console.api("PUT", f"{A}/wired", json=wired)
    assert r.status_code == 200, r.text
    tamper = SecurityEvent(
        EventType.SANDBOX_TAMPER, Severity.CRITICAL, console.clock.now_ms(), "guest", action="wired", source="invoker"
    )
    console.run(console.services.store.put_events, [tamper])
    console.sign_in(console.keys["guest"])
    page = console.client.get("/console/ns/guest", headers=HTML).text
    fixes = page.split("What to fix first")[1].split("Namespace settings")[0]
    first = fixes.split("<li")[1]
    assert "critical" in first
    assert "1 sandbox tamper event(s)" in first
    assert "Holds secrets and may reach the network" in fixes
    assert "db-password" in page
    assert "s3cret-value" not in page  # names, never values


def test_sessions_hold_on_every_controller_sharing_the_store(tmp_path):
    """Scale-out: a session opened on one controller works, and ends, on another."""
    app_a, keys, clock = make_console(tmp_path)
    platform_b = Platform(
        settings=Settings(data_dir=tmp_path),
        store=open_sqlite_store(tmp_path / "db.sqlite"),
        runner=InProcessRunner(),
        clock=clock,
        routes=console_routes(),
    )
    app_b = create_app(platform_b)
    with TestClient(app_a) as a, TestClient(app_b) as b:
        console_a = Console(a, keys, clock, app_a)
        assert console_a.sign_in(keys["guest"]).status_code == 303
        token = a.cookies.get("stockade_console")
        b.cookies.set("stockade_console", token, path="/console")
        assert b.get("/console/ns/guest").status_code == 200
        csrf = console_a.csrf("/console/ns/guest")
        assert a.post("/console/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
        assert b.get("/console/ns/guest").status_code == 401


def test_refusals_are_security_events_and_audit_entries(console):
    console.sign_in(console.keys["guest"])
    assert console.client.post("/console/logout", data={"csrf": "forged"}).status_code == 403
    assert console.client.get("/console/ns/other/audit").status_code == 403
    console.run(console.services.monitoring.events.flush)
    console.run(console.services.audit.flush)
    events = console.run(
        console.services.store.list_events,
        EventQuery(namespaces=("guest", "other"), types=("authorization.denied",)),
    )
    reasons = {(e.namespace, e.details.get("reason"), e.source) for e in events}
    assert ("guest", "csrf", "console") in reasons
    assert ("other", "permission", "console") in reasons
    guest_chain = console.client.get("/console/ns/guest/audit/export").text
    assert '"outcome":"403"' in guest_chain
    assert '"reason":"csrf"' in guest_chain


def test_a_cookie_planted_before_sign_in_is_never_adopted(console):
    """Session fixation: sign-in always issues a fresh token."""
    console.client.cookies.set("stockade_console", "planted-by-attacker", domain="testserver.local", path="/console")
    r = console.sign_in(console.keys["guest"])
    assert r.status_code == 303
    issued = _cookie_header(r, "stockade_console").split(";")[0].split("=", 1)[1]
    assert issued != "planted-by-attacker"
    assert console.client.cookies.get("stockade_console") == issued


def test_hostile_paths_and_numbers_are_refused_cleanly(console):
    console.sign_in(console.keys["guest"])
    for path, status in [
        ("/console/ns/guest/activations?page=99999999999999999999999", 400),
        ("/console/ns/guest/audit?since=99999999999999999999999", 400),
        ("/console/ns/guest%00/activations", 400),
        ("/console/ns/" + "a" * 300, 400),
        ("/console/ns/guest/actions/%2e%2e", 400),
        ("/console/ns/guest/actions/..%2f..%2fetc", 400),
        ("/console/ns/guest/activations/" + "f" * 400, 400),
        ("/console/ns/guest/alerts/" + "a" * 65, 404),
    ]:
        r = console.client.get(path)
        assert r.status_code == status, (path, r.status_code, r.text)
    many = "&".join(f"f{i}=x" for i in range(50))
    r = console.client.post(
        "/console/logout", content=many, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 400


def test_an_audit_entry_edited_behind_the_platforms_back_shows_as_not_intact(console):
    console.sign_in(console.keys["guest"])
    console.run(console.services.audit.flush)
    db = console.services.settings.data_dir / "db.sqlite"
    with sqlite3.connect(db) as conn:
        changed = conn.execute(
            "UPDATE audit_log SET entry = replace(entry, 'console.sign_in', 'console.sign_ix') WHERE chain = 'guest'"
        ).rowcount
    assert changed >= 1
    page = console.client.get("/console/ns/guest/audit", headers=HTML)
    assert page.status_code == 200
    assert "NOT intact" in page.text
    assert "was altered" in page.text
