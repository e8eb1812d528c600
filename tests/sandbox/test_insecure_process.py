"""InsecureProcessBackend: unconfined child processes with a minimal env, rlimits and group kill."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from stockade.invoker.protocol import FrameChannel
from stockade.sandbox import InsecureProcessBackend, SandboxSpec


@pytest.fixture
async def backend():
    b = InsecureProcessBackend()
    yield b
    await b.close()
    assert b.live_count == 0


def spec_for(code_dir, source, **kw):
    (code_dir / "__main__.py").write_text(source)
    return SandboxSpec(family="python", code_dir=code_dir, **kw)


async def init_and_run(process, value=None):
    channel = FrameChannel(process.control)
    init = await channel.request(
        {"op": "init", "code_dir": process.code_path, "main": "main", "binary": False, "env": {}}
    )
    assert init == {"ok": True}
    return await channel.request({"op": "run", "value": value or {}, "env": {}, "deadline_ms": 0, "cpu_ms": 0})


def test_report_is_loud_about_being_unconfined():
    report = InsecureProcessBackend().report()
    assert report.name == "insecure_process"
    assert report.mode == "unconfined"
    assert "NOT a sandbox" in report.warnings[0]
    assert any("filesystem" in item for item in report.not_enforced)


async def test_environment_is_only_the_spec_plus_path_and_lang(backend, tmp_path):
    spec = spec_for(tmp_path, "import os\ndef main(a):\n    return dict(os.environ)\n", env={"K": "v"})
    process = await backend.start(spec)
    reply = await init_and_run(process)
    env = reply["result"]
    assert env.pop("K") == "v"
    assert env.pop("PATH")
    assert env.pop("LANG") == "C.UTF-8"
    assert set(env) <= {"LC_CTYPE"}
    await process.kill()


async def test_runner_has_its_own_session_cwd_and_rlimits(backend, tmp_path):
    spec = spec_for(
        tmp_path,
        "import os, resource\ndef main(a):\n"
        "    return {'sid': os.getsid(0), 'pid': os.getpid(), 'cwd': os.getcwd(),\n"
        "            'nofile': resource.getrlimit(resource.RLIMIT_NOFILE)[0],\n"
        "            'as': resource.getrlimit(resource.RLIMIT_AS)[0],\n"
        "            'core': resource.getrlimit(resource.RLIMIT_CORE)[0]}\n",
        memory_mb=200,
        max_open_files=100,
    )
    process = await backend.start(spec)
    result = (await init_and_run(process))["result"]
    assert result["sid"] == result["pid"] == process.pid
    assert result["cwd"] == str(tmp_path)
    assert result["nofile"] == 100
    assert result["as"] == (200 + 128) * 1024 * 1024
    assert result["core"] == 0
    await process.kill()


async def test_kill_kills_the_process_group_and_is_idempotent(backend, tmp_path):
    spec = spec_for(
        tmp_path,
        "import subprocess\ndef main(a):\n    return {'child': subprocess.Popen(['sleep', '30']).pid}\n",
    )
    process = await backend.start(spec)
    child = (await init_and_run(process))["result"]["child"]
    assert process.stray_processes() == [child]
    assert process.is_alive()
    await asyncio.gather(process.kill(), process.kill())
    await process.kill()
    assert not process.is_alive()
    assert process.control.fileno() == -1
    with pytest.raises(OSError):
        os.fstat(process.stdout_fd)
    for _ in range(200):
        try:
            with open(f"/proc/{child}/stat") as f:
                if f.read().split(")")[1].split()[0] == "Z":
                    break
        except FileNotFoundError:
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("child survived the kill")


async def test_kill_reaches_a_child_that_left_the_process_group(backend, tmp_path):
    spec = spec_for(
        tmp_path,
        "import subprocess\ndef main(a):\n"
        "    return {'child': subprocess.Popen(['sleep', '30'], start_new_session=True).pid}\n",
    )
    process = await backend.start(spec)
    child = (await init_and_run(process))["result"]["child"]
    await process.kill()
    for _ in range(200):
        try:
            os.kill(child, 0)
            with open(f"/proc/{child}/stat") as f:
                if f.read().split(")")[1].split()[0] == "Z":
                    break
        except (ProcessLookupError, FileNotFoundError):
            break
        await asyncio.sleep(0.01)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("child in its own session survived the kill")


async def test_close_kills_everything_started(tmp_path):
    backend = InsecureProcessBackend()
    spec = spec_for(tmp_path, "def main(a):\n    return {}\n")
    processes = [await backend.start(spec) for _ in range(3)]
    assert backend.live_count == 3
    await backend.close()
    assert backend.live_count == 0
    assert not any(p.is_alive() for p in processes)
