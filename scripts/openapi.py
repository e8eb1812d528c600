#!/usr/bin/env python3
"""Regenerate docs/api/openapi.yaml from the API's routes (run after adding or removing a route).

Summaries come from the handlers' docstrings; the test in tests/contract/test_openapi.py fails
when the document and the routes disagree, in either direction.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from starlette.routing import Route

from stockade import __version__
from stockade.api.routes import all_routes
from stockade.console import console_routes
from stockade.gateway import gateway_routes

OUT = Path(__file__).resolve().parent.parent / "docs" / "api" / "openapi.yaml"


def spec() -> dict[str, object]:
    paths: dict[str, dict[str, object]] = {}
    for route in [*console_routes(), *gateway_routes(), *all_routes()]:
        if not isinstance(route, Route):
            continue
        summary = (route.endpoint.__doc__ or route.name).strip().splitlines()[0]
        entry = paths.setdefault(route.path.replace(":path", ""), {})
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            entry[method.lower()] = {
                "summary": summary,
                "responses": {"default": {"$ref": "#/components/responses/OpenWhiskError"}},
            }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Stockade (OpenWhisk-compatible) API",
            "version": __version__,
            "description": "Generated from the routes by scripts/openapi.py; shapes follow the OpenWhisk reference.",
        },
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "responses": {
                "OpenWhiskError": {
                    "description": (
                        "OpenWhisk error envelope. Every 429 carries Retry-After (seconds); 507 when the "
                        "store cannot take writes (full disk, read-only), while reads and blocking invokes "
                        "of existing actions keep working."
                    ),
                    "headers": {
                        "Retry-After": {
                            "description": "On 429: seconds until a retry can succeed",
                            "schema": {"type": "integer", "minimum": 1},
                        }
                    },
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"error": {"type": "string"}, "code": {"type": "string"}},
                                "required": ["error", "code"],
                            }
                        }
                    },
                }
            },
        },
        "security": [{"basic": []}, {"bearer": []}],
        "paths": dict(sorted(paths.items())),
    }


if __name__ == "__main__":
    OUT.write_text(yaml.safe_dump(spec(), sort_keys=False, width=120))
    print(f"wrote {OUT}", file=sys.stderr)
