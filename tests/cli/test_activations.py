"""`stockade activation ...`: list, get, logs, result (by id or --last) and poll."""

from __future__ import annotations

import pytest

from stockade.cli.activations import POLL_INTERVAL_S, strip_log_line

ACTIVATIONS = "/api/v1/namespaces/_/activations"
ID1 = "1" * 32
ID2 = "2" * 32
ID3 = "3" * 32


def summary(activation_id: str, **extra):
    return {
        "namespace": "guest",
        "name": "hello",
        "version": "0.0.1",
        "activationId": activation_id,
        "start": 1700000000000,
        "end": 1700000000042,
        "duration": 42,
        "statusCode": 0,
        "annotations": [{"key": "kind", "value": "python:3.11"}, {"key": "initTime", "value": 10}],
        **extra,
    }


def test_list_sends_filters_and_prints_a_table(cli, api):
    api.reply(200, [summary(ID1), summary(ID2, statusCode=1, annotations=[{"key": "kind", "value": "nodejs:20"}])])
    result = cli("activation", "list", "pkg/hello", "--limit", "2", "--skip", "1", "--since", "1000", "--upto", "2000")
    assert (api.last.method, api.last.path) == ("GET", ACTIVATIONS)
    assert api.last.query == {"limit": "2", "skip": "1", "name": "pkg/hello", "since": "1000", "upto": "2000"}
    assert result.out.splitlines() == [
        "DATETIME             ACTIVATION ID                     KIND         START  DURATION  STATUS             ENTITY",
        f"2023-11-14 22:13:20  {ID1}  python:3.11  cold   42ms      success            guest/hello:0.0.1",
        f"2023-11-14 22:13:20  {ID2}  nodejs:20    warm   42ms      application error  guest/hello:0.0.1",
    ]


def test_list_name_drops_an_explicit_namespace(cli, api):
    api.reply(200, [])
    cli("activation", "list", "/guest/hello")
    assert api.last.query == {"name": "hello"}


def test_list_json(cli, api):
    api.reply(200, [summary(ID1)])
    assert cli("activation", "list", "--json").json == [summary(ID1)]


def test_get_by_id(cli, api):
    api.reply(200, {"activationId": ID1, "logs": []})
    result = cli("activation", "get", ID1)
    assert api.last.path == f"{ACTIVATIONS}/{ID1}"
    assert result.out.startswith(f"ok: got activation {ID1}\n{{")


def test_get_last_looks_up_the_newest_activation_first(cli, api):
    api.reply(200, [summary(ID3)])
    api.reply(200, {"activationId": ID3})
    result = cli("--json", "activation", "get", "--last")
    assert [(c.path, c.query) for c in api.calls] == [(ACTIVATIONS, {"limit": "1"}), (f"{ACTIVATIONS}/{ID3}", {})]
    assert result.json == {"activationId": ID3}


def test_last_without_activations_exits_4(cli, api):
    api.reply(200, [])
    result = cli("activation", "logs", "--last")
    assert result.code == 4
    assert result.err == "error: there are no activations yet\n"


@pytest.mark.parametrize("argv", [["activation", "get"], ["activation", "result", ID1, "--last"]])
def test_id_and_last_are_exclusive_and_one_is_required(cli, api, argv):
    assert cli(*argv).code == 2
    assert api.calls == []


LOGS = {
    "logs": [
        "2024-05-01T12:00:00.123456Z    stdout: hello",
        "2024-05-01T12:00:00.223456Z    stderr: oops: bad",
    ]
}


def test_logs_prints_lines(cli, api):
    api.reply(200, LOGS)
    result = cli("activation", "logs", ID1)
    assert api.last.path == f"{ACTIVATIONS}/{ID1}/logs"
    assert result.out.splitlines() == LOGS["logs"]


def test_logs_strip_drops_timestamps_and_streams(cli, api):
    api.reply(200, LOGS)
    assert cli("activation", "logs", ID1, "--strip").out == "hello\noops: bad\n"


def test_strip_log_line_keeps_unprefixed_lines():
    assert strip_log_line("plain text") == "plain text"


def test_result_prints_the_result_only(cli, api):
    api.reply(200, {"status": "success", "success": True, "result": {"answer": 42}})
    result = cli("activation", "result", ID1)
    assert api.last.path == f"{ACTIVATIONS}/{ID1}/result"
    assert result.json == {"answer": 42}


def test_result_json_prints_the_whole_response(cli, api):
    body = {"status": "success", "success": True, "result": {"answer": 42}}
    api.reply(200, body)
    assert cli("activation", "result", ID1, "--json").json == body


def test_unknown_activation_exits_4(cli, api):
    api.error(404, "The requested resource does not exist.", "rq")
    assert cli("activation", "get", ID1).code == 4


def test_poll_prints_new_activations_once_oldest_first_and_stops_at_exit(cli, api, clock):
    start_ms = clock.now_ms()
    record1 = summary(ID1, logs=["l1"])
    record2 = summary(ID2, name="other", logs=["l2a", "l2b"])
    api.reply(200, [])
    api.reply(200, [record2, record1])  # newest first, as the server orders them
    api.reply(200, [record2, record1])
    api.reply(200, [record1])
    result = cli("activation", "poll", "--exit", "5")
    assert result.code == 0
    assert result.out.splitlines() == [
        f"Activation: 'hello' ({ID1})",
        "  l1",
        f"Activation: 'other' ({ID2})",
        "  l2a",
        "  l2b",
    ]
    assert "Polling" in result.err
    assert len(api.calls) == 4
    assert all(c.query == {"docs": "true", "limit": "200", "since": str(start_ms)} for c in api.calls)
    assert clock.sleeps == [POLL_INTERVAL_S, POLL_INTERVAL_S, 1.0]  # the last sleep ends at the deadline


def test_poll_filters_by_name_and_since_seconds(cli, api, clock):
    start_ms = clock.now_ms()
    api.reply(200, [])
    cli("activation", "poll", "pkg/hello", "--exit", "0", "--since-seconds", "60")
    assert api.last.query == {"docs": "true", "limit": "200", "since": str(start_ms - 60000), "name": "pkg/hello"}
    assert len(api.calls) == 1


def test_poll_stops_cleanly_on_ctrl_c(cli, api, clock):
    def interrupt(seconds):
        raise KeyboardInterrupt

    clock.sleep = interrupt
    api.reply(200, [])
    assert cli("activation", "poll").code == 0


def test_list_filters_by_tag(cli, api):
    api.reply(200, [])
    assert cli("activation", "list", "--tag", "payments").code == 0
    assert api.last.query == {"tag": "payments"}
