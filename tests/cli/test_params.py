"""-p/-a value parsing (JSON when valid, else string) and -P/-A files."""

from __future__ import annotations

import json

import pytest

from stockade.cli.client import CliError
from stockade.cli.params import build_kvs, build_payload, parse_value, read_json_object


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", 5),
        ("2.5", 2.5),
        ("true", True),
        ("null", None),
        ('{"a": [1]}', {"a": [1]}),
        ('"quoted"', "quoted"),
        ("Ada", "Ada"),
        ("hello world", "hello world"),
        ("", ""),
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("[1,", "[1,"),
    ],
)
def test_parse_value_is_json_when_valid_else_string(text, expected):
    assert parse_value(text) == expected


def test_build_payload_merges_file_then_pairs(tmp_path):
    path = tmp_path / "params.json"
    path.write_text(json.dumps({"a": 1, "b": "file"}))
    assert build_payload([["b", "cli"], ["c", "[1]"]], str(path)) == {"a": 1, "b": "cli", "c": [1]}


def test_build_payload_is_empty_without_options():
    assert build_payload(None, None) == {}


def test_build_kvs_is_none_when_nothing_was_given():
    """None (not []) so that updates leave the stored parameters alone."""
    assert build_kvs(None, None) is None
    assert build_kvs([], None) is None


def test_build_kvs_builds_key_value_pairs_last_wins():
    assert build_kvs([["a", "1"], ["a", "2"], ["b", "x"]], None) == [
        {"key": "a", "value": 2},
        {"key": "b", "value": "x"},
    ]


def test_read_json_object_reports_missing_files(tmp_path):
    with pytest.raises(CliError, match="cannot read") as info:
        read_json_object(str(tmp_path / "absent.json"))
    assert info.value.exit_code == 2


def test_read_json_object_reports_invalid_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{nope")
    with pytest.raises(CliError, match="not valid JSON"):
        read_json_object(str(path))


def test_read_json_object_requires_an_object(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(CliError, match="must hold a JSON object"):
        read_json_object(str(path))
