"""The zygote conversation: refused requests keep it in step; a dead zygote is replaced."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from stockade.sandbox.harness import ActionSandbox, write_action
from stockade.sandbox.linux import LinuxSandboxBackend
from stockade.sandbox.plan import build_plan
from stockade.sandbox.spec import SandboxSpec
from stockade.sandbox.zygote_client import ZygoteError

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]


async def _still_serves(backend: LinuxSandboxBackend, spec: SandboxSpec) -> None:
    sandbox = await ActionSandbox.start(backend, spec)
    assert (await sandbox.run({"n": 1}))["result"] == {"n": 1}
    await sandbox.kill()


async def test_refused_spawns_keep_the_conversation_in_step(backend: LinuxSandboxBackend, tmp_path: Path) -> None:
    """A spawn the zygote refuses still consumes its environment message; the next request gets its own reply."""
    code_dir = write_action(tmp_path / "a", "python", "def main(a):\n    return a\n")
    spec = SandboxSpec(family="python", code_dir=code_dir)
    zygote = backend._zygote  # type: ignore[attr-defined]
    assert zygote is not None
    facts = backend.facts()
    plan = build_plan(spec, sandbox_id="sbx-t", mode=facts.mode, landlock_abi=facts.landlock_abi, paths=facts.paths)
    with pytest.raises(ZygoteError):
        await zygote.spawn({"not": "a plan"}, b'{"SECRET": "x"}', 5, parked=None, slot=None)
    with pytest.raises(ZygoteError):
        await zygote.spawn(plan.to_dict(), b'{"SECRET": "x"}', 5, parked=None, slot={"not": "a slot"})
    with pytest.raises(ZygoteError, match="no parked child"):
        await zygote.spawn(plan.to_dict(), b"{}", 5, parked="no-such-token", slot=None)
    await _still_serves(backend, spec)


async def test_a_dead_zygote_is_replaced(backend: LinuxSandboxBackend, tmp_path: Path) -> None:
    """If the zygote dies, the next start launches a new one (and counts it); running sandboxes are unaffected."""
    code_dir = write_action(tmp_path / "a", "python", "def main(a):\n    return a\n")
    spec = SandboxSpec(family="python", code_dir=code_dir)
    survivor = await ActionSandbox.start(backend, spec)
    old = backend.zygote_pid
    assert old is not None
    restarts = backend.statistics().zygote_restarts_total
    old_workdir = Path(backend._zygote.ready["workdir"])  # type: ignore[union-attr]
    assert old_workdir.is_dir()
    os.kill(old, signal.SIGKILL)
    backend._zygote.process.wait()  # type: ignore[union-attr]
    await _still_serves(backend, spec)
    assert backend.zygote_pid not in (None, old)
    assert backend.statistics().zygote_restarts_total == restarts + 1
    assert not old_workdir.exists(), "the killed zygote's work directory is removed for it"
    assert (await survivor.run({"n": 2}))["result"] == {"n": 2}
    await survivor.kill()
