"""`stockade action ...`: requests sent and output printed."""

from __future__ import annotations

import base64
import json

import pytest

from .conftest import basic_auth

ACTIVATION_ID = "0123456789abcdef0123456789abcdef"
ACTIONS = "/api/v1/namespaces/_/actions"


@pytest.fixture
def hello_py(tmp_path):
    path = tmp_path / "hello.py"
    path.write_text("def main(args):\n    return {'greeting': 'hi'}\n")
    return path


@pytest.fixture
def hello_js(tmp_path):
    path = tmp_path / "hello.js"
    path.write_text("function main() { return {}; }\n")
    return path


@pytest.fixture
def archive(tmp_path):
    path = tmp_path / "bundle.zip"
    path.write_bytes(b"PK\x03\x04\x00\xff binary")
    return path


def test_create_puts_python_code_without_overwrite(cli, api, hello_py):
    result = cli("action", "create", "hello", str(hello_py))
    assert result.code == 0, result.err
    assert result.out == "ok: created action hello\n"
    call = api.last
    assert (call.method, call.path, call.query) == ("PUT", f"{ACTIONS}/hello", {})
    assert call.body == {"exec": {"kind": "python:3", "code": hello_py.read_text(), "binary": False}}
    assert call.headers["authorization"] == basic_auth()


def test_update_puts_with_overwrite(cli, api, hello_js):
    result = cli("action", "update", "pkg/hello", str(hello_js))
    assert result.out == "ok: updated action pkg/hello\n"
    assert api.last.path == f"{ACTIONS}/pkg/hello"
    assert api.last.query == {"overwrite": "true"}
    assert api.last.body["exec"]["kind"] == "nodejs:default"


def test_create_sends_parameters_annotations_limits_and_main(cli, api, hello_py, tmp_path):
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"from_file": 1, "n": "file"}))
    cli(
        "action", "create", "/guest/pkg/hello", str(hello_py),
        "--kind", "python:3.11", "--main", "handler",
        "-P", str(params), "-p", "n", "5", "-p", "name", "Ada",
        "-a", "description", "greets", "-a", "conf", '{"x":true}',
        "--timeout", "3000", "--memory", "128", "--logsize", "1",
    )  # fmt: skip
    body = api.last.body
    assert api.last.path == "/api/v1/namespaces/guest/actions/pkg/hello"
    assert body["exec"] == {"kind": "python:3.11", "code": hello_py.read_text(), "binary": False, "main": "handler"}
    assert body["parameters"] == [
        {"key": "from_file", "value": 1},
        {"key": "n", "value": 5},
        {"key": "name", "value": "Ada"},
    ]
    assert body["annotations"] == [{"key": "description", "value": "greets"}, {"key": "conf", "value": {"x": True}}]
    assert body["limits"] == {"timeout": 3000, "memory": 128, "logs": 1}


def test_zip_is_sent_base64_with_binary_and_needs_kind(cli, api, archive):
    result = cli("action", "create", "bundle", str(archive), "--kind", "python:3")
    assert result.code == 0
    code = api.last.body["exec"]["code"]
    assert base64.b64decode(code) == archive.read_bytes()
    assert api.last.body["exec"]["binary"] is True


def test_zip_without_kind_is_a_usage_error(cli, api, archive):
    result = cli("action", "create", "bundle", str(archive))
    assert result.code == 2
    assert result.err == "error: --kind is required for .zip actions (e.g. --kind python:3)\n"
    assert api.calls == []


def test_unknown_extension_needs_kind(cli, api, tmp_path):
    path = tmp_path / "x.rb"
    path.write_text("puts 1")
    assert cli("action", "create", "x", str(path)).code == 2
    assert cli("action", "create", "x", str(path), "--kind", "ruby:2.5").code == 0
    assert api.last.body["exec"]["kind"] == "ruby:2.5"


def test_missing_file_is_a_usage_error(cli, api, tmp_path):
    result = cli("action", "create", "x", str(tmp_path / "nope.py"))
    assert result.code == 2
    assert "cannot read" in result.err
    assert api.calls == []


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("true", {"web-export": True, "raw-http": False, "final": True}),
        ("yes", {"web-export": True, "raw-http": False, "final": True}),
        ("raw", {"web-export": True, "raw-http": True, "final": True}),
        ("false", {"web-export": False, "raw-http": False, "final": False}),
    ],
)
def test_web_flag_sets_web_annotations(cli, api, hello_py, mode, expected):
    cli("action", "create", "hello", str(hello_py), "--web", mode, "-a", "web-export", "false")
    annotations = {kv["key"]: kv["value"] for kv in api.last.body["annotations"]}
    assert annotations == expected


def test_sequence_builds_fully_qualified_components(cli, api):
    result = cli("action", "create", "seq", "--sequence", "a, pkg/b,/other/c")
    assert result.code == 0
    assert api.last.body == {"exec": {"kind": "sequence", "components": ["/_/a", "/_/pkg/b", "/other/c"]}}


def test_sequence_and_file_together_are_refused(cli, api, hello_py):
    assert cli("action", "create", "seq", str(hello_py), "--sequence", "a").code == 2
    assert api.calls == []


def test_create_without_code_is_refused(cli, api):
    result = cli("action", "create", "hello")
    assert result.code == 2
    assert "needs FILE, --sequence or --copy" in result.err


def test_update_without_file_sends_only_what_changed(cli, api):
    cli("action", "update", "hello", "-p", "x", "1")
    assert api.last.body == {"parameters": [{"key": "x", "value": 1}]}
    assert api.last.query == {"overwrite": "true"}


def test_update_with_kind_but_no_file_is_refused(cli, api):
    assert cli("action", "update", "hello", "--kind", "python:3").code == 2
    assert api.calls == []


def test_create_json_mode_prints_the_entity(cli, api, hello_py):
    api.reply(200, {"name": "hello", "version": "0.0.1"})
    result = cli("--json", "action", "create", "hello", str(hello_py))
    assert result.json == {"name": "hello", "version": "0.0.1"}


def test_create_conflict_exits_5(cli, api, hello_py):
    api.error(409, "resource already exists", "rid9")
    result = cli("action", "create", "hello", str(hello_py))
    assert result.code == 5
    assert result.err == "error: resource already exists (code: rid9)\n"
    assert result.out == ""


ACTION = {
    "namespace": "guest/pkg",
    "name": "hello",
    "version": "0.0.3",
    "publish": False,
    "exec": {"kind": "python:3.11", "code": "def main(a):\n    return a\n", "binary": False},
    "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
    "parameters": [{"key": "name", "value": "Ada"}],
    "annotations": [{"key": "web-export", "value": True}, {"key": "exec", "value": "python:3.11"}],
    "updated": 1700000000000,
}


def test_get_asks_without_code_and_prints_a_summary(cli, api):
    api.reply(200, {**ACTION, "exec": {"kind": "python:3.11", "binary": False}})
    result = cli("action", "get", "pkg/hello")
    assert (api.last.method, api.last.path, api.last.query) == ("GET", f"{ACTIONS}/pkg/hello", {"code": "false"})
    assert result.out.splitlines() == [
        "action /guest/pkg/hello",
        "  kind:        python:3.11",
        "  version:     0.0.3",
        "  updated:     2023-11-14 22:13:20",
        "  shared:      no",
        "  web:         yes",
        "  limits:      timeout 60000 ms, memory 256 MB, logs 10 MB",
        '  parameters:  name="Ada"',
        '  annotations: web-export=true, exec="python:3.11"',
    ]


def test_get_with_code_prints_the_code(cli, api):
    api.reply(200, ACTION)
    result = cli("action", "get", "pkg/hello", "--code")
    assert api.last.query == {"code": "true"}
    assert result.out.endswith("\n\ndef main(a):\n    return a\n")


def test_get_json_prints_the_raw_entity(cli, api):
    api.reply(200, ACTION)
    result = cli("action", "get", "pkg/hello", "--json", "--code")
    assert result.json == ACTION


def test_list_prints_a_table(cli, api):
    api.reply(
        200,
        [
            {"namespace": "guest", "name": "a", "version": "0.0.1", "annotations": [{"key": "exec", "value": "nodejs:20"}],
             "exec": {"binary": False}, "updated": 1700000000000},
            {"namespace": "guest/pkg", "name": "b", "version": "0.0.2", "annotations": [], "exec": {"binary": True},
             "updated": 1700000060000},
        ],
    )  # fmt: skip
    result = cli("action", "list", "--limit", "5", "--skip", "10")
    assert (api.last.path, api.last.query) == (ACTIONS, {"limit": "5", "skip": "10"})
    assert result.out.splitlines() == [
        "NAME          KIND       VERSION  UPDATED",
        "/guest/a      nodejs:20  0.0.1    2023-11-14 22:13:20",
        "/guest/pkg/b             0.0.2    2023-11-14 22:14:20",
    ]


def test_list_of_a_package_uses_the_trailing_slash(cli, api):
    api.reply(200, [])
    cli("action", "list", "pkg")
    assert api.last.path == f"{ACTIONS}/pkg/"
    api.reply(200, [])
    cli("action", "list", "/whisk.system/utils")
    assert api.last.path == "/api/v1/namespaces/whisk.system/actions/utils/"
    api.reply(200, [])
    cli("action", "list", "/whisk.system")
    assert api.last.path == "/api/v1/namespaces/whisk.system/actions"


def test_delete(cli, api):
    result = cli("action", "delete", "/guest/my action")
    assert (api.last.method, api.last.path) == ("DELETE", "/api/v1/namespaces/guest/actions/my%20action")
    assert result.out == "ok: deleted action /guest/my action\n"


def test_delete_missing_exits_4(cli, api):
    api.error(404, "The requested resource does not exist.", "r404")
    result = cli("action", "delete", "nope")
    assert result.code == 4
    assert result.err == "error: The requested resource does not exist. (code: r404)\n"


def test_invoke_is_non_blocking_by_default_and_prints_the_id(cli, api, tmp_path):
    params = tmp_path / "in.json"
    params.write_text('{"a": 1}')
    api.reply(202, {"activationId": ACTIVATION_ID})
    result = cli("action", "invoke", "hello", "-P", str(params), "-p", "b", "two")
    call = api.last
    assert (call.method, call.path, call.query) == ("POST", f"{ACTIONS}/hello", {})
    assert call.body == {"a": 1, "b": "two"}
    assert result.code == 0
    assert result.out == f"ok: invoked /_/hello with id {ACTIVATION_ID}\n"


def test_invoke_without_params_sends_an_empty_object(cli, api):
    api.reply(202, {"activationId": ACTIVATION_ID})
    cli("action", "invoke", "hello")
    assert api.last.body == {}


RECORD = {
    "activationId": ACTIVATION_ID,
    "name": "hello",
    "namespace": "guest",
    "response": {"status": "success", "success": True, "result": {"greeting": "hi"}},
    "logs": [],
}


def test_blocking_invoke_prints_the_activation(cli, api):
    api.reply(200, RECORD)
    result = cli("action", "invoke", "hello", "--blocking")
    assert api.last.query == {"blocking": "true"}
    first, rest = result.out.split("\n", 1)
    assert first == f"ok: invoked /_/hello with id {ACTIVATION_ID}"
    assert json.loads(rest) == RECORD


def test_result_flag_implies_blocking_and_prints_only_the_result(cli, api):
    api.reply(200, {"greeting": "hi"})
    result = cli("action", "invoke", "hello", "-r")
    assert api.last.query == {"blocking": "true", "result": "true"}
    assert result.json == {"greeting": "hi"}
    assert result.code == 0


def test_failed_blocking_invoke_prints_the_record_and_exits_1(cli, api):
    failed = {**RECORD, "response": {"status": "application error", "success": False, "result": {"error": "x"}}}
    api.reply(502, failed, headers={"X-Request-ID": "rid", "x-openwhisk-activation-id": ACTIVATION_ID})
    result = cli("action", "invoke", "hello", "-b")
    assert result.code == 1
    assert result.json == failed
    assert result.err == (
        f"error: action /_/hello failed with status 'application error' (activation id {ACTIVATION_ID})\n"
    )


def test_failed_blocking_invoke_with_result_prints_the_error_result(cli, api):
    api.reply(502, {"error": "x"}, headers={"X-Request-ID": "rid", "x-openwhisk-activation-id": ACTIVATION_ID})
    result = cli("action", "invoke", "hello", "-r")
    assert result.code == 1
    assert result.json == {"error": "x"}
    assert "failed" in result.err


def test_whisk_internal_error_on_blocking_invoke_exits_7_with_the_record(cli, api):
    failed = {**RECORD, "response": {"status": "whisk internal error", "success": False, "result": {"error": "x"}}}
    api.reply(500, failed)
    result = cli("action", "invoke", "hello", "-b")
    assert result.code == 7
    assert result.json == failed
    assert "whisk internal error" in result.err


def test_gateway_error_envelope_is_an_error_not_a_failed_activation(cli, api):
    api.error(502, "upstream broke", "rid5")
    result = cli("action", "invoke", "hello", "-b")
    assert result.code == 7
    assert result.out == ""
    assert result.err == "error: upstream broke (code: rid5)\n"


def test_blocking_invoke_that_outlasts_the_wait_prints_the_id(cli, api):
    api.reply(202, {"activationId": ACTIVATION_ID})
    result = cli("action", "invoke", "hello", "-b")
    assert result.code == 0
    assert result.out == f"ok: invoked /_/hello, but the request has not yet finished, with id {ACTIVATION_ID}\n"


def test_invoke_json_mode_prints_raw_response(cli, api):
    api.reply(202, {"activationId": ACTIVATION_ID})
    assert cli("--json", "action", "invoke", "hello").json == {"activationId": ACTIVATION_ID}


@pytest.mark.parametrize(("status", "code"), [(403, 3), (429, 6), (413, 2)])
def test_invoke_refusals_map_to_exit_codes(cli, api, status, code):
    api.error(status, "refused")
    assert cli("action", "invoke", "hello").code == code


def test_get_of_a_sequence_shows_components_and_binary_code_is_not_dumped(cli, api):
    api.reply(200, {**ACTION, "exec": {"kind": "sequence", "components": ["/guest/a", "/guest/b"]}})
    assert "  components:  /guest/a, /guest/b" in cli("action", "get", "seq").out.splitlines()
    api.reply(200, {**ACTION, "exec": {"kind": "python:3", "code": "UEsDBA==", "binary": True, "main": "run"}})
    out = cli("action", "get", "zipped", "--code").out
    assert "  main:        run" in out.splitlines()
    assert out.endswith("\n(binary code: 8 base64 characters)\n")


def test_get_of_a_raw_web_action(cli, api):
    annotations = [{"key": "web-export", "value": True}, {"key": "raw-http", "value": True}]
    api.reply(200, {**ACTION, "annotations": annotations})
    assert "  web:         raw" in cli("action", "get", "hello").out.splitlines()


def test_list_json(cli, api):
    api.reply(200, [{"name": "a"}])
    assert cli("action", "list", "--json").json == [{"name": "a"}]


def test_non_utf8_source_is_refused(cli, api, tmp_path):
    path = tmp_path / "x.py"
    path.write_bytes(b"\xff\xfe\x00")
    result = cli("action", "create", "x", str(path))
    assert result.code == 2
    assert "not UTF-8" in result.err


def test_empty_sequence_is_refused(cli, api):
    assert cli("action", "create", "seq", "--sequence", " , ").code == 2
    assert api.calls == []
