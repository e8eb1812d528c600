"""Each package states its interface: every name in __all__ exists, and the lists are sorted."""

import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGES = [
    "stockade.domain",
    "stockade.store",
    "stockade.security",
    "stockade.services",
    "stockade.invoker",
    "stockade.sandbox",
    "stockade.api",
    "stockade.console",
    "stockade.observability",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_exports_exist(name):
    module = importlib.import_module(name)
    for export in module.__all__:
        assert hasattr(module, export), f"{name}.__all__ names {export!r}, which does not exist"


def test_the_node_runner_uses_only_node_builtins():
    """The Python runner is held to the stdlib by import-linter; this holds the Node runner to Node's own modules."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (scripts/install installs it)")
    runner = (Path(__file__).resolve().parents[2] / "src/stockade/runtimes/nodejs/runner.js").read_text()
    required = {name.removeprefix("node:") for name in re.findall(r"require\(['\"]([^'\"]+)['\"]\)", runner)}
    builtin = set(
        json.loads(
            subprocess.run(
                [node, "-e", "console.log(JSON.stringify(require('module').builtinModules))"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    )
    assert required, "no require() found: the check would pass vacuously"
    assert required <= builtin, required - builtin
