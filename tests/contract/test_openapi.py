"""docs/api/openapi.yaml matches the routes, both ways (regenerate with scripts/openapi.py)."""

from pathlib import Path

import yaml
from starlette.routing import Route

from stockade.api.routes import all_routes
from stockade.console import console_routes
from stockade.gateway import gateway_routes

SPEC = Path(__file__).resolve().parents[2] / "docs" / "api" / "openapi.yaml"


def routes_in_app() -> set[tuple[str, str]]:
    found = set()
    for route in [*console_routes(), *gateway_routes(), *all_routes()]:
        if isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD":
                    found.add((route.path.replace(":path", ""), method.lower()))
    return found


def routes_in_spec() -> set[tuple[str, str]]:
    doc = yaml.safe_load(SPEC.read_text())
    return {(path, method) for path, ops in doc["paths"].items() for method in ops}


def test_every_route_is_documented():
    missing = routes_in_app() - routes_in_spec()
    assert not missing, f"routes missing from docs/api/openapi.yaml (run scripts/openapi.py): {sorted(missing)}"


def test_every_documented_route_exists():
    stale = routes_in_spec() - routes_in_app()
    assert not stale, f"docs/api/openapi.yaml documents routes that do not exist: {sorted(stale)}"


def test_every_operation_has_a_summary():
    doc = yaml.safe_load(SPEC.read_text())
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"], (path, method)
