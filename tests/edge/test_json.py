"""edge.json: strict RFC 8259 parsing with depth and member limits."""

import pytest

from stockade.edge import JsonLimits, parse_json
from stockade.errors import MalformedRequestError

LIMITS = JsonLimits(max_depth=4, max_members=10)


@pytest.mark.parametrize(
    "text",
    [b"[[[[1]]]]", b'{"a":{"b":{"c":{"d":1}}}}', b"[" + b"1," * 9 + b"1]", b'"[[[[[[[[["', b'{"k":"{{{{{,,,,,,,,,,,"}'],
)
def test_within_the_limits(text):
    parse_json(text, LIMITS)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (b"[[[[[1]]]]]", "nesting deeper than 4"),
        (b'{"a":[{"b":[{"c":1}]}]}', "nesting deeper than 4"),
        (b"[" + b"1," * 10 + b"1]", "more than 10 values"),
        (b"NaN", "NaN is not a JSON value"),
        (b"[1e400]", "number out of range"),
        (b"[1" + b"0" * 500 + b".5]", "number too long"),
        (b"[9223372036854775808]", "integer out of range"),
        (b"[-9223372036854775809]", "integer out of range"),
        (b'["\\ud83d"]', "unpaired surrogate"),
        (b'["\\ude00\\ud83d"]', "unpaired surrogate"),
        (b"\xef\xbb\xbf{}", "Expecting value"),
        (b"\xff", "not valid UTF-8"),
        (b'{"a":1,"b":2,"a":3}', "duplicate key 'a'"),
        (b'[{"x":{"k":1,"k":1}}]', "duplicate key 'k'"),
    ],
)
def test_refused_with_a_reason(text, why):
    with pytest.raises(MalformedRequestError) as info:
        parse_json(text, LIMITS)
    assert info.value.status == 400
    assert info.value.message.startswith("The request content was malformed:\n")
    assert why in info.value.message


def test_a_paired_surrogate_escape_is_one_character():
    assert parse_json(b'["\\ud83d\\ude00"]', LIMITS) == ["\U0001f600"]


def test_escaped_quotes_and_brackets_inside_strings_do_not_count():
    text = b'{"a":"\\"[[[[[[[[[[\\\\","b":[1]}'
    assert parse_json(text, JsonLimits(max_depth=2, max_members=3)) == {"a": '"[[[[[[[[[[\\', "b": [1]}


def test_limits_of_the_int64_range_are_kept_exactly():
    assert parse_json(b"[9223372036854775807,-9223372036854775808]", LIMITS) == [2**63 - 1, -(2**63)]
