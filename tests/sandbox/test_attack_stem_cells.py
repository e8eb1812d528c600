"""Attacks on stem cells through the real Linux backend (issue 16, the attacker's pass).

Each test plays an action that tries to get something out of, or around, a stem cell: what the
warm-up or the stem cell's life before assignment left behind (modules, sys.path, require cache,
threads, timers, fds, /tmp, environment), a way to write to or remount /fn or take a second code
mount, frames it forges or receives, and pid 1 (signal, ptrace) and its confinement as
``/proc/<pid>/status`` shows it. The ordinary start of the same spec is the expected value: a
stem cell must be indistinguishable from it for the action.
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import pytest

from stockade.sandbox.harness import ActionSandbox, write_action
from stockade.sandbox.linux import LinuxSandboxBackend
from stockade.sandbox.linux_sandbox import LinuxSandbox
from stockade.sandbox.spec import RuntimeFamily, SandboxSpec

from .conftest import skip_without_runtime, stem_ready
from .test_linux import _children

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]

# What an action can see of the process it runs in, and what it gets from trying to leave it.
PY_ATTACK = r"""
import ctypes, ctypes.util, errno, json, os, signal, socket, struct, sys, threading

_libc = ctypes.CDLL(None, use_errno=True)

def _status(pid):
    keep = ('Uid', 'Gid', 'Groups', 'NoNewPrivs', 'Seccomp', 'Seccomp_filters', 'CapInh', 'CapPrm',
            'CapEff', 'CapBnd', 'CapAmb')
    try:
        lines = open(f'/proc/{pid}/status').read().splitlines()
    except OSError as exc:
        return {'error': exc.strerror}
    return {k: v.strip() for k, v in (l.split(':', 1) for l in lines) if k in keep}

def _errno(call):
    ctypes.set_errno(0)
    rc = call()
    return 'ok' if rc == 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

def _try(fn):
    try:
        fn()
        return 'ok'
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))

def _fds():
    out = {}
    for name in os.listdir('/proc/self/fd'):
        try:
            out[name] = os.readlink(f'/proc/self/fd/{name}').split(':')[0]
        except OSError:
            pass
    return out

def main(args):
    if args.get('attack') == 'forge':
        # A frame on the control socket goes to the host, never back to this runner.
        body = json.dumps({'op': 'assign', 'code_dir': '/tmp', 'env': {'FORGED': '1'}}).encode()
        os.write(3, struct.pack('>I', len(body)) + body)
        return {'forged': True}
    if args.get('attack') == 'env':
        return {'env': dict(os.environ)}
    if args.get('attack') == 'leave':
        os.environ['LEFT_BY_RUN'] = '1'
        open('/tmp/left-by-run', 'w').write('x')
        sys.modules['left_by_run'] = sys
        threading.Thread(target=lambda: threading.Event().wait(), name='left-by-run', daemon=True).start()
        return {'left': True}
    state = {
        'modules': sorted(k for k in sys.modules if k != 'main__'),
        'main_modules': sorted(k for k in sys.modules if 'main' in k or 'warm' in k),
        'path': list(sys.path),
        'threads': sorted(t.name for t in threading.enumerate()),
        'tasks': len(os.listdir('/proc/self/task')),
        'fds': _fds(),
        'tmp': sorted(os.listdir('/tmp')),
        'cwd': os.getcwd(),
        'env': dict(os.environ),
        'tz': [list(__import__('time').tzname), __import__('time').localtime(0).tm_hour],
        'itimer': list(signal.getitimer(signal.ITIMER_PROF)),
        'self': _status('self'),
        'pid1': _status(1),
        'pid1_exe': _try(lambda: os.readlink('/proc/1/exe')),
        'children': open('/proc/1/task/1/children').read().split(),
        'mounts_fn': [l.split()[4:6] for l in open('/proc/self/mountinfo') if l.split()[4] == '/fn'],
    }
    MS_REMOUNT, MS_BIND, MS_RDONLY, MNT_DETACH = 32, 4096, 1, 2
    state['attacks'] = {
        'write_fn': _try(lambda: open('/fn/planted', 'w')),
        'chmod_fn': _try(lambda: os.chmod('/fn/__main__.py', 0o777)),
        'mkdir_fn': _try(lambda: os.mkdir('/fn/sub')),
        'remount_fn_rw': _errno(lambda: _libc.mount(b'none', b'/fn', None, MS_REMOUNT | MS_BIND, None)),
        'umount_fn': _errno(lambda: _libc.umount2(b'/fn', MNT_DETACH)),
        'bind_tmp_on_fn': _errno(lambda: _libc.mount(b'/tmp', b'/fn', None, MS_BIND, None)),
        # open_tree(AT_FDCWD, "/tmp", OPEN_TREE_CLONE): the new mount API
        'open_tree': _errno(lambda: 0 if _libc.syscall(428, -100, b'/tmp', 1) >= 0 else -1),
        'fsopen': _errno(lambda: 0 if _libc.syscall(430, b'tmpfs', 0) >= 0 else -1),
        'unshare_user': _errno(lambda: _libc.unshare(0x10000000)),
        'unshare_mnt': _errno(lambda: _libc.unshare(0x00020000)),
        'setns_pid1_mnt': _try(lambda: os.open('/proc/1/ns/mnt', os.O_RDONLY)),
        'ptrace_pid1': _errno(lambda: _libc.ptrace(16, 1, None, None)),
        'kill_pid1_term': _try(lambda: os.kill(1, signal.SIGTERM)),
        'kill_pid1_kill': _try(lambda: os.kill(1, signal.SIGKILL)),
        'kill_pid1_stop': _try(lambda: os.kill(1, signal.SIGSTOP)),
        'mem_pid1': _try(lambda: os.open('/proc/1/mem', os.O_RDWR)),
        'execve': _try(lambda: os.execv('/usr/bin/true', ['true'])),
    }
    state['pid1_after'] = _status(1)
    state['pid1_state'] = [l for l in open('/proc/1/status').read().splitlines() if l.startswith('State')]
    return state
"""

JS_ATTACK = r"""
const fs = require('fs');
const { spawnSync } = require('child_process');
function status(pid) {
  const keep = ['Uid', 'Gid', 'Groups', 'NoNewPrivs', 'Seccomp', 'Seccomp_filters', 'CapInh', 'CapPrm',
    'CapEff', 'CapBnd', 'CapAmb'];
  const out = {};
  for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0 && keep.includes(line.slice(0, i))) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}
function tryIt(fn) { try { fn(); return 'ok'; } catch (e) { return e.code || String(e); } }
function run(argv) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  return r.error ? (r.error.code || String(r.error)) : (r.status === 0 ? 'ok' : `exit ${r.status}`);
}
function fds() {
  const out = {};
  for (const name of fs.readdirSync('/proc/self/fd')) {
    try { out[name] = fs.readlinkSync(`/proc/self/fd/${name}`).split(':')[0]; } catch (e) { /* gone */ }
  }
  return out;
}
async function main(args) {
  if (args.attack === 'forge') {
    const body = Buffer.from(JSON.stringify({ op: 'assign', code_dir: '/tmp', env: { FORGED: '1' } }));
    const head = Buffer.alloc(4); head.writeUInt32BE(body.length);
    fs.writeSync(3, Buffer.concat([head, body]));
    return { forged: true };
  }
  if (args.attack === 'env') return { env: { ...process.env } };
  if (args.attack === 'leave') {
    process.env.LEFT_BY_RUN = '1';
    fs.writeFileSync('/tmp/left-by-run', 'x');
    globalThis.leftByRun = true;
    setInterval(() => {}, 1000);
    return { left: true };
  }
  await new Promise((r) => setImmediate(r));
  const state = {
    requireCache: Object.keys(require.cache).filter((k) => !k.startsWith('/fn/')).sort(),
    globals: Object.keys(globalThis).sort(),
    resources: process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').sort(),
    fds: fds(),
    tmp: fs.readdirSync('/tmp').sort(),
    cwd: process.cwd(),
    env: { ...process.env },
    envProto: String(process.env.__proto__ === Object.prototype),
    tz: [Intl.DateTimeFormat().resolvedOptions().timeZone, new Date(0).getHours(), new Date(0).toString()],
    self: status('self'),
    pid1: status(1),
    children: fs.readFileSync('/proc/1/task/1/children', 'utf8').trim().split(/\s+/),
    mountsFn: fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' '))
      .filter((f) => f[4] === '/fn').map((f) => f.slice(4, 6)),
  };
  state.attacks = {
    write_fn: tryIt(() => fs.writeFileSync('/fn/planted', 'x')),
    chmod_fn: tryIt(() => fs.chmodSync('/fn/index.js', 0o777)),
    remount_fn_rw: run(['/usr/bin/mount', '-o', 'remount,bind,rw', '/fn']),
    umount_fn: run(['/usr/bin/umount', '-l', '/fn']),
    unshare_user: run(['/usr/bin/unshare', '-Ur', '/usr/bin/true']),
    unshare_user_mount: run(['/usr/bin/unshare', '-Urm', '/usr/bin/mount', '-o', 'remount,bind,rw', '/fn']),
    nsenter_pid1: run(['/usr/bin/nsenter', '-t', '1', '-m', '/usr/bin/true']),
    kill_pid1_term: tryIt(() => process.kill(1, 'SIGTERM')),
    kill_pid1_kill: tryIt(() => process.kill(1, 'SIGKILL')),
    kill_pid1_stop: tryIt(() => process.kill(1, 'SIGSTOP')),
    mem_pid1: tryIt(() => fs.closeSync(fs.openSync('/proc/1/mem', 'r+'))),
  };
  state.pid1After = status(1);
  state.pid1State = fs.readFileSync('/proc/1/status', 'utf8').split('\n').filter((l) => l.startsWith('State'));
  return state;
}
exports.main = main;
"""
ATTACKS: dict[RuntimeFamily, str] = {"python": PY_ATTACK, "nodejs": JS_ATTACK}
_HEADER = struct.Struct(">I")
# Refusals an unprivileged, seccomp-filtered process may get for each attempt (never "ok").
_REFUSED = {"EPERM", "EACCES", "EROFS", "ENOSYS", "EINVAL", "ENOENT"}


async def _stem_start(backend: LinuxSandboxBackend, spec: SandboxSpec) -> ActionSandbox:
    """Start ``spec`` on a stem cell (asserting that a stem cell served it)."""
    await stem_ready(backend, spec.family, attempts=1500)
    hits = backend.stem_statistics().hits
    sandbox = await ActionSandbox.start(backend, spec)
    assert backend.stem_statistics().hits == hits + 1, "the stem cell did not serve this start"
    return sandbox


def _spec(tmp_path: Path, family: RuntimeFamily, name: str, code: str | None = None, **fields: Any) -> SandboxSpec:
    return SandboxSpec(family=family, code_dir=write_action(tmp_path / name, family, code or ATTACKS[family]), **fields)


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    # pid 1's children are the runner's own pid (2 in both) and nothing else.
    return {key: value for key, value in state.items() if key not in ("attacks",)}


@pytest.mark.parametrize("family", ["python", "nodejs"])
async def test_a_stem_cell_is_indistinguishable_from_an_ordinary_start(
    stem_backend: LinuxSandboxBackend, backend: LinuxSandboxBackend, tmp_path: Path, family: RuntimeFamily
) -> None:
    """Nothing of the warm-up or the stem cell's wait shows: modules, sys.path or require cache, globals,
    threads and timers, fds, /tmp, cwd, environment, confinement of the runner and of pid 1."""
    skip_without_runtime(stem_backend, family)
    # Variables the runtime or the loader would act on, malformed names, a NUL, overriding the base.
    env = {
        "GREETING": "hi",
        "LD_PRELOAD": "/tmp/x.so",
        "LD_LIBRARY_PATH": "/tmp",
        "PYTHONPATH": "/tmp",
        "PYTHONSTARTUP": "/tmp/x.py",
        "__OW_API_KEY": "forged",
        "BAD=NAME": "v",
        "": "empty",
        "NUL": "a\0b",
        "PATH": "/tmp",
        "LANG": "C",
        # Read by the runtime at boot in the ordinary start, set afterwards on a stem cell.
        "TZ": "Asia/Tokyo",
        "__proto__": "x",
        "constructor": "y",
    }
    if family == "python":
        env["NODE_OPTIONS"] = "--require /tmp/x.js"
    spec = _spec(tmp_path, family, "probe", env=env)
    stem = await _stem_start(stem_backend, spec)
    ordinary = await ActionSandbox.start(backend, spec)
    try:
        seen, expected = (await stem.run())["result"], (await ordinary.run())["result"]
    finally:
        await stem.kill()
        await ordinary.kill()
    assert _comparable(seen) == _comparable(expected)
    assert seen["attacks"] == expected["attacks"]
    assert seen["tmp"] == []
    assert seen["cwd"] == "/fn"
    for dropped in ("LD_PRELOAD", "LD_LIBRARY_PATH", "NODE_OPTIONS", "BAD=NAME", "", "NUL"):
        assert dropped not in seen["env"], dropped
    assert seen["env"]["GREETING"] == "hi"
    if family == "python":
        assert seen["main_modules"] == ["__main__", "main__"] or seen["main_modules"] == ["__main__"]
        assert not any("warmup" in entry for entry in seen["path"]), seen["path"]
        assert seen["threads"] == ["MainThread"]
        assert seen["tasks"] == 1
        assert seen["itimer"] == [0.0, 0.0]
        assert sorted(seen["fds"]) == ["0", "1", "2", "3"], seen["fds"]
    else:
        assert not any("warmup" in entry for entry in seen["requireCache"]), seen["requireCache"]
        assert "leftByRun" not in seen["globals"]
    # The runner: uid 1000, no capabilities, no_new_privs, seccomp filtering; pid 1 the same or tighter.
    for status in (seen["self"], seen["pid1"]):
        assert status["NoNewPrivs"] == "1"
        assert status["Seccomp"] == "2"
        assert int(status["Seccomp_filters"]) >= 1
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(status[cap], 16) == 0, (cap, status)
        assert status["Uid"].split() == ["1000"] * 4
    # pid 1 is the static reaper under both filters (Node.js's, then Python's), the runner under one.
    if stem_backend.facts().reaper is not None:
        assert int(seen["pid1"]["Seccomp_filters"]) >= 2, seen["pid1"]
    assert seen["children"] == ["2"]
    assert seen["pid1State"] if family == "nodejs" else seen["pid1_state"]


@pytest.mark.parametrize("family", ["python", "nodejs"])
async def test_an_action_on_a_stem_cell_cannot_touch_fn_or_pid_1(
    stem_backend: LinuxSandboxBackend, tmp_path: Path, family: RuntimeFamily
) -> None:
    """Write, chmod, remount, unmount, a second mount over /fn, a new user namespace, ptrace, signals,
    /proc/1/mem: every one refused; pid 1 still alive and not stopped afterwards."""
    skip_without_runtime(stem_backend, family)
    stem = await _stem_start(stem_backend, _spec(tmp_path, family, "attack"))
    try:
        reply = await stem.run()
        assert reply["ok"], reply
        seen = reply["result"]
        for name, outcome in seen["attacks"].items():
            if name.startswith("kill_pid1"):
                # The kernel drops signals to a namespace's init that it has no handler for: the call
                # "succeeds" (or is refused); what counts is that pid 1 is untouched, checked below.
                continue
            assert outcome != "ok", (name, outcome)
            if outcome.startswith("exit ") or outcome in _REFUSED:
                continue
            raise AssertionError(f"{name}: unexpected outcome {outcome}")
        state = seen["pid1State"] if family == "nodejs" else seen["pid1_state"]
        assert state, seen
        assert "S (sleeping)" in state[0] or "R (running)" in state[0], state
        # Still one mount at /fn, read-only and noexec, after every attempt.
        mounts = seen["mountsFn"] if family == "nodejs" else seen["mounts_fn"]
        assert len(mounts) == 1, mounts
        assert {"ro", "nosuid", "nodev", "noexec"} <= set(mounts[0][1].split(",")), mounts
        # The sandbox still serves (pid 1 was not killed by the signals).
        assert stem.process.is_alive()
        again = await stem.run({"attack": "env"})
        assert again["ok"], again
    finally:
        await stem.kill()


@pytest.mark.parametrize("family", ["python", "nodejs"])
async def test_a_forged_assign_frame_goes_to_the_host_not_the_runner(
    stem_backend: LinuxSandboxBackend, tmp_path: Path, family: RuntimeFamily
) -> None:
    """An action that writes an `assign` frame on fd 3 only talks to the host; its own environment and
    cwd stay; the host, reading it as a reply, never applies it; a second real assign ends the runner."""
    skip_without_runtime(stem_backend, family)
    stem = await _stem_start(stem_backend, _spec(tmp_path, family, "forge"))
    try:
        # The forged frame arrives first on the host side, before the run's real reply.
        forged = await stem.run({"attack": "forge"})
        assert forged == {"op": "assign", "code_dir": "/tmp", "env": {"FORGED": "1"}}
        real = await stem._receive(asyncio.get_running_loop())
        assert real["ok"]
        assert real["result"] == {"forged": True}
        env = (await stem.run({"attack": "env"}))["result"]["env"]
        assert "FORGED" not in env
        # A real second assign (from the host) is refused by ending the runner, not obeyed.
        with pytest.raises(EOFError):
            await stem.request({"op": "assign", "code_dir": "/tmp", "env": {"FORGED": "1"}}, timeout_s=10)
        assert await stem.wait_dead(10)
    finally:
        await stem.kill()


@pytest.mark.parametrize("family", ["python", "nodejs"])
async def test_a_warm_frame_after_assignment_runs_nothing(
    stem_backend: LinuxSandboxBackend, tmp_path: Path, family: RuntimeFamily
) -> None:
    """A `warm` frame reaching an assigned runner (the host never sends one; a confused host might) neither
    loads other code nor replaces the action: the next run is still the action's own."""
    skip_without_runtime(stem_backend, family)
    stem = await _stem_start(stem_backend, _spec(tmp_path, family, "warm-after"))
    try:
        loop = asyncio.get_running_loop()
        body = b'{"op":"warm","code_dir":"/opt/stockade/runtimes/' + family.encode() + b'/warmup"}'
        await loop.sock_sendall(stem.process.control, _HEADER.pack(len(body)) + body)
        seen = (await stem.run({"attack": "env"}))["result"]
        assert "env" in seen
        assert "warm" not in seen
    finally:
        await stem.kill()


@pytest.mark.parametrize("family", ["python", "nodejs"])
async def test_what_one_action_leaves_never_reaches_the_next_stem_cell(
    stem_backend: LinuxSandboxBackend, tmp_path: Path, family: RuntimeFamily
) -> None:
    """A tenant leaves files in /tmp, environment, modules or globals, threads or timers: the next stem
    cell (another action) sees none of it, and the first action's sandbox is never a stem cell again."""
    skip_without_runtime(stem_backend, family)
    first = await _stem_start(stem_backend, _spec(tmp_path, family, "leaver", env={"TENANT": "one"}))
    try:
        assert (await first.run({"attack": "leave"}))["result"] == {"left": True}
        assert first.process.sandbox_id not in {
            stem.sandbox.sandbox_id for stems in stem_backend._stems.ready.values() for stem in stems
        }
        second = await _stem_start(stem_backend, _spec(tmp_path, family, "finder"))
        try:
            seen = (await second.run())["result"]
        finally:
            await second.kill()
    finally:
        await first.kill()
    assert seen["tmp"] == []
    assert "LEFT_BY_RUN" not in seen["env"]
    assert "TENANT" not in seen["env"]
    if family == "python":
        assert "left_by_run" not in seen["modules"]
        assert seen["threads"] == ["MainThread"]
    else:
        assert "leftByRun" not in seen["globals"]
        assert "Timeout" not in seen["resources"], seen["resources"]


async def test_a_stem_cell_enforces_cpu_and_memory(
    stem_backend: LinuxSandboxBackend, tmp_path: Path, needs_root: None
) -> None:
    """A Python stem cell taken by a 1 s action that loops is stopped by its CPU budget; one taken by a
    128 MB action that allocates 200 MB is stopped by its cgroup (OOM kill or MemoryError), never served."""
    if stem_backend.facts().cgroup_layout is None:
        pytest.skip("the memory limit needs cgroups (root mode)")
    loop_code = "def main(a):\n    while True:\n        pass\n"
    spinner = await _stem_start(stem_backend, _spec(tmp_path, "python", "spin", loop_code, timeout_ms=1000))
    try:
        reply = await spinner.run(cpu_ms=1000, timeout_s=60)
        assert not reply["ok"], reply
        assert "CPU time limit" in reply["error"], reply
    finally:
        await spinner.kill()
    hog_code = "def main(a):\n    block = bytearray(200 << 20)\n    block[::4096] = b'x' * len(block[::4096])\n    return {'n': len(block)}\n"
    hog = await _stem_start(stem_backend, _spec(tmp_path, "python", "hog", hog_code, memory_mb=128))
    try:
        try:
            reply = await hog.run(timeout_s=60)
        except EOFError:
            reply = {"ok": False, "error": "killed"}
        assert not reply.get("ok"), reply
        process = hog.process
        assert isinstance(process, LinuxSandbox)
        assert process.group is not None
        limit = Path(process.group.dirs["memory"], "memory.limit_in_bytes").read_text().strip()
        assert limit == str(128 << 20)
    finally:
        await hog.kill()


async def test_pid_1_of_a_stem_cell_is_the_confined_reaper_seen_from_the_host(
    stem_backend: LinuxSandboxBackend,
) -> None:
    """From the host: a waiting stem cell's pid 1 and runner have no capabilities, no_new_privs, seccomp
    filters (pid 1: two), and a host uid of their slot (never 0)."""
    await stem_ready(stem_backend, "python", attempts=1500)
    (stem,) = stem_backend._stems.ready["python"]
    pid1 = stem.sandbox.pid
    (runner,) = _children(pid1)
    for pid, filters in ((pid1, 2 if stem_backend.facts().reaper is not None else 1), (runner, 1)):
        status = dict(
            (line.split(":", 1)[0], line.split(":", 1)[1].strip())
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
        assert status["NoNewPrivs"] == "1"
        assert status["Seccomp"] == "2"
        assert int(status["Seccomp_filters"]) >= filters, (pid, status["Seccomp_filters"])
        assert int(status["CapEff"], 16) == 0
        assert int(status["CapPrm"], 16) == 0
        assert int(status["CapBnd"], 16) == 0
        assert "0" not in status["Uid"].split()


async def test_a_stem_cell_taken_during_a_refill_is_replaced(
    stem_backend: LinuxSandboxBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Draining the stem cells: one taken while a background refill is past its check is replaced by
    that refill (found by this module: before the fix it stayed missing until the next start, so
    every other start of a busy host missed its stem cell)."""
    await stem_ready(stem_backend, "python", attempts=1500)
    entered, gate = asyncio.Event(), asyncio.Event()
    original = stem_backend._refill

    async def gated() -> None:
        entered.set()
        await gate.wait()
        await original()

    monkeypatch.setattr(stem_backend, "_refill", gated)
    stem_backend._schedule_refill()
    task = stem_backend._refill_task
    assert task is not None
    await entered.wait()  # the refill is past the stem cells, refilling the parked children
    sandbox = await _stem_start(stem_backend, _spec(tmp_path, "python", "during-refill"))
    try:
        assert stem_backend.stem_statistics().ready["python"] == 0
        gate.set()
        await task
        assert stem_backend.stem_statistics().ready["python"] == 1
    finally:
        gate.set()
        await sandbox.kill()


async def test_an_action_cannot_raise_the_cpu_backstop_its_stem_cell_lowered(
    stem_backend: LinuxSandboxBackend, tmp_path: Path
) -> None:
    """A Python stem cell lowers RLIMIT_CPU for a short timeout at assignment: the hard limit goes down
    too, so the action cannot raise it back to the stem cell's (no CAP_SYS_RESOURCE)."""
    code = (
        "import resource\n"
        "def main(a):\n"
        "    try:\n"
        "        resource.setrlimit(resource.RLIMIT_CPU, (605, 605))\n"
        "        raised = True\n"
        "    except (ValueError, OSError) as exc:\n"
        "        raised = type(exc).__name__\n"
        "    return {'raised': raised, 'cpu': list(resource.getrlimit(resource.RLIMIT_CPU))}\n"
    )
    sandbox = await _stem_start(stem_backend, _spec(tmp_path, "python", "raise-cpu", code, timeout_ms=1000))
    try:
        seen = (await sandbox.run())["result"]
    finally:
        await sandbox.kill()
    assert seen["raised"] is not True, seen
    assert seen["cpu"] == [60, 65], seen
