"""`stockade events`: filters become query parameters; a table or raw JSON comes back."""

from __future__ import annotations

import pytest

from stockade.cli.client import CliError
from stockade.cli.events import parse_since

EVENTS = "/api/v1/namespaces/_/events"
EVENT = {
    "id": "e1",
    "type": "auth.failed",
    "severity": "medium",
    "time": 1_700_000_000_000,
    "namespace": "",
    "action": "",
    "activationId": "",
    "subject": "k1",
    "source": "auth",
    "details": {"reason": "invalid key", "client": "10.0.0.1"},
}


def test_bare_events_lists_with_filters(cli, api, clock):
    api.reply(200, [EVENT])
    result = cli("events", "--type", "auth.failed", "--type", "sandbox.*", "--since", "2h", "--severity", "low")
    assert result.code == 0
    assert (api.last.method, api.last.path) == ("GET", EVENTS)
    assert api.last.query == {
        "type": "auth.failed,sandbox.*",
        "since": str(clock.now_ms() - 2 * 3_600_000),
        "severity": "low",
    }
    lines = result.out.splitlines()
    assert lines[0].split() == ["TIME", "TYPE", "SEVERITY", "NAMESPACE", "ACTION", "SUBJECT", "DETAILS"]
    assert "auth.failed" in lines[1]
    assert "(platform)" in lines[1]
    assert "invalid key" in lines[1]


def test_events_list_prints_json(cli, api):
    api.reply(200, [EVENT])
    result = cli("events", "list", "--limit", "5", "--json")
    assert api.last.query == {"limit": "5"}
    assert result.json == [EVENT]


def test_since_accepts_epoch_ms_or_durations():
    assert parse_since("1700000000000", 5) == 1_700_000_000_000
    assert parse_since("30m", 10_000_000) == 10_000_000 - 1_800_000
    with pytest.raises(CliError):
        parse_since("yesterday", 0)


def test_a_bad_since_is_a_usage_error(cli, api):
    assert cli("events", "--since", "soon").code == 2
    assert api.calls == []
