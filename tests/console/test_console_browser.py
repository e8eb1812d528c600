"""The console in a real browser: Debian's headless Chromium against a real `stockade up`.

Driven from Python with the ``playwright`` package pointed at /usr/bin/chromium (no browser is
ever downloaded). Seeded through the HTTP API with risky and safe actions, an activation whose
result and logs carry markup and script, a key whose subject is markup, and alerts from the
deploy gate. Every page is checked with axe-core (served from the npm test dependencies, injected
through the DevTools protocol, never through the page) for serious or critical violations.

Where Chromium or playwright is missing the tests skip with the reason, unless
``STOCKADE_TEST_REQUIRE_CHROMIUM=1`` (set by scripts/test in CI), where they fail.
"""

from __future__ import annotations

import base64
import http.server
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.conftest import Server, start_server, stop_server

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parents[1] / "e2e" / "node" / "node_modules" / "axe-core" / "axe.min.js"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
A = "/api/v1/namespaces/_/actions"
SHELL_PY = """\
import subprocess


def main(args):
    out = subprocess.check_output(f"echo -n {args['string']} | wc -w", shell=True)
    return {"count": int(out)}
"""


def _missing() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is not installed (Debian package 'chromium'; scripts/install adds it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (requirements.lock; scripts/install adds it)"
    if not AXE.exists():
        return f"axe-core is not installed at {AXE} (npm test dependencies; scripts/install adds them)"
    return None


def _require_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("STOCKADE_TEST_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"browser tests required here (CI) but {reason}")
    pytest.skip(reason)


@dataclass
class Canary:
    """A loopback HTTP server that records every request: any hit means a payload ran."""

    url: str
    hits: list[str] = field(default_factory=list)
    forge_target: str = ""


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    state = Canary(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/forge"):
                # The attacker's page: an auto-submitting form to the console (another site).
                body = (
                    "<!doctype html><html><body>"
                    f'<form id="f" method="post" action="{state.forge_target}">'
                    '<input name="csrf" value="guessed"><input name="note" value="forged"></form>'
                    "<script>document.getElementById('f').submit()</script></body></html>"
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            state.hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _payload(canary: Canary, tag: str) -> str:
    return (
        f"<script>alert('{tag}')</script><img src=\"{canary.url}/{tag}-img\" onerror=\"alert('{tag}')\">"
        f"<svg onload=\"fetch('{canary.url}/{tag}-svg')\"></svg>{{{{7*7}}}}${{7*7}}"
    )


@dataclass
class Seeded:
    server: Server
    activation_id: str
    blocked_alert: str
    accepted_alert: str
    payload: str


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}


@pytest.fixture(scope="module")
def seeded(canary: Canary) -> Iterator[Seeded]:
    _require_browser()
    data_dir = Path(tempfile.mkdtemp(prefix="stockade-console-"))
    proc, server = start_server(data_dir)
    try:
        owner = _auth(server.auth)
        payload = _payload(canary, "result")
        with httpx.Client(base_url=server.url, headers=owner, timeout=60) as api:
            code = f"def main(args):\n    print({_payload(canary, 'log')!r})\n    return {{'html': {payload!r}}}\n"
            risky = {
                "exec": {"kind": "python:3", "code": code},
                "annotations": [
                    {"key": "web-export", "value": True},
                    {"key": "policy", "value": {"egress": ["*:443"]}},
                    {"key": "description", "value": _payload(canary, "description")},
                ],
            }
            safe = {
                "exec": {"kind": "python:3", "code": "def main(args):\n    return {'ok': True}\n"},
                "annotations": [
                    {"key": "web-export", "value": True},
                    {"key": "require-whisk-auth", "value": True},
                    {"key": "input-schema", "value": {"type": "object"}},
                ],
            }
            assert api.put(f"{A}/risky", json=risky).status_code == 200
            assert api.put(f"{A}/safe", json=safe).status_code == 200
            # A caller whose subject is markup: it shows in the activation and the audit log.
            made = api.post(
                "/api/v1/namespaces/_/keys", json={"subject": _payload(canary, "subject")[:250], "role": "developer"}
            )
            assert made.status_code == 200, made.text
            invoked = api.post(f"{A}/risky?blocking=true", headers=_auth(made.json()["key"]))
            assert invoked.status_code == 200, invoked.text
            # The deploy gate: one blocked deploy and one accepted risk, each an alert.
            assert api.put(f"{A}/wc", json={"exec": {"kind": "python:3", "code": SHELL_PY}}).status_code == 400
            accepted = api.put(f"{A}/wc2?acceptRisk=reviewed", json={"exec": {"kind": "python:3", "code": SHELL_PY}})
            assert accepted.status_code == 200, accepted.text
            alerts = {}
            for _ in range(100):
                listed = api.get("/api/v1/namespaces/_/alerts").json()
                alerts = {a["action"]: a["id"] for a in listed}
                if {"wc", "wc2"} <= set(alerts):
                    break
                threading.Event().wait(0.1)
            assert {"wc", "wc2"} <= set(alerts), alerts
        yield Seeded(server, invoked.json()["activationId"], alerts["wc"], alerts["wc2"], payload)
    finally:
        stop_server(proc)
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass
class Browser:
    page: Any
    dialogs: list[str]
    foreign: list[str]
    axe: str
    console_errors: list[str] = field(default_factory=list)

    def check_axe(self) -> None:
        self.page.evaluate(self.axe)
        result = self.page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        # The issue asks for no serious or critical violation; the console has none of any impact.
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"]
        ]
        assert not bad, f"{self.page.url}: {bad}"


@pytest.fixture(scope="module")
def browser(seeded: Seeded) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        try:
            page = context.new_page()
            state = Browser(page, [], [], AXE.read_text())
            page.on("dialog", lambda d: (state.dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: state.console_errors.append(m.text) if m.type == "error" else None)
            page.on(
                "request",
                lambda r: None if r.url.startswith(seeded.server.url) else state.foreign.append(r.url),
            )
            yield state
        finally:
            context.close()


def _sign_in(browser: Browser, seeded: Seeded) -> None:
    page = browser.page
    page.goto(seeded.server.url + "/console")
    assert page.url.endswith("/console/login")
    browser.check_axe()
    page.get_by_label("API key or JWT").fill(seeded.server.auth)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/ns/guest")


def test_sign_in_and_see_the_posture_of_risky_and_safe_actions(browser: Browser, seeded: Seeded) -> None:
    _sign_in(browser, seeded)
    page = browser.page
    fixes = page.locator("section", has=page.locator("#fix-h"))
    text = fixes.inner_text()
    assert "risky: Web-exported without authentication" in text
    assert "Unrestricted egress grant" in text
    assert "Deployed with accepted risk: reviewed" in text
    assert "safe:" not in text
    row = page.locator("table.posture tr", has=page.get_by_role("link", name="safe", exact=True))
    assert "exported, auth required" in row.inner_text()
    browser.check_axe()
    page.get_by_role("link", name="risky", exact=True).first.click()
    page.wait_for_url("**/actions/risky")
    assert page.locator("svg[role=img]").count() == 3
    browser.check_axe()


def test_open_an_activation_and_its_logs_markup_stays_text(browser: Browser, seeded: Seeded) -> None:
    page = browser.page
    page.get_by_role("link", name="Activations", exact=True).click()
    page.wait_for_url("**/activations")
    browser.check_axe()
    page.get_by_role("link", name=seeded.activation_id).click()
    page.wait_for_url(f"**/activations/{seeded.activation_id}")
    logs = page.locator("#logs").inner_text()
    assert "<script>alert('log')</script>" in logs
    assert "{{7*7}}" in logs
    assert "<script>alert('result')</script>" in page.locator("#result").inner_text()
    assert page.locator("main script, main img, main svg[onload]").count() == 0
    assert page.locator("#duration").inner_text().endswith(" ms")
    browser.check_axe()


def test_events_and_alerts_acknowledge_an_alert(browser: Browser, seeded: Seeded) -> None:
    page = browser.page
    page.get_by_role("link", name="Events", exact=True).click()
    page.wait_for_url("**/events")
    assert "deploy.blocked" in page.locator("main").inner_text()
    page.get_by_label("Type").select_option("deploy.risk_accepted")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/events?type=deploy.risk_accepted*")
    assert "deploy.blocked" not in page.locator("ol.timeline").inner_text()
    browser.check_axe()
    page.get_by_role("link", name="Alerts", exact=True).click()
    page.wait_for_url("**/alerts")
    browser.check_axe()
    page.goto(f"{seeded.server.url}/console/ns/guest/alerts/{seeded.blocked_alert}")
    assert page.locator("#ack-status").inner_text() == "open"
    browser.check_axe()
    page.get_by_label("Note (optional)").fill("<b>on it</b>")
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_url(f"**/alerts/{seeded.blocked_alert}")
    status = page.locator("#ack-status").inner_text()
    assert status.startswith("acknowledged by guest")
    assert "<b>on it</b>" in status


def test_verify_the_audit_chain(browser: Browser, seeded: Seeded) -> None:
    page = browser.page
    page.get_by_role("link", name="Audit", exact=True).click()
    page.wait_for_url("**/audit")
    assert page.locator("#verify-status").inner_text().startswith("Intact:")
    assert "console.sign_in" in page.locator("main table").inner_text()
    browser.check_axe()
    with page.expect_download() as download:
        page.get_by_role("link", name="Export the chain (JSON lines)").click()
    assert Path(download.value.path()).read_text().count('"mac"') > 0


def test_a_forged_cross_site_form_post_is_refused(browser: Browser, seeded: Seeded, canary: Canary) -> None:
    page = browser.page
    target = f"{seeded.server.url}/console/ns/guest/alerts/{seeded.accepted_alert}/ack"
    canary.forge_target = target
    # Another site (localhost is not 127.0.0.1) posts a form to the console in the signed-in browser.
    forge = canary.url.replace("127.0.0.1", "localhost") + "/forge"
    with page.expect_response(target) as answer:
        page.goto(forge)
    assert answer.value.status in (401, 403)
    page.goto(f"{seeded.server.url}/console/ns/guest/alerts/{seeded.accepted_alert}")
    assert page.locator("#ack-status").inner_text() == "open"  # still signed in, nothing changed


def test_nothing_ran_no_dialog_and_no_request_to_the_canary(browser: Browser, seeded: Seeded, canary: Canary) -> None:
    page = browser.page
    for path in ("", "/activations", f"/activations/{seeded.activation_id}", "/audit", "/actions/risky"):
        page.goto(f"{seeded.server.url}/console/ns/guest{path}")
    assert browser.dialogs == []
    assert canary.hits == []
    # Our own pages break no CSP rule (nothing inline, nothing external), so nothing is blocked.
    assert [m for m in browser.console_errors if "Content Security Policy" in m] == []
    assert [u for u in browser.foreign if "/forge" not in u] == []


def test_sign_out_ends_the_session(browser: Browser, seeded: Seeded) -> None:
    page = browser.page
    page.goto(f"{seeded.server.url}/console/ns/guest")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/login")
    page.goto(f"{seeded.server.url}/console/ns/guest/audit")
    assert page.url.endswith("/console/login")


def test_keyboard_only_sign_in_and_navigation(browser: Browser, seeded: Seeded) -> None:
    page = browser.page
    page.goto(f"{seeded.server.url}/console/login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "credential"
    page.keyboard.type(seeded.server.auth)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/ns/guest")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link moves focus to the content
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Shift+Tab")
    for _ in range(12):
        if page.evaluate("document.activeElement.textContent") == "Audit":
            break
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/ns/guest/audit")


def test_the_server_logged_no_unhandled_error(browser: Browser, seeded: Seeded) -> None:
    log = seeded.server.log()
    assert "unhandled_error" not in log
    assert "Traceback" not in log
