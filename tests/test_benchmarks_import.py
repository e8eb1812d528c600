"""Every benchmark module imports (``make bench`` runs them all and stops at the first that fails)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCHMARKS.glob("*.py")))
def test_benchmark_module_imports(name, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    for module in [m for m in sys.modules if m in {p.stem for p in BENCHMARKS.glob("*.py")}]:
        monkeypatch.delitem(sys.modules, module)
    module = importlib.import_module(name)
    if name.startswith("bench_"):
        assert callable(getattr(module, "main", None)), f"{name} has no main()"
