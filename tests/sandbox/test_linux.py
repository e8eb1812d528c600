"""LinuxSandboxBackend: lifecycle, identity, confinement of pid 1, cgroups, teardown and secret hygiene."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
from pathlib import Path

import pytest

from stockade.sandbox.harness import ActionSandbox, write_action
from stockade.sandbox.linux import LinuxSandboxBackend, SandboxStartError
from stockade.sandbox.spec import SandboxSpec

from .conftest import StartAction

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]

STATUS = """
def main(args):
    def status(path):
        fields = {}
        for line in open(path):
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        return fields
    own, init = status("/proc/self/status"), status("/proc/1/status")
    keys = ("Uid", "Gid", "Groups", "CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp")
    return {
        "runner": {k: own[k] for k in keys},
        "reaper": {k: init[k] for k in keys},
        "uid_map": open("/proc/self/uid_map").read().split(),
        "hostname": open("/proc/sys/kernel/hostname").read().strip(),
        "cgroup": open("/proc/self/cgroup").read().split(),
        "mounts": [line.split()[1] for line in open("/proc/self/mounts")],
    }
"""


def _host_status(pid: int) -> dict[str, str]:
    fields = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(p) for p in handle.read().split()]


async def test_report_states_the_mode_and_its_limits(backend: LinuxSandboxBackend) -> None:
    """report() names the mode; root mode enforces cgroups, unprivileged mode lists what it cannot."""
    report = backend.report()
    assert report.name == "linux"
    if os.geteuid() == 0 and backend.facts().cgroup_layout is not None:
        assert report.mode == "root"
        assert any("cgroup.kill" in item for item in report.enforced)
    else:
        assert any("memory" in item for item in report.not_enforced)
    assert any("seccomp" in item for item in report.enforced)


async def test_runner_and_reaper_are_uid_1000_without_any_privilege(start_action: StartAction) -> None:
    """Inside: runner (pid 2) and reaper (pid 1) are uid 1000 with no capabilities, no_new_privs and seccomp."""
    sandbox = await start_action("python", STATUS)
    reply = await sandbox.run()
    assert reply["ok"], reply
    result = reply["result"]
    for who in ("runner", "reaper"):
        fields = result[who]
        assert fields["Uid"].split() == ["1000"] * 4, (who, fields)
        assert fields["Gid"].split() == ["1000"] * 4, (who, fields)
        assert fields["CapEff"] == fields["CapPrm"] == fields["CapBnd"] == "0000000000000000", (who, fields)
        assert fields["NoNewPrivs"] == "1", (who, fields)
        assert fields["Seccomp"] == "2", (who, fields)
    # Exactly one id exists inside, and it is not 0.
    assert result["uid_map"][0] == "1000"
    assert result["uid_map"][2] == "1"
    assert result["hostname"] == "sandbox"
    assert all(line.endswith(":/") for line in result["cgroup"]), result["cgroup"]
    assert "/fn" in result["mounts"]
    assert "/proc" in result["mounts"]


@pytest.mark.root
async def test_each_slot_runs_as_its_own_host_uid(start_action: StartAction, needs_root: None) -> None:
    """Root mode: each live sandbox has a distinct host uid/gid from the reserved range and no groups."""
    first, second = await start_action(), await start_action()
    uids = []
    for sandbox in (first, second):
        (runner,) = _children(sandbox.process.pid)
        fields = _host_status(runner)
        uid = int(fields["Uid"].split()[0])
        assert fields["Uid"].split() == [str(uid)] * 4
        assert fields["Gid"].split() == [str(uid)] * 4
        assert fields["Groups"] == ""
        assert 200_000 <= uid < 200_000 + 10_000
        uids.append(uid)
    assert uids[0] != uids[1]


@pytest.mark.root
async def test_cgroup_limits_are_applied_and_removed(start_action: StartAction, needs_root: None) -> None:
    """The sandbox's cgroups carry the spec's limits, hold its processes, and disappear after kill()."""
    sandbox = await start_action("python", memory_mb=192, max_pids=17, cpu_percent=50)
    group = sandbox.process._group  # type: ignore[attr-defined]
    assert group is not None
    read = lambda name, file: Path(group.dirs[name], file).read_text().strip()  # noqa: E731
    assert int(read("memory", "memory.limit_in_bytes")) == 192 << 20
    assert read("pids", "pids.max") == "17"
    assert read("cpu", "cpu.cfs_quota_us") == "50000"
    assert sandbox.process.pid in group.pids()
    # A prepared slot's limits can go up as well as down.
    group.set_limits(memory_mb=512, max_pids=17, cpu_percent=50)
    assert int(read("memory", "memory.limit_in_bytes")) == 512 << 20
    group.set_limits(memory_mb=192, max_pids=17, cpu_percent=50)
    assert (await sandbox.run({"x": 1}))["result"] == {"echo": {"x": 1}}
    first = sandbox.process.statistics()  # type: ignore[attr-defined]
    assert first.cpu_ns > 0
    # The statistics files stay open and are re-read at offset 0: each read is fresh, not cached.
    await sandbox.run({"x": 2})
    second = sandbox.process.statistics()  # type: ignore[attr-defined]
    assert second.cpu_ns > first.cpu_ns
    assert second.memory_peak_bytes >= first.memory_peak_bytes > 0

    def held_in_group() -> list[str]:
        links = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
                links.append(os.readlink(f"/proc/self/fd/{fd}"))
        return [link for link in links if any(link.startswith(d + "/") for d in group.dirs.values())]

    assert held_in_group()
    await sandbox.kill()
    assert not any(Path(d).exists() for d in group.dirs.values())
    assert held_in_group() == []  # nothing of the removed group stays open


async def test_kill_is_idempotent_and_leaves_nothing(start_action: StartAction) -> None:
    """kill() twice is fine; afterwards no process of the sandbox exists."""
    sandbox = await start_action()
    pids = [sandbox.process.pid, *_children(sandbox.process.pid)]
    await sandbox.kill()
    await sandbox.kill()
    assert not sandbox.process.is_alive()
    assert sandbox.process.stray_processes() == []
    await asyncio.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() and "Z" not in _host_status(pid)["State"] for pid in pids)


async def test_sandbox_ends_when_its_runner_exits(start_action: StartAction) -> None:
    """pid 1 exits with the runner, so nothing can outlive it in the namespace."""
    sandbox = await start_action("python", "import os\ndef main(args):\n    os._exit(3)\n")
    with pytest.raises(EOFError):
        await sandbox.run()
    assert await sandbox.wait_dead(5)


async def test_setup_failure_names_the_step(backend: LinuxSandboxBackend, tmp_path: Path) -> None:
    """A sandbox that cannot be built is refused with the failing step, and the backend keeps working."""
    code_dir = write_action(tmp_path / "a", "python", "def main(a):\n    return {}\n")
    spec = SandboxSpec(family="python", code_dir=code_dir, egress_socket=tmp_path / "no-such.sock")
    with pytest.raises(SandboxStartError, match="open_sources"):
        await backend.start(spec)
    sandbox = await ActionSandbox.start(backend, SandboxSpec(family="python", code_dir=code_dir))
    assert (await sandbox.run())["ok"]
    await sandbox.kill()


async def test_egress_socket_is_the_only_way_out(start_action: StartAction, tmp_path: Path) -> None:
    """With an egress socket (the seam for the allowlist proxy), it is bound at /run/stockade/egress.sock
    and loopback is up for the in-sandbox forwarder; every other address stays unreachable."""
    path = tmp_path / "egress.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    server.setblocking(False)
    path.chmod(0o666)  # the slot uid connects to it
    code = """
import errno, socket
def main(args):
    out = {}
    with socket.socket(socket.AF_UNIX) as s:
        s.connect("/run/stockade/egress.sock")
        s.sendall(b"hello proxy")
    with socket.socket() as listener:
        try:
            listener.bind(("127.0.0.1", 3128))
            out["forwarder_port"] = "free"
        except OSError as exc:
            # The runner's forwarder already listens there (egress.md).
            out["forwarder_port"] = errno.errorcode.get(exc.errno, str(exc.errno))
    try:
        socket.create_connection(("127.0.0.1", 80), timeout=1)
        out["other_port"] = "CONNECTED"
    except OSError as exc:
        out["other_port"] = type(exc).__name__
    out["interfaces"] = [name for _, name in socket.if_nameindex()]
    return out
"""
    sandbox = await start_action("python", code, egress_socket=path)
    reply = await sandbox.run()
    assert reply["ok"], reply
    connection, _ = await asyncio.wait_for(asyncio.get_running_loop().sock_accept(server), 5)
    with connection:
        assert connection.recv(64) == b"hello proxy"
    server.close()
    result = reply["result"]
    assert result["forwarder_port"] == "EADDRINUSE", result
    assert result["other_port"] != "CONNECTED", result
    assert result["interfaces"] == ["lo"], result


async def test_wipe_tmp_empties_tmp_without_following_links(start_action: StartAction, tmp_path: Path) -> None:
    """wipe_tmp() removes files, directories and links in /tmp, never what a planted link points to."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("must survive")
    code = f"""
import os
def main(args):
    if args.get("plant"):
        os.makedirs("/tmp/d/e")
        open("/tmp/d/e/f", "w").write("x")
        os.symlink("{victim}", "/tmp/link")
        os.symlink("{victim}", "/tmp/d/link")
    return {{"tmp": sorted(os.listdir("/tmp"))}}
"""
    sandbox = await start_action("python", code)
    assert (await sandbox.run({"plant": True}))["result"]["tmp"] == ["d", "link"]
    sandbox.process.wipe_tmp()  # type: ignore[attr-defined]
    assert (await sandbox.run())["result"]["tmp"] == []
    assert (victim / "keep").read_text() == "must survive"


async def test_zygote_keeps_no_environment_and_no_action_secret(
    backend: LinuxSandboxBackend, start_action: StartAction
) -> None:
    """The zygote starts with an empty environment and, after serving an action, holds none of its secrets."""
    pid = backend.zygote_pid
    assert pid is not None
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert sorted(e.split(b"=")[0] for e in environ if e) == [b"LANG", b"PATH"]
    token = f"s3cr3t-{secrets.token_hex(12)}"
    sandbox = await start_action(
        "python", "import os\ndef main(a):\n    return {'has': 'STOCKADE_T' in os.environ}\n", env={"STOCKADE_T": token}
    )
    assert (await sandbox.run())["result"] == {"has": True}
    # Positive control: the scan finds the secret where it is meant to be, in the action's own runner.
    (runner,) = _children(sandbox.process.pid)
    assert _memory_contains(runner, token.encode())
    await asyncio.sleep(0.2)  # let the pool refill: new parked children are forked from the zygote now
    for process in [pid, *_children(pid)]:
        assert not _memory_contains(process, token.encode()), f"process {process} holds the action's secret"


def _memory_contains(pid: int, needle: bytes) -> bool:
    try:
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
        mem = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    except OSError:
        return False
    try:
        for line in maps:
            match = re.match(r"([0-9a-f]+)-([0-9a-f]+) (r)", line)
            if not match:
                continue
            start, end = int(match.group(1), 16), int(match.group(2), 16)
            try:
                if needle in os.pread(mem, end - start, start):
                    return True
            except OSError:
                continue
    finally:
        os.close(mem)
    return False


async def test_close_kills_every_sandbox_and_the_zygote(tmp_path: Path) -> None:
    """close() ends every sandbox it started, its parked children, the zygote, and removes its cgroups."""
    backend = LinuxSandboxBackend(prepared_slots=1)
    if backend.facts().unavailable_reason:
        pytest.skip(f"Linux sandbox unavailable on this host: {backend.facts().unavailable_reason}")
    code_dir = write_action(tmp_path / "a", "python", "def main(a):\n    return {}\n")
    sandboxes = [await ActionSandbox.start(backend, SandboxSpec(family="python", code_dir=code_dir)) for _ in range(2)]
    zygote = backend.zygote_pid
    assert zygote is not None
    token = backend._cgroups.token if backend._cgroups else None  # type: ignore[attr-defined]
    await backend.close()
    assert not any(s.process.is_alive() for s in sandboxes)
    await asyncio.sleep(0.1)
    assert not Path(f"/proc/{zygote}").exists() or "Z" in _host_status(zygote)["State"]
    if token is not None:
        assert not list(Path("/sys/fs/cgroup").glob(f"*/**/{token}"))
    with pytest.raises(Exception, match="closed"):
        await backend.start(SandboxSpec(family="python", code_dir=code_dir))


async def test_cancelled_starts_leave_nothing_behind(backend: LinuxSandboxBackend, tmp_path: Path) -> None:
    """A start() cancelled at any point kills what it began; the zygote conversation stays in step."""
    code_dir = write_action(tmp_path / "a", "python", "def main(a):\n    return {'n': a.get('n')}\n")
    spec = SandboxSpec(family="python", code_dir=code_dir)
    live_before = backend.statistics().sandboxes_live
    for delay_ms in (0, 1, 2, 4, 8):
        task = asyncio.ensure_future(backend.start(spec))
        await asyncio.sleep(delay_ms / 1000)
        task.cancel()
        results = await asyncio.gather(task, return_exceptions=True)
        if not isinstance(results[0], BaseException):
            await results[0].kill()
    await asyncio.sleep(0.2)
    assert backend.statistics().sandboxes_live == live_before
    sandbox = await ActionSandbox.start(backend, spec)
    assert (await sandbox.run({"n": 7}))["result"] == {"n": 7}
    await sandbox.kill()
