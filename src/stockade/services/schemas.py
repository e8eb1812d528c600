"""Input schemas: an action's ``input-schema`` annotation (JSON Schema) checked before it runs.

Validators are compiled once per (action, version) and reused; invalid schemas are refused at
deploy time, so the invoke path only validates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from stockade.domain import JSON, Action
from stockade.errors import BadRequestError

__all__ = ["INPUT_SCHEMA_ANNOTATION", "SchemaCache", "check_schema"]

INPUT_SCHEMA_ANNOTATION = "input-schema"
_MAX_CACHED = 4096


def check_schema(schema: JSON) -> None:
    """Refuse an ``input-schema`` annotation that is not a valid JSON Schema (400)."""
    if not isinstance(schema, dict | bool):
        raise BadRequestError(f"The annotation '{INPUT_SCHEMA_ANNOTATION}' must be a JSON Schema object.")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise BadRequestError(
            f"The annotation '{INPUT_SCHEMA_ANNOTATION}' is not a valid JSON Schema: {exc.message}"
        ) from None


def _pointer(path: Any) -> str:
    return "/" + "/".join(str(p) for p in path) if path else "/"


class SchemaCache:
    """Compiled validators by action version."""

    def __init__(self) -> None:
        self._validators: dict[tuple[str, str, int], Draft202012Validator | None] = {}

    def validator(self, action: Action) -> Draft202012Validator | None:
        """The action's compiled validator, or None when it declares no schema."""
        key = (action.path.fqn, action.version, action.updated)
        if key not in self._validators:
            schema = action.annotation(INPUT_SCHEMA_ANNOTATION)
            if len(self._validators) >= _MAX_CACHED:
                self._validators.clear()
            self._validators[key] = Draft202012Validator(schema) if isinstance(schema, dict | bool) else None
        return self._validators[key]

    def validate(self, action: Action, params: Mapping[str, JSON]) -> None:
        """400 naming the first failing path when ``params`` violate the action's schema."""
        validator = self.validator(action)
        if validator is None:
            return
        error = next(iter(sorted(validator.iter_errors(dict(params)), key=lambda e: list(e.absolute_path))), None)
        if error is not None:
            raise BadRequestError(
                "The request parameters do not match the action's input schema: "
                f"at {_pointer(error.absolute_path)}: {error.message}"
            )
