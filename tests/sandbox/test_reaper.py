"""Pid 1 of a sandbox: the static reaper (scripts/build-reaper), confined like before and a few pages small."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stockade.sandbox import host
from stockade.sandbox.harness import ActionSandbox, write_action
from stockade.sandbox.linux import LinuxSandboxBackend
from stockade.sandbox.spec import SandboxSpec

from .conftest import StartAction, skip_without_runtime

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]


def _status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _pss_kb(pid: int) -> int:
    for row in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if row.startswith("Pss:"):
            return int(row.split()[1])
    raise AssertionError("no Pss")


@pytest.fixture
def needs_reaper(backend: LinuxSandboxBackend) -> None:
    """Skip (with the reason) when the static reaper was not built here."""
    if backend.facts().reaper is None:
        pytest.skip(f"the static reaper is not built ({host.REAPER_PATH}); run scripts/build-reaper")


@pytest.mark.parametrize("family", ["python", "nodejs"])
async def test_pid_1_is_the_static_reaper_under_both_filters(
    start_action: StartAction, backend: LinuxSandboxBackend, needs_reaper: None, family: str
) -> None:
    """Pid 1 runs the reaper binary: uid 1000, no capabilities, no_new_privs, two seccomp filters, tiny."""
    skip_without_runtime(backend, family)
    code = "function main(a) { return {}; }\n" if family == "nodejs" else "def main(a):\n    return {}\n"
    sandbox = await start_action(family, code)
    assert (await sandbox.run())["ok"]
    pid = sandbox.process.pid
    try:
        exe = Path(os.readlink(f"/proc/{pid}/exe"))
    except PermissionError:
        pytest.skip("this user may not read the sandbox's /proc/<pid>/exe (needs root)")
    assert exe == host.REAPER_PATH
    fields = _status(pid)
    assert "0" not in fields["Uid"].split()  # host view: the slot's uid (root mode) or the developer's
    assert fields["CapEff"] == fields["CapPrm"] == fields["CapBnd"] == "0000000000000000"
    assert fields["NoNewPrivs"] == "1"
    assert fields["Seccomp"] == "2"
    # The Node.js list (which let it exec) and, installed by the reaper itself, the Python list.
    assert fields["Seccomp_filters"] == "2"
    assert _pss_kb(pid) < 1024  # a Python pid 1 was about 2,700 kB


async def test_without_the_binary_pid_1_stays_a_python_reaper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No static reaper built: sandboxes still start, with the Python reaper under the Python filter only."""
    monkeypatch.setattr(host, "REAPER_PATH", tmp_path / "missing-reaper")
    backend = LinuxSandboxBackend(prepared_slots=0)
    reason = backend.facts().unavailable_reason
    if reason:
        pytest.skip(f"Linux sandbox unavailable on this host: {reason}")
    assert backend.facts().reaper is None
    try:
        code_dir = write_action(tmp_path / "a", "python", "def main(a):\n    return {'ok': 1}\n")
        sandbox = await ActionSandbox.start(backend, SandboxSpec(family="python", code_dir=code_dir))
        assert (await sandbox.run())["result"] == {"ok": 1}
        pid = sandbox.process.pid
        assert Path(f"/proc/{pid}/exe").resolve() != host.REAPER_PATH
        fields = _status(pid)
        assert fields["Seccomp_filters"] == "1"
        assert fields["NoNewPrivs"] == "1"
        await sandbox.kill()
    finally:
        await backend.close()
