"""Fixtures for the sandbox backend tests (tests that need user namespaces are marked ``sandbox``)."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from stockade.sandbox.harness import ActionSandbox, write_action
from stockade.sandbox.linux import LinuxSandboxBackend
from stockade.sandbox.spec import RuntimeFamily, SandboxSpec

StartAction = Callable[..., Awaitable[ActionSandbox]]
PY_ECHO = "def main(args):\n    return {'echo': args}\n"


@asynccontextmanager
async def prepared_backend(**options: Any) -> AsyncIterator[LinuxSandboxBackend]:
    """A prepared LinuxSandboxBackend (closed on exit); skips when sandboxes cannot run here."""
    backend = LinuxSandboxBackend(**options)
    reason = backend.facts().unavailable_reason
    if reason:
        pytest.skip(f"Linux sandbox unavailable on this host: {reason}")
    await backend.prepare()
    try:
        yield backend
    finally:
        await backend.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def backend() -> AsyncIterator[LinuxSandboxBackend]:
    """A LinuxSandboxBackend with its zygote, shared by one test module; skips when sandboxes cannot run here."""
    async with prepared_backend() as prepared:
        yield prepared


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stem_backend() -> AsyncIterator[LinuxSandboxBackend]:
    """A backend with one stem cell per runtime (the module's ordinary ``backend`` has none)."""
    async with prepared_backend(stem_cells=1, prepared_slots=1) as prepared:
        yield prepared


async def until(predicate: Callable[[], bool], what: str, *, attempts: int = 1000) -> None:
    """Wait for background work (a stem refill, a death), ``attempts`` x 10 ms at most.

    Not a timed assertion: the bound only turns a hang into a failure.
    """
    for _ in range(attempts):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


async def stem_ready(backend: LinuxSandboxBackend, family: RuntimeFamily, *, attempts: int = 1000) -> None:
    """Wait until ``backend`` holds a ready stem cell of ``family``."""
    await until(lambda: backend.stem_statistics().ready[family] >= 1, f"a {family} stem cell", attempts=attempts)


def skip_without_runtime(backend: LinuxSandboxBackend, family: RuntimeFamily) -> None:
    """Skip (with the reason) where ``family``'s runner cannot run in a sandbox on this host."""
    facts = backend.facts()
    error = facts.node_runner_error if family == "nodejs" else facts.python_runner_error
    if error:
        pytest.skip(f"{family} sandboxes unavailable: {error}")


@pytest.fixture
def needs_root() -> None:
    """Skip (with the reason) unless running as root: cgroups and per-slot host uids need it."""
    if os.geteuid() != 0:
        pytest.skip(f"needs root (cgroups, per-slot host uids); running as uid {os.geteuid()}")


@pytest_asyncio.fixture(loop_scope="module")
async def start_action(backend: LinuxSandboxBackend, tmp_path: Path) -> AsyncIterator[StartAction]:
    """start_action(family, code, init=True, **spec_fields) -> ActionSandbox, killed after the test."""
    started: list[ActionSandbox] = []
    counter = itertools.count()

    async def start(family: str = "python", code: str = PY_ECHO, *, init: bool = True, **spec: Any) -> ActionSandbox:
        code_dir = write_action(tmp_path / f"action-{next(counter)}", family, code)  # type: ignore[arg-type]
        sandbox = await ActionSandbox.start(backend, SandboxSpec(family=family, code_dir=code_dir, **spec), init=init)  # type: ignore[arg-type]
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        await sandbox.kill()
