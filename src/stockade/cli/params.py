"""``-p``/``-P``/``-a``/``-A`` options: parsing values and building key/value bodies.

As in ``wsk``, a value is parsed as JSON when it is valid JSON and kept as a string otherwise,
so ``-p n 5`` sends the number 5 and ``-p name Ada`` sends ``"Ada"``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stockade.cli.client import CliError, Json

__all__ = [
    "add_annotation_options",
    "add_param_options",
    "build_kvs",
    "build_payload",
    "entity_body",
    "parse_value",
    "read_json_object",
]


def _reject_constant(name: str) -> Json:
    """Refuse ``NaN`` and ``Infinity``, which ``json.loads`` accepts but JSON does not."""
    raise ValueError(name)


def parse_value(text: str) -> Json:
    """Parse ``text`` as JSON when it is valid JSON; otherwise return it unchanged."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text


def read_json_object(path: str) -> dict[str, Json]:
    """Read a JSON object from a file named by ``-P``/``-A``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}", exit_code=2) from exc
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}", exit_code=2) from exc
    if not isinstance(value, dict):
        raise CliError(f"{path} must hold a JSON object", exit_code=2)
    return value


def build_payload(pairs: list[list[str]] | None, file: str | None) -> dict[str, Json]:
    """Merge ``-P`` file contents with ``-p`` pairs (pairs win) into one object."""
    payload: dict[str, Json] = read_json_object(file) if file else {}
    for key, value in pairs or []:
        payload[key] = parse_value(value)
    return payload


def build_kvs(pairs: list[list[str]] | None, file: str | None) -> list[dict[str, Json]] | None:
    """The ``[{"key", "value"}]`` array for an entity body, or ``None`` when nothing was given.

    ``None`` matters on update: the body then omits the field and the server keeps the old one.
    """
    if not pairs and not file:
        return None
    return [{"key": key, "value": value} for key, value in build_payload(pairs, file).items()]


def add_param_options(parser: argparse.ArgumentParser, *, what: str = "parameter") -> None:
    """Add ``-p KEY VALUE`` (repeatable) and ``-P FILE``."""
    parser.add_argument(
        "-p",
        "--param",
        dest="params",
        nargs=2,
        action="append",
        metavar=("KEY", "VALUE"),
        help=f"{what} KEY with VALUE (parsed as JSON when valid, else a string); repeatable",
    )
    parser.add_argument(
        "-P",
        "--param-file",
        dest="param_file",
        metavar="FILE",
        help=f"{what}s from a JSON object in FILE (-p wins on clashes)",
    )


def add_annotation_options(parser: argparse.ArgumentParser) -> None:
    """Add ``-a KEY VALUE`` (repeatable) and ``-A FILE``."""
    parser.add_argument(
        "-a",
        "--annotation",
        dest="annotations",
        nargs=2,
        action="append",
        metavar=("KEY", "VALUE"),
        help="annotation KEY with VALUE (parsed as JSON when valid, else a string); repeatable",
    )
    parser.add_argument(
        "-A",
        "--annotation-file",
        dest="annotation_file",
        metavar="FILE",
        help="annotations from a JSON object in FILE (-a wins on clashes)",
    )


def entity_body(args: argparse.Namespace) -> dict[str, Json]:
    """The ``parameters``/``annotations`` part of a package or trigger body (only what was given)."""
    body: dict[str, Json] = {}
    parameters = build_kvs(args.params, args.param_file)
    if parameters is not None:
        body["parameters"] = parameters
    annotations = build_kvs(args.annotations, args.annotation_file)
    if annotations is not None:
        body["annotations"] = annotations
    return body
