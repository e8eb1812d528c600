"""Threat: secrets leak into platform logs.

A representative slice of the suite's flows runs while every log channel is captured (structlog
event dictionaries, the stdlib root logger, and the process's stdout and stderr): deploying with
secret parameters, setting and rotating secrets, blocking invokes that read them, web actions
with require-whisk-auth, failed logins, decrypt failures, webhooks and /metrics with a token.
No test secret may appear anywhere in what was logged, in plain text or base64.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace

from starlette.testclient import TestClient
from structlog.testing import capture_logs

from stockade.api.app import Platform, create_app
from stockade.config import ObservabilitySettings, Settings
from stockade.store import open_sqlite_store
from stockade.testing import InProcessRunner

A = "/api/v1/namespaces/_/actions"
PARAM_SECRET = "param-secret-7f3a9c1e"
INIT_SECRET = "init-secret-52be0d44"
STORE_SECRET = "store-secret-v1-91c2"
ROTATED_SECRET = "store-secret-v2-e8d0"
WEB_SECRET = "web-auth-secret-3b6f"
WEBHOOK_SECRET = "webhook-secret-0c7d5a9e4f"
METRICS_TOKEN = "metrics-token-a1b2c3d4e5"
USES_SECRETS = """\
import os


def main(args):
    print("running with", len(args), "arguments")
    return {"has_secret": bool(os.environ.get("DB_PASSWORD")), "n": len(args.get("token", ""))}
"""


def _headers(token):
    return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}


def test_no_secret_reaches_any_log(tmp_path, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    settings = replace(
        Settings(data_dir=tmp_path),
        observability=ObservabilitySettings(
            metrics_token=METRICS_TOKEN,
            allow_private_webhook_hosts=True,
            allow_plain_http_webhooks=True,
            webhook_max_attempts=1,
        ),
    )
    keys = {}

    async def bootstrap(services):
        for ns in ("guest", "other"):
            keys[ns] = (await services.namespaces.create(ns)).token

    runner = InProcessRunner()
    platform = Platform(settings=settings, store=open_sqlite_store(tmp_path / "db.sqlite"), runner=runner)
    platform.on_open.append(bootstrap)
    with capture_logs() as events, TestClient(create_app(platform)) as client:
        guest = _headers(keys["guest"])
        # Secrets store: set, rotate.
        r = client.put("/api/v1/namespaces/_/secrets/db?overwrite=true", headers=guest, json={"value": STORE_SECRET})
        assert r.status_code == 200
        assert (
            client.post("/api/v1/namespaces/_/secrets/db", headers=guest, json={"value": ROTATED_SECRET}).status_code
            == 200
        )
        # Deploy with secret parameters (bound, init) and a secret reference; invoke it.
        body = {
            "exec": {"kind": "python:3", "code": USES_SECRETS},
            "parameters": [
                {"key": "token", "value": PARAM_SECRET},
                {"key": "INIT", "value": INIT_SECRET, "init": True},
            ],
            "annotations": [{"key": "secrets", "value": {"DB_PASSWORD": "db"}}, {"key": "tags", "value": ["billing"]}],
        }
        # The gate sees the plaintext parameters (a credential-looking one blocks); the risk is accepted.
        blocked = client.put(f"{A}/uses", headers=guest, json=body)
        assert blocked.status_code == 400
        assert client.put(f"{A}/uses?acceptRisk=test%20fixture", headers=guest, json=body).status_code == 200
        r = client.post(f"{A}/uses?blocking=true", headers=guest)
        assert r.status_code == 200
        _name, params, env = runner.calls[-1]
        assert params["token"] == PARAM_SECRET
        assert env["DB_PASSWORD"] == ROTATED_SECRET
        assert env["INIT"] == INIT_SECRET
        # A refused override of a sealed parameter carries the attempted value in the request only.
        final = {**body, "annotations": [*body["annotations"], {"key": "final", "value": True}]}
        assert client.put(f"{A}/uses?overwrite=true&acceptRisk=fixture", headers=guest, json=final).status_code == 200
        assert (
            client.post(f"{A}/uses?blocking=true", headers=guest, json={"token": PARAM_SECRET + "x"}).status_code == 400
        )
        # Web action with require-whisk-auth and a sealed parameter.
        web = {
            "exec": {"kind": "python:3", "code": "def main(a):\n    return {'body': 'ok'}\n"},
            "parameters": [{"key": "greeting", "value": PARAM_SECRET}],
            "annotations": [{"key": "web-export", "value": True}, {"key": "require-whisk-auth", "value": WEB_SECRET}],
        }
        assert client.put(f"{A}/hello", headers=guest, json=web).status_code == 200
        assert (
            client.get("/api/v1/web/guest/default/hello", headers={"X-Require-Whisk-Auth": WEB_SECRET}).status_code
            == 200
        )
        assert (
            client.get("/api/v1/web/guest/default/hello", headers={"X-Require-Whisk-Auth": WEB_SECRET[:-1]}).status_code
            == 401
        )
        # Failed logins: a real key's uuid with a wrong secret, and a real secret under a wrong uuid.
        uuid, secret = keys["guest"].split(":", 1)
        assert client.get(A, headers=_headers(f"{uuid}:{secret[:-2]}zz")).status_code == 401
        assert client.get(A, headers=_headers(f"00000000-0000-0000-0000-000000000000:{secret}")).status_code == 401
        # Webhook (undeliverable: nothing listens) and metrics with a token.
        hook = {"url": "http://127.0.0.1:9/hook", "secret": WEBHOOK_SECRET, "minSeverity": "low"}
        assert client.post("/api/v1/namespaces/_/alerts/webhooks", headers=guest, json=hook).status_code == 200
        rule = {"types": ["auth.failed", "request.*"], "threshold": 1}
        assert client.put("/api/v1/namespaces/_/alerts/rules/all", headers=guest, json=rule).status_code == 200
        assert client.get(A, headers=_headers(f"{uuid}:wrong")).status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200
        assert client.get("/metrics", headers={"Authorization": "Bearer " + METRICS_TOKEN[:-1]}).status_code == 401
        services = client.app.state.services  # type: ignore[attr-defined]
        client.portal.call(services.monitoring.settle)
        assert client.get("/api/v1/namespaces/_/events", headers=guest).status_code == 200
    captured = capfd.readouterr()
    logged = "\n".join(
        [json.dumps(events, default=repr), captured.out, captured.err, *(r.getMessage() for r in caplog.records)]
    )
    assert "secret.accessed" in logged, "the capture saw the platform's log events"
    assert "alert.raised" in logged
    secrets = [PARAM_SECRET, INIT_SECRET, STORE_SECRET, ROTATED_SECRET, WEB_SECRET, WEBHOOK_SECRET, METRICS_TOKEN]
    secrets += [keys["guest"].split(":", 1)[1], keys["other"].split(":", 1)[1]]
    for value in secrets:
        assert value not in logged, f"a test secret was logged: {value[:6]}…"
        assert base64.b64encode(value.encode()).decode()[:16] not in logged
    for token in keys.values():
        assert base64.b64encode(token.encode()).decode() not in logged
