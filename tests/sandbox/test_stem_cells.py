"""Stem cells: sandboxes started before their action is known, then given its code and environment.

Hit and miss paths through the real Linux backend, for Python and Node.js: the code arrives
read-only and noexec at /fn, the environment is exactly what the ordinary start gives, a stem cell
serves one action only, holds nothing of any action before it is assigned, falls back to the
ordinary start when attaching fails, and the zygote still never holds an action's secret.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from pathlib import Path
from typing import Any

import pytest

from stockade.sandbox.harness import ActionSandbox, write_action
from stockade.sandbox.linux import LinuxSandboxBackend
from stockade.sandbox.linux_sandbox import LinuxSandbox
from stockade.sandbox.spec import RuntimeFamily, SandboxSpec

from .conftest import skip_without_runtime, stem_ready, until
from .test_linux import _children, _memory_contains

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]

PY_PROBE = """
import os
def main(args):
    mount = [line.split() for line in open('/proc/self/mountinfo') if line.split()[4] == '/fn']
    try:
        open('/fn/planted', 'w')
        writable = True
    except OSError as exc:
        writable = exc.strerror
    return {'cwd': os.getcwd(), 'files': sorted(os.listdir('.')), 'env': dict(os.environ),
            'fn_options': mount[-1][5] if mount else None, 'writable': writable}
"""
JS_PROBE = """
const fs = require('fs');
function main(args) {
  const mount = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\\n').map((l) => l.split(' '))
    .filter((f) => f[4] === '/fn');
  let writable = true;
  try { fs.writeFileSync('/fn/planted', 'x'); } catch (e) { writable = e.code; }
  return { cwd: process.cwd(), files: fs.readdirSync('.').sort(), env: { ...process.env },
           fn_options: mount.length ? mount[mount.length - 1][5] : null, writable };
}
"""
PROBES: dict[RuntimeFamily, str] = {"python": PY_PROBE, "nodejs": JS_PROBE}
# What an action's environment may carry, including what the sandbox must filter out.
ACTION_ENV = {"GREETING": "hello", "__OW_API_HOST": "https://example.test", "LD_PRELOAD": "/tmp/x.so"}


@pytest.fixture
def needs_node(stem_backend: LinuxSandboxBackend) -> None:
    """Skip (with the reason) where Node.js cannot run in a sandbox."""
    skip_without_runtime(stem_backend, "nodejs")


async def _start(backend: LinuxSandboxBackend, spec: SandboxSpec) -> ActionSandbox:
    return await ActionSandbox.start(backend, spec)


def _spec(tmp_path: Path, family: RuntimeFamily, name: str, code: str | None = None, **fields: Any) -> SandboxSpec:
    return SandboxSpec(family=family, code_dir=write_action(tmp_path / name, family, code or PROBES[family]), **fields)


@pytest.mark.parametrize("family", ["python", "nodejs"])
async def test_a_stem_cell_takes_the_action_code_read_only_with_the_ordinary_environment(
    stem_backend: LinuxSandboxBackend, backend: LinuxSandboxBackend, tmp_path: Path, family: RuntimeFamily
) -> None:
    """Hit: /fn holds the code (ro, nosuid, nodev, noexec), cwd is /fn, the environment equals the ordinary start's."""
    skip_without_runtime(stem_backend, family)
    await stem_ready(stem_backend, family)
    hits = stem_backend.stem_statistics().hits
    spec = _spec(tmp_path, family, "probe", env=ACTION_ENV)
    stem = await _start(stem_backend, spec)
    assert stem_backend.stem_statistics().hits == hits + 1
    ordinary = await _start(backend, spec)  # the module's backend has no stem cells
    try:
        seen, expected = (await stem.run())["result"], (await ordinary.run())["result"]
        # Nothing of the stem cell's life before assignment (warm-up, assign) reaches the action's logs.
        assert stem.logs() == (b"", b"")
    finally:
        await stem.kill()
        await ordinary.kill()
    entry = "__main__.py" if family == "python" else "index.js"
    assert seen["files"] == [entry]
    assert seen["cwd"] == "/fn"
    assert seen["env"] == expected["env"]
    assert "LD_PRELOAD" not in seen["env"]
    assert seen["env"]["GREETING"] == "hello"
    assert seen["env"]["__OW_API_HOST"] == "https://example.test"
    options = set(seen["fn_options"].split(","))
    assert {"ro", "nosuid", "nodev", "noexec"} <= options, seen["fn_options"]
    assert seen["writable"] in ("Read-only file system", "EROFS"), seen["writable"]
    assert seen["fn_options"] == expected["fn_options"]


@pytest.mark.parametrize("family", ["python", "nodejs"])
async def test_a_stem_cell_serves_one_action_only(
    stem_backend: LinuxSandboxBackend, tmp_path: Path, family: RuntimeFamily
) -> None:
    """Two actions get two different sandboxes; each sees only its own code; an assigned one is never pooled."""
    skip_without_runtime(stem_backend, family)
    await stem_ready(stem_backend, family)
    first = await _start(stem_backend, _spec(tmp_path, family, "first"))
    assert stem_backend.stem_statistics().ready[family] == 0  # taken, not shared
    await stem_ready(stem_backend, family)
    second = await _start(stem_backend, _spec(tmp_path, family, "second", env={"WHO": "second"}))
    try:
        assert first.process.sandbox_id != second.process.sandbox_id
        one, two = (await first.run())["result"], (await second.run())["result"]
        assert one["files"] == two["files"]  # one entry file each, from its own directory
        assert "WHO" not in one["env"]
        assert two["env"]["WHO"] == "second"
        # A second assign is refused by the runner: it ends the sandbox instead of taking new code or env.
        with pytest.raises(EOFError):
            await first.request({"op": "assign", "code_dir": "/fn", "env": {"WHO": "again"}}, timeout_s=10)
        assert await first.wait_dead(10)
    finally:
        await first.kill()
        await second.kill()


async def test_limits_a_stem_cell_cannot_match_take_the_ordinary_start(
    stem_backend: LinuxSandboxBackend, tmp_path: Path, needs_node: None
) -> None:
    """Miss: another Node.js heap (memory), another CPU backstop (timeout), another process cap, a boot-time variable."""
    await stem_ready(stem_backend, "nodejs")
    await stem_ready(stem_backend, "python")
    before = stem_backend.stem_statistics()
    specs = [
        _spec(tmp_path, "nodejs", "memory", memory_mb=512),
        _spec(tmp_path, "python", "timeout", timeout_ms=600_000),
        _spec(tmp_path, "python", "pids", max_pids=16),
        _spec(tmp_path, "nodejs", "boot-env", env={"NODE_EXTRA_CA_CERTS": "/fn/ca.pem"}),
    ]
    for spec in specs:
        sandbox = await _start(stem_backend, spec)
        try:
            assert (await sandbox.run())["ok"]
        finally:
            await sandbox.kill()
    after = stem_backend.stem_statistics()
    assert after.hits == before.hits
    assert after.misses == before.misses + len(specs)
    assert after.ready == {"python": 1, "nodejs": 1}  # still there for a matching action


async def test_a_python_stem_cell_lowers_its_cpu_backstop_for_a_shorter_timeout(
    stem_backend: LinuxSandboxBackend, backend: LinuxSandboxBackend, tmp_path: Path
) -> None:
    """A timeout under 60 s still hits a Python stem cell, whose runner ends with the ordinary start's RLIMIT_CPU."""
    code = "import resource\ndef main(a):\n    return {'cpu': list(resource.getrlimit(resource.RLIMIT_CPU))}\n"
    spec = _spec(tmp_path, "python", "short", code, timeout_ms=61_000 - 60_000)  # 1 s
    await stem_ready(stem_backend, "python")
    hits = stem_backend.stem_statistics().hits
    stem = await _start(stem_backend, spec)
    ordinary = await _start(backend, spec)
    try:
        assert stem_backend.stem_statistics().hits == hits + 1
        seen, expected = (await stem.run())["result"], (await ordinary.run())["result"]
    finally:
        await stem.kill()
        await ordinary.kill()
    assert seen == expected
    assert seen["cpu"] == [60, 65]  # max(60 s, 10 x timeout) and the SIGKILL margin


async def test_memory_limit_is_applied_to_a_python_stem_cell(stem_backend: LinuxSandboxBackend, tmp_path: Path) -> None:
    """In root mode a Python stem serves any memory limit: its cgroup takes the action's limits."""
    if stem_backend.facts().mode != "root" or stem_backend.facts().cgroup_layout is None:
        pytest.skip("cgroup limits need root mode with cgroups")
    await stem_ready(stem_backend, "python")
    hits = stem_backend.stem_statistics().hits
    sandbox = await _start(stem_backend, _spec(tmp_path, "python", "mem", memory_mb=128))
    try:
        assert stem_backend.stem_statistics().hits == hits + 1
        process = sandbox.process
        assert isinstance(process, LinuxSandbox)
        assert process.group is not None
        memory = Path(process.group.dirs["memory"], "memory.limit_in_bytes").read_text().strip()
        assert memory == str(128 << 20)
    finally:
        await sandbox.kill()


async def test_a_failed_attach_kills_the_stem_cell_and_falls_back(
    stem_backend: LinuxSandboxBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zygote's helper cannot join the namespaces it is pointed at: the stem dies, the start still succeeds."""
    await stem_ready(stem_backend, "python")
    (stem,) = stem_backend._stems.ready["python"]
    stem_pid = stem.sandbox.pid
    # A pidfd of a process that is no sandbox (this test process): setns into our own user
    # namespace fails in the real helper.
    own = os.pidfd_open(os.getpid())
    monkeypatch.setattr(LinuxSandbox, "pidfd", property(lambda self: own))
    before = stem_backend.stem_statistics()
    try:
        sandbox = await _start(stem_backend, _spec(tmp_path, "python", "fallback"))
    finally:
        monkeypatch.undo()
        os.close(own)
    try:
        after = stem_backend.stem_statistics()
        assert after.attach_failures == before.attach_failures + 1
        assert after.hits == before.hits
        assert sandbox.process.sandbox_id != stem.sandbox.sandbox_id
        assert not stem.sandbox.is_alive()
        assert not Path(f"/proc/{stem_pid}").exists() or "Z" in Path(f"/proc/{stem_pid}/stat").read_text().split()[2]
        assert (await sandbox.run())["result"]["files"] == ["__main__.py"]
    finally:
        await sandbox.kill()


async def test_a_stem_cell_that_died_is_not_used(stem_backend: LinuxSandboxBackend, tmp_path: Path) -> None:
    """A stem cell killed while waiting is detected at assignment; the start falls back."""
    await stem_ready(stem_backend, "python")
    (stem,) = stem_backend._stems.ready["python"]
    os.kill(stem.sandbox.pid, signal.SIGKILL)
    await until(lambda: not stem.sandbox.is_alive(), "the stem cell to die")
    failures = stem_backend.stem_statistics().attach_failures
    sandbox = await _start(stem_backend, _spec(tmp_path, "python", "after-death"))
    try:
        assert stem_backend.stem_statistics().attach_failures == failures + 1
        assert (await sandbox.run())["ok"]
    finally:
        await sandbox.kill()


async def test_stem_cells_hold_no_environment_or_secret_before_assignment(
    stem_backend: LinuxSandboxBackend, tmp_path: Path
) -> None:
    """A waiting stem cell has the base environment only; after an action with a secret ran, neither the
    next stem cell, the zygote nor its helpers hold that secret."""
    token = f"s3cr3t-{secrets.token_hex(12)}"
    await stem_ready(stem_backend, "python")
    code = "import os\ndef main(a):\n    return {'has': os.environ.get('STOCKADE_T') == a.get('t')}\n"
    sandbox = await _start(stem_backend, _spec(tmp_path, "python", "secret", code, env={"STOCKADE_T": token}))
    try:
        assert (await sandbox.run({"t": token}))["result"] == {"has": True}
        (runner,) = _children(sandbox.process.pid)
        assert _memory_contains(runner, token.encode())  # positive control
        await stem_ready(stem_backend, "python")
        await asyncio.sleep(0.2)  # the zygote forks its next attach helper once idle
        (fresh,) = stem_backend._stems.ready["python"]
        stem_runner = _children(fresh.sandbox.pid)[0]
        environ = Path(f"/proc/{stem_runner}/environ").read_bytes().split(b"\0")
        assert sorted(e.split(b"=")[0] for e in environ if e) == [b"LANG", b"PATH"]
        zygote = stem_backend.zygote_pid
        assert zygote is not None
        for process in [fresh.sandbox.pid, stem_runner, zygote, *_children(zygote)]:
            assert not _memory_contains(process, token.encode()), f"process {process} holds the action's secret"
    finally:
        await sandbox.kill()


async def test_zygote_attach_without_pidfd_is_an_error(stem_backend: LinuxSandboxBackend, tmp_path: Path) -> None:
    """The attach op takes exactly one pidfd; anything else is an error reply and the zygote serves on."""
    from stockade.sandbox.zygote_client import ZygoteError

    zygote = stem_backend._zygote
    assert zygote is not None
    with pytest.raises(ZygoteError, match="exactly one pidfd"):
        await zygote._request({"op": "attach", "code_dir": str(tmp_path)}, None, 10)
    sandbox = await _start(stem_backend, _spec(tmp_path, "python", "after"))
    try:
        assert (await sandbox.run())["ok"]
    finally:
        await sandbox.kill()
