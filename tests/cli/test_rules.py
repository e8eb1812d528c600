"""`stockade rule ...`: create, update, enable, disable, get, list, delete."""

from __future__ import annotations

import pytest

RULES = "/api/v1/namespaces/_/rules"


def test_create_sends_fully_qualified_trigger_and_action(cli, api):
    result = cli("rule", "create", "r1", "tick", "pkg/hello")
    assert result.out == "ok: created rule r1\n"
    assert (api.last.method, api.last.path, api.last.query) == ("PUT", f"{RULES}/r1", {})
    assert api.last.body == {"trigger": "/_/tick", "action": "/_/pkg/hello"}


def test_update_overwrites_and_keeps_explicit_namespaces(cli, api):
    result = cli("rule", "update", "r1", "/guest/tick", "/guest/hello", "-a", "note", "x")
    assert result.out == "ok: updated rule r1\n"
    assert api.last.query == {"overwrite": "true"}
    assert api.last.body == {
        "trigger": "/guest/tick",
        "action": "/guest/hello",
        "annotations": [{"key": "note", "value": "x"}],
    }


def test_create_with_missing_action_exits_2(cli, api):
    api.error(400, "action /guest/x does not exist", "rr")
    result = cli("rule", "create", "r1", "tick", "x")
    assert result.code == 2
    assert result.err == "error: action /guest/x does not exist (code: rr)\n"


@pytest.mark.parametrize(
    ("verb", "status", "message"), [("enable", "active", "enabled"), ("disable", "inactive", "disabled")]
)
def test_enable_and_disable_post_the_status(cli, api, verb, status, message):
    api.reply(200, text="OK")
    result = cli("rule", verb, "r1")
    assert (api.last.method, api.last.path, api.last.body) == ("POST", f"{RULES}/r1", {"status": status})
    assert result.out == f"ok: {message} rule r1\n"


def test_enable_json_prints_the_plain_text_body(cli, api):
    api.reply(200, text="OK")
    assert cli("--json", "rule", "enable", "r1").out == "OK\n"


def test_enable_without_trigger_exits_4(cli, api):
    api.error(404, "Only rules with existing triggers can be activated")
    assert cli("rule", "enable", "r1").code == 4


RULE = {
    "namespace": "guest",
    "name": "r1",
    "version": "0.0.1",
    "status": "inactive",
    "trigger": {"path": "guest", "name": "tick"},
    "action": {"path": "guest/pkg", "name": "hello"},
    "updated": 1700000000000,
}


def test_get_prints_status(cli, api):
    api.reply(200, RULE)
    result = cli("rule", "get", "r1")
    assert (api.last.method, api.last.path) == ("GET", f"{RULES}/r1")
    assert result.out.splitlines() == [
        "rule /guest/r1",
        "  status:  inactive",
        "  trigger: /guest/tick",
        "  action:  /guest/pkg/hello",
        "  version: 0.0.1",
        "  updated: 2023-11-14 22:13:20",
    ]


def test_list(cli, api):
    api.reply(200, [{k: v for k, v in RULE.items() if k != "status"}])
    result = cli("rule", "list", "--limit", "1")
    assert (api.last.path, api.last.query) == (RULES, {"limit": "1"})
    assert result.out.splitlines() == [
        "NAME       TRIGGER      ACTION            UPDATED",
        "/guest/r1  /guest/tick  /guest/pkg/hello  2023-11-14 22:13:20",
    ]


def test_delete(cli, api):
    api.reply(200, RULE)
    result = cli("rule", "delete", "r1")
    assert (api.last.method, api.last.path) == ("DELETE", f"{RULES}/r1")
    assert result.out == "ok: deleted rule r1\n"


@pytest.mark.parametrize("verb", ["get", "list"])
def test_json_mode_prints_raw_bodies(cli, api, verb):
    body = RULE if verb == "get" else [RULE]
    api.reply(200, body)
    args = ["rule", verb, "r1"] if verb == "get" else ["rule", verb]
    assert cli(*args, "--json").json == body
