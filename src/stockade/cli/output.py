"""Rendering: ``ok:`` lines, tables and summaries for people, raw JSON with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from stockade.cli.client import Json, Reply

__all__ = [
    "ACTIVATION_STATUS_NAMES",
    "Output",
    "annotation",
    "dump_json",
    "format_kvs",
    "format_time",
    "kvs_to_dict",
    "records",
]

# The top-level ``statusCode`` of activation list summaries (OpenWhisk's 0–3).
ACTIVATION_STATUS_NAMES = {
    0: "success",
    1: "application error",
    2: "developer error",
    3: "internal error",
}


def records(data: Json) -> list[dict[str, Json]]:
    """The JSON objects of a list response; anything else (a malformed reply) yields nothing."""
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def dump_json(value: Json) -> str:
    """Pretty-print JSON the way ``wsk`` does: two-space indent, UTF-8 kept."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def format_time(epoch_ms: Json) -> str:
    """``2024-05-01 12:00:00`` (UTC) from epoch milliseconds; empty for missing values."""
    if not isinstance(epoch_ms, int | float) or isinstance(epoch_ms, bool):
        return ""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def kvs_to_dict(kvs: Json) -> dict[str, Json]:
    """Turn ``[{"key", "value"}]`` into a dict; anything else becomes empty."""
    result: dict[str, Json] = {}
    if isinstance(kvs, list):
        for item in kvs:
            if isinstance(item, dict) and isinstance(item.get("key"), str):
                result[item["key"]] = item.get("value")
    return result


def annotation(entity: Json, key: str) -> Json:
    """The value of one annotation of an entity, or ``None``."""
    if not isinstance(entity, dict):
        return None
    return kvs_to_dict(entity.get("annotations")).get(key)


def format_kvs(kvs: Json) -> str:
    """``a=1, b="x"`` with JSON values, or ``(none)``."""
    pairs = kvs_to_dict(kvs)
    if not pairs:
        return "(none)"
    return ", ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in pairs.items())


class Output:
    """Writes results to stdout and diagnostics to stderr, in table or JSON mode."""

    def __init__(self, stdout: TextIO, stderr: TextIO, *, json_mode: bool = False) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.json_mode = json_mode

    def line(self, text: str = "") -> None:
        """Write one line to stdout."""
        self.stdout.write(f"{text}\n")

    def error(self, text: str) -> None:
        """Write one line to stderr."""
        self.stderr.write(f"{text}\n")

    def ok(self, message: str) -> None:
        """``ok: <message>`` for people; nothing in JSON mode, where the response is printed instead."""
        if not self.json_mode:
            self.line(f"ok: {message}")

    def json(self, value: Json) -> None:
        """Write a JSON document to stdout."""
        self.line(dump_json(value))

    def raw(self, reply: Reply) -> None:
        """Write a response body as JSON (or as text when it is not JSON)."""
        if reply.is_json:
            self.json(reply.data)
        elif reply.text:
            self.line(reply.text.rstrip("\n"))

    def result(self, ok_message: str, reply: Reply) -> None:
        """The common shape of write commands: the raw body with ``--json``, else ``ok:``."""
        if self.json_mode:
            self.raw(reply)
        else:
            self.ok(ok_message)

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        """Write left-aligned columns under upper-case headers."""
        all_rows = [list(headers), *(list(row) for row in rows)]
        widths = [max(len(row[i]) for row in all_rows) for i in range(len(headers))]
        for row in all_rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
            self.line("  ".join(cells).rstrip())

    def fields(self, title: str, pairs: Iterable[tuple[str, str]]) -> None:
        """Write a titled block of ``label: value`` lines, labels aligned."""
        items = list(pairs)
        self.line(title)
        width = max((len(label) for label, _ in items), default=0) + 1
        for label, value in items:
            self.line(f"  {(label + ':').ljust(width)} {value}")
