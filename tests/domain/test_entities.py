import pytest

from stockade.domain import (
    KeyValue,
    as_mapping,
    bump_version,
    check_kv_size,
    is_truthy,
    kv_from_json,
    kv_get,
    kv_merge,
    kv_set,
    kv_size,
    kv_to_dict,
    kv_to_json,
    kv_without,
    validate_version,
)
from stockade.errors import BadRequestError, PayloadTooLargeError


def test_kv_round_trip_and_duplicates():
    raw = [{"key": "a", "value": 1}, {"key": "b", "value": {"x": 1}, "init": True}, {"key": "a", "value": 2}]
    kvs = kv_from_json(raw, "parameters")
    assert kv_to_dict(kvs) == {"a": 2, "b": {"x": 1}}
    assert kv_to_json(kvs) == [{"key": "b", "value": {"x": 1}, "init": True}, {"key": "a", "value": 2}]
    assert kv_from_json(None, "x") == ()


@pytest.mark.parametrize("raw", [{"key": "a"}, [1], [{"value": 1}], [{"key": 1}], [{"key": "a", "init": "yes"}]])
def test_kv_rejects_malformed(raw):
    with pytest.raises(BadRequestError):
        kv_from_json(raw, "parameters")


def test_kv_helpers():
    base = (KeyValue("a", 1), KeyValue("b", 2))
    assert kv_get(base, "b") == 2
    assert kv_get(base, "z", "d") == "d"
    assert kv_to_dict(kv_merge(base, (KeyValue("a", 9),))) == {"b": 2, "a": 9}
    assert kv_to_dict(kv_set(base, "c", 3)) == {"a": 1, "b": 2, "c": 3}
    assert kv_to_dict(kv_without(base, ["a"])) == {"b": 2}
    assert kv_size((KeyValue("ab", "x"),)) == 2 + 3


def test_kv_size_limit():
    check_kv_size((KeyValue("a", "x" * 10),), "parameters", 100)
    with pytest.raises(PayloadTooLargeError, match=r"parameters larger than allowed: 13 > 10 bytes."):
        check_kv_size((KeyValue("a", "x" * 10),), "parameters", 10)


def test_versions():
    assert validate_version("1.02.3") == "1.2.3"
    assert bump_version("0.0.9") == "0.0.10"
    for bad in ("1.2", "a.b.c", 3, "1.2.3.4"):
        with pytest.raises(BadRequestError):
            validate_version(bad)


@pytest.mark.parametrize(
    ("value", "truthy"),
    [
        (True, True),
        (1, True),
        ("x", True),
        ([], True),
        ({}, True),
        (False, False),
        (0, False),
        ("", False),
        (None, False),
        (0.0, False),
    ],
)
def test_truthiness(value, truthy):
    assert is_truthy(value) is truthy


def test_as_mapping():
    assert as_mapping(None, "x") == {}
    assert as_mapping({"a": 1}, "x") == {"a": 1}
    with pytest.raises(BadRequestError):
        as_mapping([1], "x")
