"""Known credential formats, found wherever code puts them (``rules/tokens.json``).

detect-secrets filters whole lines (``x = f(...)`` is dropped as an indirect reference), so a
key passed as a call or keyword argument, wrapped in ``str(...)``, or encoded in base64 slipped
through. This pass looks for prefix-anchored token formats on every line regardless of the code
around them, in string literals joined by ``+`` or adjacency (on a line, and across lines in
Python through ``ast``: no code is run), and inside base64 candidates (decoded with both
alphabets and rescanned). Findings never carry the secret. A line holding
``stockade: allow-secret <reason>`` is suppressed, the reason kept.
"""

from __future__ import annotations

import ast
import base64
import binascii
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, final

import jsonschema

__all__ = [
    "TokenFormat",
    "TokenHit",
    "TokenRules",
    "find_in_text",
    "is_placeholder",
    "load_token_rules",
    "scan_source",
    "suppression",
]

_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["formats", "base64", "suppression"],
    "properties": {
        "formats": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "family", "pattern", "reason"],
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9-]+$"},
                    "family": {"type": "string"},
                    "pattern": {"type": "string", "minLength": 1},
                    "reason": {"type": "string", "minLength": 1},
                },
            },
        },
        "base64": {
            "type": "object",
            "required": ["min_length", "max_length", "depth"],
            "properties": {
                "min_length": {"type": "integer", "minimum": 8},
                "max_length": {"type": "integer", "minimum": 16},
                "depth": {"type": "integer", "minimum": 0, "maximum": 4},
            },
        },
        "suppression": {
            "type": "object",
            "required": ["marker", "min_reason_chars"],
            "properties": {"marker": {"type": "string", "minLength": 4}, "min_reason_chars": {"type": "integer"}},
        },
    },
}

# Adjacent literals joined by "+" or whitespace on one line: "ghp_ab" + "cd" → "ghp_abcd".
_JOIN_RE = re.compile(r"""(['"`])\s*\+?\s*\1""")
_PYTHON_SUFFIXES = (".py",)


@final
@dataclass(frozen=True, slots=True)
class TokenFormat:
    """One credential format."""

    id: str
    family: str
    pattern: re.Pattern[str]


@final
@dataclass(frozen=True, slots=True)
class TokenHit:
    """A format found on a line; ``how`` is "literal", "joined" or "base64"."""

    line: int
    format_id: str
    family: str
    how: str


@final
@dataclass(frozen=True, slots=True)
class TokenRules:
    """The formats, the base64 bounds and the suppression marker."""

    formats: tuple[TokenFormat, ...]
    b64_min: int
    b64_max: int
    b64_depth: int
    marker: str
    min_reason: int


def _b64_pattern(rules: TokenRules) -> re.Pattern[str]:
    return _B64_CACHE.setdefault(
        (rules.b64_min, rules.b64_max),
        re.compile(r"[A-Za-z0-9+/_-]{%d,%d}={0,2}" % (rules.b64_min, rules.b64_max)),  # noqa: UP031 - regex braces
    )


_B64_CACHE: dict[tuple[int, int], re.Pattern[str]] = {}


@functools.cache
def load_token_rules() -> TokenRules:
    """The packaged formats, validated; a bad file fails here (at start-up), never mid-scan."""
    text = resources.files("stockade.security.scanner").joinpath("rules/tokens.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    jsonschema.validate(doc, _SCHEMA)
    formats = tuple(TokenFormat(f["id"], f["family"], re.compile(f["pattern"])) for f in doc["formats"])
    if len({f.id for f in formats}) != len(formats):
        raise ValueError("tokens.json repeats a format id")
    b64, sup = doc["base64"], doc["suppression"]
    return TokenRules(
        formats, b64["min_length"], b64["max_length"], b64["depth"], sup["marker"], sup["min_reason_chars"]
    )


def _decode_b64(candidate: str) -> str | None:
    text = candidate.rstrip("=")
    padded = text + "=" * (-len(text) % 4)
    for altchars in (b"+/", b"-_"):
        try:
            raw = base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in decoded)
        if decoded and printable >= 0.95 * len(decoded):
            return decoded
    return None


_PLACEHOLDER_RE = re.compile(r"(?i)example|(.)\1{7}")


def is_placeholder(value: str) -> bool:
    """Documentation placeholders (``AKIA...EXAMPLE``, ``sk_live_XXXXXXXX...``) are not secrets."""
    return _PLACEHOLDER_RE.search(value) is not None


def _real(match: re.Match[str]) -> bool:
    return not is_placeholder(match.group(0))


def find_in_text(text: str, rules: TokenRules, depth: int | None = None) -> Iterator[tuple[TokenFormat, str]]:
    """Formats in ``text``: as written, then inside base64 candidates (recursively)."""
    for fmt in rules.formats:
        if any(_real(m) for m in fmt.pattern.finditer(text)):
            yield fmt, "literal"
    remaining = rules.b64_depth if depth is None else depth
    if remaining <= 0:
        return
    for match in _b64_pattern(rules).finditer(text):
        decoded = _decode_b64(match.group(0))
        if decoded is None:
            continue
        for fmt, _how in find_in_text(decoded, rules, remaining - 1):
            yield fmt, "base64"


def suppression(line: str, rules: TokenRules) -> str | None:
    """The reason of an inline ``stockade: allow-secret <reason>``; None when absent or too short."""
    at = line.find(rules.marker)
    if at < 0:
        return None
    reason = line[at + len(rules.marker) :].strip(" \t:-—*/#>").strip()
    return reason if len(reason) >= rules.min_reason else None


def _python_strings(text: str) -> Iterator[tuple[int, str]]:
    """(line, value) of each string constant, with ``+`` chains, f-string constants and
    ``"sep".join([...])`` of constants folded, so pieces split across lines are joined."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return

    def fold(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = fold(node.left), fold(node.right)
            return left + right if left is not None and right is not None else None
        if isinstance(node, ast.JoinedStr):
            parts = [fold(v) for v in node.values]
            return "".join(p for p in parts if p is not None) if any(parts) else None
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "join"
            and len(node.args) == 1
            and isinstance(node.args[0], ast.List | ast.Tuple)
        ):
            sep = fold(node.func.value)
            items = [fold(e) for e in node.args[0].elts]
            if sep is not None and all(i is not None for i in items):
                return sep.join(i for i in items if i is not None)
        return None

    try:
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant | ast.BinOp | ast.JoinedStr | ast.Call):
                value = fold(node)
                if value:
                    yield node.lineno, value
    except RecursionError:
        return


def scan_source(path: str, text: str, rules: TokenRules) -> tuple[list[TokenHit], dict[int, str]]:
    """Hits per line of one file, and the suppression reasons by line."""
    hits: dict[tuple[int, str], TokenHit] = {}
    suppressed: dict[int, str] = {}
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        reason = suppression(line, rules)
        if reason is not None:
            suppressed[number] = reason
        for fmt, how in find_in_text(line, rules):
            hits.setdefault((number, fmt.id), TokenHit(number, fmt.id, fmt.family, how))
        joined = _JOIN_RE.sub("", line)
        if joined != line:
            for fmt, how in find_in_text(joined, rules):
                hits.setdefault(
                    (number, fmt.id), TokenHit(number, fmt.id, fmt.family, "joined" if how == "literal" else how)
                )
    if path.endswith(_PYTHON_SUFFIXES):
        for number, value in _python_strings(text):
            for fmt, how in find_in_text(value, rules):
                hits.setdefault(
                    (number, fmt.id), TokenHit(number, fmt.id, fmt.family, "joined" if how == "literal" else how)
                )
    return sorted(hits.values(), key=lambda h: (h.line, h.format_id)), suppressed
