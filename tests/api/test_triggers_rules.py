"""Triggers, rules and sequences over the REST API."""

import json
import time

T = "/api/v1/namespaces/_/triggers"
R = "/api/v1/namespaces/_/rules"
A = "/api/v1/namespaces/_/actions"
ACT = "/api/v1/namespaces/_/activations"
ECHO = {"exec": {"kind": "python:3", "code": "def main(a):\n    return a\n"}}


def wait_for(api, aid):
    for _ in range(200):
        r = api.get(f"{ACT}/{aid}")
        if r.status_code == 200:
            return r.json()
        time.sleep(0.02)
    raise AssertionError("no activation")


def test_rule_lifecycle_and_fire(api):
    api.put(f"{A}/echo", json=ECHO)
    api.put(f"{T}/t", json={"parameters": [{"key": "from", "value": "trigger"}]})
    r = api.put(f"{R}/r", json={"trigger": "/_/t", "action": "/_/echo"})
    assert r.status_code == 200
    assert r.json()["status"] == "active"
    assert r.json()["trigger"] == {"path": "guest", "name": "t"}
    trig = api.get(f"{T}/t").json()
    assert trig["rules"]["guest/r"]["status"] == "active"
    fired = api.post(f"{T}/t", json={"payload": 1})
    assert fired.status_code == 202
    record = wait_for(api, fired.json()["activationId"])
    assert record["name"] == "t"
    assert "end" not in record
    entry = json.loads(record["logs"][0])
    assert entry["statusCode"] == 0
    assert entry["success"] is True
    assert entry["rule"] == "guest/r"
    assert entry["action"] == "guest/echo"
    action_record = wait_for(api, entry["activationId"])
    result = action_record["response"]["result"]
    assert result["payload"] == 1
    assert result["from"] == "trigger"
    assert "__ow_headers" in result
    assert "authorization" not in result["__ow_headers"]
    assert "cause" not in action_record


def test_disable_rule_then_fire_is_204(api):
    api.put(f"{A}/echo", json=ECHO)
    api.put(f"{T}/t", json={})
    api.put(f"{R}/r", json={"trigger": "/_/t", "action": "/_/echo"})
    r = api.post(f"{R}/r", json={"status": "inactive"})
    assert r.status_code == 200
    assert r.text == "OK"
    assert api.get(f"{R}/r").json()["status"] == "inactive"
    assert api.post(f"{T}/t", json={}).status_code == 204
    assert api.post(f"{R}/r", json={"status": "bogus"}).status_code == 400
    api.post(f"{R}/r", json={"status": "active"})
    assert api.post(f"{T}/t", json={}).status_code == 202


def test_rule_errors(api):
    api.put(f"{T}/t", json={})
    r = api.put(f"{R}/r", json={"trigger": "/_/t", "action": "/_/missing"})
    assert r.status_code == 400
    assert r.json()["error"] == "action /guest/missing does not exist"
    r = api.put(f"{R}/r", json={"trigger": "/_/nope", "action": "/_/x"})
    assert r.json()["error"] == "trigger /guest/nope does not exist"
    r = api.put(f"{R}/r", json={})
    assert r.json()["error"] == "rule requires a valid trigger and a valid action"
    assert api.get(f"{R}/r").status_code == 404


def test_rule_delete_and_list(api):
    api.put(f"{A}/echo", json=ECHO)
    api.put(f"{T}/t", json={})
    api.put(f"{R}/r", json={"trigger": "/_/t", "action": "/_/echo"})
    listed = api.get(R).json()
    assert "status" not in listed[0]
    r = api.delete(f"{R}/r")
    assert r.json()["status"] == "inactive"
    assert "rules" not in api.get(f"{T}/t").json()


def test_trigger_delete_leaves_rule_inactive(api):
    api.put(f"{A}/echo", json=ECHO)
    api.put(f"{T}/t", json={})
    api.put(f"{R}/r", json={"trigger": "/_/t", "action": "/_/echo"})
    assert api.delete(f"{T}/t").status_code == 200
    assert api.get(f"{R}/r").json()["status"] == "inactive"
    r = api.post(f"{R}/r", json={"status": "active"})
    assert r.status_code == 404
    assert r.json()["error"] == "Only rules with existing triggers can be activated"


def test_fire_missing_trigger_404_and_feed_validation(api):
    assert api.post(f"{T}/none", json={}).status_code == 404
    r = api.put(f"{T}/f", json={"annotations": [{"key": "feed", "value": "a//b!"}]})
    assert r.status_code == 400
    assert r.json()["error"] == "Feed name is not valid"


def test_sequence_pipes_results_and_records_children(api):
    api.put(
        f"{A}/one", json={"exec": {"kind": "python:3", "code": "def main(a):\n    return {'n': a.get('n', 0) + 1}\n"}}
    )
    api.put(f"{A}/two", json={"exec": {"kind": "python:3", "code": "def main(a):\n    return {'n': a['n'] * 10}\n"}})
    r = api.put(f"{A}/seq", json={"exec": {"kind": "sequence", "components": ["/_/one", "/guest/two"]}})
    assert r.status_code == 200, r.text
    assert r.json()["exec"]["components"] == ["/guest/one", "/guest/two"]
    assert r.json()["parameters"] == [{"key": "_actions", "value": ["/guest/one", "/guest/two"]}]
    out = api.post(f"{A}/seq?blocking=true", json={"n": 1})
    assert out.status_code == 200
    record = out.json()
    assert record["response"]["result"] == {"n": 20}
    assert len(record["logs"]) == 2
    ann = {a["key"]: a["value"] for a in record["annotations"]}
    assert ann["kind"] == "sequence"
    assert ann["topmost"] is True
    child = api.get(f"{ACT}/{record['logs'][0]}").json()
    assert child["cause"] == record["activationId"]
    assert {a["key"]: a["value"] for a in child["annotations"]}["causedBy"] == "sequence"


def test_sequence_errors(api):
    api.put(f"{A}/one", json=ECHO)
    r = api.put(f"{A}/seq", json={"exec": {"kind": "sequence", "components": ["/_/one", "/_/missing"]}})
    assert r.status_code == 400
    assert r.json()["error"] == "Sequence component does not exist."
    r = api.put(f"{A}/seq", json={"exec": {"kind": "sequence", "components": []}})
    assert r.json()["error"] == "No component specified for the sequence."
    api.put(f"{A}/seq", json={"exec": {"kind": "sequence", "components": ["/_/one"]}})
    r = api.put(f"{A}/seq?overwrite=true", json={"exec": {"kind": "sequence", "components": ["/_/seq"]}})
    assert r.json()["error"] == "Sequence may not refer to itself."
    api.put(f"{A}/outer", json={"exec": {"kind": "sequence", "components": ["/_/seq"]}})
    r = api.put(f"{A}/seq?overwrite=true", json={"exec": {"kind": "sequence", "components": ["/_/outer"]}})
    assert r.json()["error"] == "Sequence may not refer to itself."


def test_sequence_stops_at_first_error(api):
    api.put(f"{A}/bad", json={"exec": {"kind": "python:3", "code": "def main(a):\n    return {'error': 'stop'}\n"}})
    api.put(f"{A}/never", json=ECHO)
    api.put(f"{A}/seq", json={"exec": {"kind": "sequence", "components": ["/_/bad", "/_/never"]}})
    out = api.post(f"{A}/seq?blocking=true", json={})
    assert out.status_code == 502
    assert out.json()["response"]["result"] == {"error": "stop"}
    assert len(out.json()["logs"]) == 1


def test_too_many_actions_in_sequence(api_factory, make_settings):
    api = api_factory(make_settings(max_sequence_length=2))
    api.put(f"{A}/one", json=ECHO)
    r = api.put(f"{A}/seq", json={"exec": {"kind": "sequence", "components": ["/_/one"] * 3}})
    assert r.status_code == 400
    assert r.json()["error"] == "Too many actions in the sequence."
