"""Fixtures for the sandbox threat tests: one Linux backend (and zygote) per module, actions per test.

Every test here attacks from inside a real sandbox, driven at the SandboxBackend + runner level with
runtime-protocol frames. When this host cannot run sandboxes the tests skip with the reason.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from stockade.sandbox.harness import ActionSandbox, write_action
from stockade.sandbox.linux import LinuxSandboxBackend
from stockade.sandbox.spec import SandboxSpec

StartAction = Callable[..., Awaitable[ActionSandbox]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def backend() -> AsyncIterator[LinuxSandboxBackend]:
    """A LinuxSandboxBackend with its zygote, shared by one test module."""
    backend = LinuxSandboxBackend()
    reason = backend.facts().unavailable_reason
    if reason:
        pytest.skip(f"Linux sandbox unavailable on this host: {reason}")
    await backend.prepare()
    yield backend
    await backend.close()


@pytest.fixture(params=["python", "nodejs"])
def family(request: pytest.FixtureRequest, backend: LinuxSandboxBackend) -> str:
    """Each threat test runs once with a Python action and once with a Node.js action."""
    facts = backend.facts()
    error = facts.python_runner_error if request.param == "python" else facts.node_runner_error
    if error:
        pytest.skip(f"{request.param} sandboxes unavailable: {error}")
    return str(request.param)


@pytest.fixture
def is_root() -> bool:
    """Root mode (cgroups, per-slot host uids) or unprivileged (rlimit fallbacks)."""
    return os.geteuid() == 0


@pytest_asyncio.fixture(loop_scope="module")
async def start_action(backend: LinuxSandboxBackend, tmp_path: Path) -> AsyncIterator[StartAction]:
    """start_action(family, code, **spec_fields) -> an initialised ActionSandbox, killed after the test."""
    started: list[ActionSandbox] = []
    counter = itertools.count()

    async def start(
        family: str, code: str, *, init: bool = True, extra_files: dict[str, str] | None = None, **spec: Any
    ) -> ActionSandbox:
        code_dir = write_action(tmp_path / f"action-{next(counter)}", family, code, extra_files)  # type: ignore[arg-type]
        sandbox = await ActionSandbox.start(backend, SandboxSpec(family=family, code_dir=code_dir, **spec), init=init)  # type: ignore[arg-type]
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        await sandbox.kill()
    for sandbox in started:
        assert not sandbox.process.is_alive()
