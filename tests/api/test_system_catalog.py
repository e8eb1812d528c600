"""The system namespace ``whisk.system`` with its ``utils`` and ``samples`` catalog (issue 14):
readable and invocable from every namespace, bindable, usable in sequences and rules, and never
writable by a tenant."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from stockade.services.system import SYSTEM_NAMESPACE, load_catalog

SYS = f"/api/v1/namespaces/{SYSTEM_NAMESPACE}"
A = "/api/v1/namespaces/_/actions"
P = "/api/v1/namespaces/_/packages"
CATALOG = Path(__file__).resolve().parents[2] / "src" / "stockade" / "runtimes" / "catalog" / "catalog.json"


@pytest.fixture
def sys_api(api):
    services = api.client.app.state.services
    written = api.client.portal.call(services.system.install)
    assert "utils/sort" in written
    assert api.client.portal.call(services.system.install) == []  # idempotent: nothing changed
    return api


def _result(api, path, ns="guest", **params):
    r = api.post(f"{path}?blocking=true&result=true", ns=ns, json=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_catalog_is_listed_and_readable_from_a_tenant(sys_api):
    names = {p["name"]: p for p in sys_api.get(f"{SYS}/packages").json()}
    assert set(names) == {"utils", "samples"}
    assert all(p["publish"] is True for p in names.values())
    utils = sys_api.get(f"{SYS}/packages/utils", ns="other").json()
    assert {"echo", "cat", "sort", "head", "split", "smash", "date", "namespace", "hosturl"} <= {
        a["name"] for a in utils["actions"]
    }
    action = sys_api.get(f"{SYS}/actions/utils/sort?code=false").json()
    assert action["namespace"] == "whisk.system/utils"
    annotations = {a["key"]: a["value"] for a in action["annotations"]}
    assert annotations["description"] == "Sorts an array"
    assert annotations["parameters"][0]["name"] == "lines"


@pytest.mark.parametrize(("package", "name"), [(a.package, a.name) for a in load_catalog()[1]])
def test_catalog_samples_give_the_documented_output(sys_api, package, name):
    spec = json.loads(CATALOG.read_text())["packages"][package]["actions"][name]
    if name in ("date", "namespace", "hosturl"):
        pytest.skip("depends on the clock or the caller (tested below)")
    out = _result(sys_api, f"{SYS}/actions/{package}/{name}", **spec.get("sampleInput", {}))
    assert out == spec["sampleOutput"]


def test_clock_dependent_and_failing_utils(sys_api):
    # (utils/namespace reads __OW_NAMESPACE, which only a real sandbox sets: tests/e2e covers it.)
    date = _result(sys_api, f"{SYS}/actions/utils/date")["date"]
    assert date.endswith("Z")
    assert date[4] == "-"
    assert "T" in date
    r = sys_api.post(f"{SYS}/actions/utils/smash?blocking=true&result=true", json={"a": 1})
    assert r.status_code == 502
    assert r.json() == {"error": "Expected an argument '$fieldName' of type 'string'."}


def test_invoking_a_catalog_action_records_the_activation_for_the_caller(sys_api):
    r = sys_api.post(f"{SYS}/actions/utils/sort?blocking=true", ns="other", json={"lines": ["b", "a"]})
    assert r.status_code == 200
    body = r.json()
    assert body["namespace"] == "other"
    assert body["response"]["result"] == {"lines": ["a", "b"], "length": 2}
    assert sys_api.get(f"/api/v1/namespaces/_/activations/{body['activationId']}", ns="other").status_code == 200


def test_tenants_cannot_write_to_the_system_namespace(sys_api):
    code = {"exec": {"kind": "python:3", "code": "def main(a):\n    return {'owned': True}\n"}}
    attempts = [
        ("PUT", f"{SYS}/actions/utils/echo?overwrite=true", code),
        ("PUT", f"{SYS}/actions/utils/new", code),
        ("PUT", f"{SYS}/actions/evil", code),
        ("DELETE", f"{SYS}/actions/utils/echo", None),
        ("PUT", f"{SYS}/packages/utils?overwrite=true", {"publish": False}),
        ("PUT", f"{SYS}/packages/mine", {}),
        ("DELETE", f"{SYS}/packages/samples?force=true", None),
        ("PUT", f"{SYS}/triggers/t", {}),
        ("PUT", f"{SYS}/rules/r", {"trigger": "/whisk.system/t", "action": "/whisk.system/utils/echo"}),
        ("PUT", "/api/v1/namespaces/whisk.system%2Futils/actions/echo?overwrite=true", code),
    ]
    for ns in ("guest", "other"):
        for method, path, body in attempts:
            r = sys_api.request(method, path, ns=ns, json=body)
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            assert set(r.json()) == {"error", "code"}
    assert _result(sys_api, f"{SYS}/actions/utils/echo", x=1) == {"x": 1}
    assert sys_api.get(f"{SYS}/actions/utils/new").status_code == 404  # nothing was written
    assert sys_api.get(f"{SYS}/actions/evil").status_code == 403  # outside a public package: no existence leak
    assert {p["name"] for p in sys_api.get(f"{SYS}/packages").json()} == {"utils", "samples"}


def test_sequence_over_catalog_actions(sys_api):
    seq = {"exec": {"kind": "sequence", "components": ["/whisk.system/utils/split", "/whisk.system/utils/sort"]}}
    assert sys_api.put(f"{A}/lines", json=seq).status_code == 200
    assert _result(sys_api, f"{A}/lines", payload="c,a,b", separator=",") == {"lines": ["a", "b", "c"], "length": 3}


def test_binding_the_catalog(sys_api):
    r = sys_api.put(f"{P}/myutils", ns="other", json={"binding": {"namespace": "whisk.system", "name": "utils"}})
    assert r.status_code == 200, r.text
    assert _result(sys_api, f"{A}/myutils/head", ns="other", lines=[3, 2, 1], num=2) == {"lines": [3, 2], "num": 2}
    listed = sys_api.get(f"{A}/myutils/", ns="other").json()
    assert "sort" in {a["name"] for a in listed}


def test_rule_firing_a_catalog_action(sys_api):
    assert sys_api.put("/api/v1/namespaces/_/triggers/tick", json={}).status_code == 200
    r = sys_api.put(
        "/api/v1/namespaces/_/rules/echo-tick", json={"trigger": "/_/tick", "action": "/whisk.system/utils/echo"}
    )
    assert r.status_code == 200, r.text
    fired = sys_api.post("/api/v1/namespaces/_/triggers/tick", json={"hello": "rule"})
    assert fired.status_code == 202, fired.text
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listed = sys_api.get("/api/v1/namespaces/_/activations?docs=true").json()
        results = [a["response"]["result"] for a in listed if a.get("response")]
        if {"hello": "rule"} in results:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the rule did not run utils/echo: {listed}")


def test_a_refused_catalog_action_does_not_stop_the_install(api, monkeypatch):
    from stockade.errors import DeployBlockedError

    services = api.client.app.state.services
    original = services.actions.put

    async def refuse_sort(identity, path, body, **kw):
        if path.name == "sort":
            raise DeployBlockedError("blocked for the test")
        return await original(identity, path, body, **kw)

    monkeypatch.setattr(services.actions, "put", refuse_sort)
    written = api.client.portal.call(services.system.install)
    assert "utils/echo" in written
    assert "utils/sort" not in written
    monkeypatch.setattr(services.actions, "put", original)
    assert api.client.portal.call(services.system.install) == ["utils/sort"]
