"""Property-based fuzzing of every operation in docs/api/openapi.yaml against a live server.

Hypothesis draws, per operation: path parameters (valid names, odd text, encodings, traversal
tricks), query parameters (the names the API reads, with integers past 64 bits, garbage and
empties), a Content-Type and a body (JSON values, hostile JSON, raw bytes, forms), and with or
without credentials. The property: never a 5xx (a 502 only from a web action, the gateway or a
blocking invoke whose action ran, which OpenWhisk answers so), and every error the platform
makes is OpenWhisk-shaped (``{"error", "code"}``). ``STOCKADE_TEST_FUZZ_EXAMPLES`` sets the examples
per operation (``make test`` a few, ``make fuzz`` many); counts go to ``var/fuzz/report.json``.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from hypothesis import strategies as st

SPEC = Path(__file__).resolve().parents[2] / "docs" / "api" / "openapi.yaml"
QUERY_NAMES = (
    "skip", "limit", "since", "upto", "count", "docs", "blocking", "result", "timeout", "overwrite",
    "name", "code", "basepath", "relpath", "operation", "type", "severity", "acceptRisk", "version",
    "format", "tag", "namespace", "accesstoken", "spaceguid",
)  # fmt: skip
NAMES = ("_", "guest", "echo", "pkg", "default", "whisk.system", "other", "t", "r")


def operations() -> list[tuple[str, str]]:
    doc = yaml.safe_load(SPEC.read_text())
    return sorted((path, method.upper()) for path, ops in doc["paths"].items() for method in ops)


_segment_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=40)
_segment = st.one_of(
    st.sampled_from(NAMES),
    st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_@.\- ]{0,20}\Z"),
    _segment_text.map(lambda t: urllib.parse.quote(t, safe="")),
    st.sampled_from(["..", ".", "%2e%2e", "%2F", "a%2Fb", "%00", "%ff", "%", "%zz", "a;b", "~", "a" * 300]),
)
_rest = st.lists(_segment, min_size=0, max_size=5).map("/".join)

_int_text = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", "-0", "1e3", "0x10", "1_0", "٣", " 1", "NaN", "9" * 400]),
)
_query_value = st.one_of(_int_text, st.sampled_from(["true", "false", "yes", ""]), _segment_text)
_query = st.dictionaries(st.sampled_from(QUERY_NAMES), _query_value, max_size=4)

_json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    _segment_text,
)
_json = st.recursive(
    _json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["exec", "kind", "code", *NAMES]) | _segment_text, inner, max_size=4),
    ),
    max_leaves=12,
)
_exec = st.fixed_dictionaries(
    {
        "exec": st.fixed_dictionaries(
            {"kind": st.sampled_from(["python:3", "nodejs:20", "sequence", "blackbox", "x"]), "code": _segment_text}
        )
    }
)
_hostile = st.sampled_from(
    [
        b"[" * 5000,
        b'{"a": 1e400}',
        b'{"a": NaN}',
        b'{"a": "\\ud800"}',
        b'{"a": 123456789012345678901234567890}',
        b"\xff\xfe\x00",
        b"{" * 100 + b"}" * 100,
        b'{"__ow_method": "x"}',
        b"",
    ]
)
_body = st.one_of(
    st.none(),
    _json.map(lambda v: json.dumps(v).encode()),
    _exec.map(lambda v: json.dumps(v).encode()),
    _hostile,
    st.binary(max_size=200),
)
_content_type = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded",
     "application/octet-stream", "", "application/vnd.api+json", "multipart/form-data; boundary=x", "text/html"]
)  # fmt: skip


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: bytes | None
    authenticated: bool


def requests(template: str, method: str) -> st.SearchStrategy[Request]:
    """Requests for one operation of the document."""
    names = re.findall(r"\{(\w+)\}", template)

    def build(values: dict[str, str], query: dict[str, str], ctype: str, body: bytes | None, auth: bool) -> Request:
        path = template
        for name in names:
            path = path.replace("{" + name + "}", values[name])
        return Request(method, path, query, ctype, body if method in ("POST", "PUT", "PATCH") else None, auth)

    params = st.fixed_dictionaries({n: (_rest if n == "rest" else _segment) for n in names})
    return st.builds(build, params, _query, _content_type, _body, st.booleans() | st.just(True))


@dataclass
class Tally:
    """What a run found (written to var/fuzz/report.json)."""

    operations: int = 0
    examples: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "operations": self.operations,
            "examples": self.examples,
            "failures_found": len(self.failures),
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "failures": self.failures[:50],
        }
