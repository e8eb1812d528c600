"""Strict JSON for every request body (REST, web actions, the gateway, trigger fires).

RFC 8259 only: UTF-8 text, no ``NaN``/``Infinity``, numbers a 64-bit integer or a finite double,
no duplicate keys in an object,
strings valid Unicode (no lone surrogates), nesting at most ``max_depth`` and at most
``max_members`` values in one document. Anything else is a 400 (``MalformedRequestError``)
before a service sees it, so nothing downstream (runners, the store, the recorder) meets a value
it cannot encode.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final, final

from stockade.domain import JSON
from stockade.errors import MalformedRequestError

__all__ = ["JsonLimits", "parse_json"]

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
# Strings (skipped whole, escapes included) and the characters that open, close or separate values.
_TOKEN: Final = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)
_MAX_NUMBER_CHARS: Final = 400


@final
@dataclass(frozen=True, slots=True)
class JsonLimits:
    """Bounds on one JSON document (``[http]`` settings)."""

    max_depth: int = 64
    max_members: int = 100_000


class _Refused(ValueError):
    """A value RFC 8259 (or a limit) does not allow; the message is safe to show."""


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON value")


def _float(text: str) -> float:
    if len(text) > _MAX_NUMBER_CHARS:
        raise _Refused("number too long")
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"number out of range: {text[:40]}")
    return value


def _int(text: str) -> int:
    if len(text) > 20:
        raise _Refused(f"integer out of range: {text[:40]}")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise _Refused(f"integer out of range: {text[:40]}")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        # RFC 8259 leaves duplicates to the parser; parsers differ (first or last wins), so a
        # check on one value and a use of the other is possible: refuse them.
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"duplicate key {key[:40]!r}")
            seen.add(key)
    return value


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_object, parse_float=_float, parse_int=_int, parse_constant=_constant, strict=True
)


def _check_structure(data: bytes, limits: JsonLimits) -> None:
    """Depth and member count, counted on the raw text before the (recursive) decoder runs."""
    opens = data.count(b"[") + data.count(b"{")
    if opens <= limits.max_depth and data.count(b",") + opens <= limits.max_members:
        return  # cannot exceed either bound: skip the scan (the common, small body)
    depth = 0
    members = 0
    for match in _TOKEN.finditer(data):
        token = match.group()
        first = token[:1]
        if first in (b"[", b"{"):
            depth += 1
            members += 1
            if depth > limits.max_depth:
                raise _Refused(f"nesting deeper than {limits.max_depth}")
        elif first in (b"]", b"}"):
            depth -= 1
        elif first == b",":
            members += 1
        if members > limits.max_members:
            raise _Refused(f"more than {limits.max_members} values")


def _check_unicode(value: JSON) -> None:
    """No lone surrogates (``"\\ud800"``) in keys or strings: they cannot be encoded as UTF-8."""
    stack: list[JSON] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                item.encode("utf-8")
        elif isinstance(item, dict):
            for key, inner in item.items():
                if not key.isascii():
                    key.encode("utf-8")
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)


def parse_json(data: bytes, limits: JsonLimits) -> JSON:
    """The JSON value of ``data``, or ``MalformedRequestError`` (400) naming what was refused."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequestError("the body is not valid UTF-8") from None
    try:
        _check_structure(data, limits)
        value: JSON = _DECODER.decode(text)
        if b"\\u" in data:
            _check_unicode(value)
    except _Refused as exc:
        raise MalformedRequestError(str(exc)) from None
    except UnicodeEncodeError:
        raise MalformedRequestError("a string holds an unpaired surrogate") from None
    except RecursionError:
        raise MalformedRequestError("nesting too deep") from None
    except ValueError as exc:
        raise MalformedRequestError(str(exc)[:200]) from None
    return value
