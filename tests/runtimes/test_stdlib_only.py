"""The runners run inside the sandbox and may use only their language's standard library."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest

from .conftest import NODE, NODE_RUNNER, PYTHON_RUNNER


def test_python_runner_imports_only_the_stdlib():
    tree = ast.parse(PYTHON_RUNNER.read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports are not allowed in the runner"
            modules.add((node.module or "").split(".")[0])
    assert modules, "parsed no imports at all"
    assert modules <= set(sys.stdlib_module_names), modules - set(sys.stdlib_module_names)


def test_nodejs_runner_requires_only_builtins():
    if NODE is None:
        pytest.skip("node is not installed")
    required = set(re.findall(r"require\('([^']+)'\)", NODE_RUNNER.read_text()))
    builtins = set(
        json.loads(
            subprocess.run(
                [NODE, "-e", "console.log(JSON.stringify(require('module').builtinModules))"],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout
        )
    )
    assert required, "found no require() calls at all"
    assert required <= builtins, required - builtins
