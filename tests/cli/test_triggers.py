"""`stockade trigger ...`: create, update, fire, get, list, delete."""

from __future__ import annotations

TRIGGERS = "/api/v1/namespaces/_/triggers"
ACTIVATION_ID = "f" * 32


def test_create(cli, api, tmp_path):
    params = tmp_path / "p.json"
    params.write_text('{"city": "Paris"}')
    result = cli("trigger", "create", "tick", "-P", str(params), "-a", "feed", "/whisk.system/alarms/alarm")
    assert result.out == "ok: created trigger tick\n"
    assert (api.last.method, api.last.path, api.last.query) == ("PUT", f"{TRIGGERS}/tick", {})
    assert api.last.body == {
        "parameters": [{"key": "city", "value": "Paris"}],
        "annotations": [{"key": "feed", "value": "/whisk.system/alarms/alarm"}],
    }


def test_update(cli, api):
    result = cli("trigger", "update", "/guest/tick", "-p", "n", "1")
    assert result.out == "ok: updated trigger /guest/tick\n"
    assert (api.last.path, api.last.query) == ("/api/v1/namespaces/guest/triggers/tick", {"overwrite": "true"})
    assert api.last.body == {"parameters": [{"key": "n", "value": 1}]}


def test_fire_posts_the_payload_and_prints_the_id(cli, api):
    api.reply(202, {"activationId": ACTIVATION_ID})
    result = cli("trigger", "fire", "tick", "-p", "n", "1")
    assert (api.last.method, api.last.path, api.last.body) == ("POST", f"{TRIGGERS}/tick", {"n": 1})
    assert result.out == f"ok: triggered /_/tick with id {ACTIVATION_ID}\n"


def test_fire_without_active_rules_says_so(cli, api):
    api.reply(204)
    result = cli("trigger", "fire", "tick")
    assert result.code == 0
    assert api.last.body == {}
    assert result.out == "ok: triggered /_/tick, but it has no active rules (no activation recorded)\n"


def test_fire_json(cli, api):
    api.reply(202, {"activationId": ACTIVATION_ID})
    assert cli("trigger", "fire", "tick", "--json").json == {"activationId": ACTIVATION_ID}


def test_fire_missing_trigger_exits_4(cli, api):
    api.error(404, "The requested resource does not exist.")
    assert cli("trigger", "fire", "nope").code == 4


TRIGGER = {
    "namespace": "guest",
    "name": "tick",
    "version": "0.0.2",
    "parameters": [],
    "annotations": [],
    "limits": {},
    "rules": {"guest/r1": {"action": {"path": "guest", "name": "hello"}, "status": "active"}},
    "updated": 1700000000000,
}


def test_get_prints_a_summary_with_rules(cli, api):
    api.reply(200, TRIGGER)
    result = cli("trigger", "get", "tick")
    assert (api.last.method, api.last.path) == ("GET", f"{TRIGGERS}/tick")
    assert result.out.splitlines() == [
        "trigger /guest/tick",
        "  version:     0.0.2",
        "  updated:     2023-11-14 22:13:20",
        "  parameters:  (none)",
        "  annotations: (none)",
        "  rules:       guest/r1 -> /guest/hello (active)",
    ]


def test_list(cli, api):
    api.reply(200, [{"namespace": "guest", "name": "tick", "version": "0.0.1", "updated": 1700000000000}])
    result = cli("trigger", "list", "--skip", "3")
    assert (api.last.path, api.last.query) == (TRIGGERS, {"skip": "3"})
    assert result.out.splitlines() == [
        "NAME         VERSION  UPDATED",
        "/guest/tick  0.0.1    2023-11-14 22:13:20",
    ]


def test_delete(cli, api):
    result = cli("trigger", "delete", "tick")
    assert (api.last.method, api.last.path) == ("DELETE", f"{TRIGGERS}/tick")
    assert result.out == "ok: deleted trigger tick\n"


def test_get_and_list_json(cli, api):
    api.reply(200, TRIGGER)
    assert cli("trigger", "get", "tick", "--json").json == TRIGGER
    api.reply(200, [TRIGGER])
    assert cli("trigger", "list", "--json").json == [TRIGGER]


def test_get_without_rules(cli, api):
    api.reply(200, {**TRIGGER, "rules": {}})
    assert "  rules:       (none)" in cli("trigger", "get", "tick").out.splitlines()
