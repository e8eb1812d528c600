"""Threats with processes and the kernel, from inside a Python and a Node.js action (issue 3).

Python actions can call raw syscalls through ctypes, so they probe the seccomp filter directly.
Node.js actions cannot load native code (every writable or action-controlled mount is noexec), so
they probe through what JavaScript can reach: child processes, /proc and process.dlopen.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from stockade.sandbox.linux import LinuxSandboxBackend

from .conftest import StartAction

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]

EPERM, ENOSYS, EACCES = 1, 38, 13

# main({"calls": [[name, nr, args...], ...]}) -> {name: [ret, errno]} via raw syscall(2)
PY_SYSCALLS = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def main(args):
    out = {}
    for name, nr, *rest in args["calls"]:
        ctypes.set_errno(0)
        ret = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in rest])
        out[name] = [ret, ctypes.get_errno()]
    return out
"""
# main({"argv": [...]}) -> how spawning argv went
JS_SPAWN = """
const cp = require('child_process');
function main(args) {
  const r = cp.spawnSync(args.argv[0], args.argv.slice(1), { encoding: 'utf8', timeout: 5000 });
  return { error: r.error ? r.error.code : null, status: r.status, stdout: r.stdout || '' };
}
"""


async def test_shell_cannot_be_spawned(start_action: StartAction, family: str) -> None:
    """No /bin/sh: execve is denied by seccomp (Python) or by Landlock for anything but node (Node.js)."""
    code = {
        "python": """
import os, subprocess
def main(args):
    out = {}
    try:
        out["subprocess"] = subprocess.run(["/bin/sh", "-c", "echo pwned"], capture_output=True).stdout.decode()
    except OSError as exc:
        out["subprocess"] = type(exc).__name__
    out["system"] = os.system("echo pwned > /tmp/pwned")
    out["pwned_file"] = os.path.exists("/tmp/pwned")
    try:
        out["popen_shell"] = subprocess.Popen("sleep 100 &", shell=True).pid
    except OSError as exc:
        out["popen_shell"] = type(exc).__name__
    return out
""",
        "nodejs": """
const cp = require('child_process');
const fs = require('fs');
function main() {
  const out = {};
  try { out.execSync = cp.execSync('echo pwned', { encoding: 'utf8' }); } catch (e) { out.execSync = e.code || 'error'; }
  const r = cp.spawnSync('/bin/sh', ['-c', 'echo pwned > /tmp/pwned']);
  out.spawnSync = r.error ? r.error.code : r.status;
  out.pwned_file = fs.existsSync('/tmp/pwned');
  return out;
}
""",
    }[family]
    sandbox = await start_action(family, code)
    reply = await sandbox.run()
    assert reply["ok"], reply
    result = reply["result"]
    assert "pwned" not in str(result.values()) or family == "python", result
    assert result["pwned_file"] is False, result
    if family == "python":
        assert result["subprocess"] == "PermissionError", result
        assert result["system"] != 0, result
        assert result["popen_shell"] == "PermissionError", result
    else:
        assert result["execSync"] != "pwned\n", result
        assert result["spawnSync"] == "EACCES", result


async def test_ptrace_and_foreign_memory_access_are_denied(start_action: StartAction, family: str) -> None:
    """ptrace, process_vm_readv and /proc/<pid>/mem of another process all fail; no native code can be loaded."""
    if family == "python":
        sandbox = await start_action(family, PY_SYSCALLS)
        calls = [
            ["traceme", 101, 0, 0, 0, 0],
            ["attach_pid1", 101, 16, 1, 0, 0],
            ["process_vm_readv", 310, 1, 0, 0, 0, 0, 0],
        ]
        reply = await sandbox.run({"calls": calls})
        assert reply["ok"], reply
        for name, (ret, err) in reply["result"].items():
            assert ret == -1, (name, ret, err)
            assert err == EPERM, (name, ret, err)
        return
    code = """
const fs = require('fs');
function main() {
  const out = {};
  try { fs.readFileSync('/proc/1/mem'); out.mem = 'READ'; } catch (e) { out.mem = e.code; }
  try { fs.readFileSync('/proc/1/environ'); out.environ = 'READ'; } catch (e) { out.environ = e.code; }
  // Plant a real shared object in /tmp and try to load it: /tmp is noexec, so mapping it fails.
  const lib = fs.readdirSync('/usr/lib/x86_64-linux-gnu').find((n) => /^libz\\.so\\.1$/.test(n)) || 'libc.so.6';
  fs.copyFileSync('/usr/lib/x86_64-linux-gnu/' + lib, '/tmp/planted.node');
  try { process.dlopen({ exports: {} }, '/tmp/planted.node'); out.dlopen = 'LOADED'; } catch (e) { out.dlopen = String(e.message).slice(0, 80); }
  return out;
}
"""
    sandbox = await start_action(family, code)
    reply = await sandbox.run()
    assert reply["ok"], reply
    result = reply["result"]
    assert result["mem"] != "READ", result
    assert result["environ"] != "READ", result
    assert result["dlopen"] != "LOADED", result
    assert "map" in result["dlopen"], result


async def test_mount_is_denied(start_action: StartAction, family: str) -> None:
    """mount(2) and umount(2) fail (seccomp); the mount(8) binary cannot even be executed."""
    if family == "python":
        code = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def main(args):
    out = {}
    out["mount"] = [libc.mount(b"none", b"/tmp", b"tmpfs", 0, None), ctypes.get_errno()]
    out["umount_fn"] = [libc.umount2(b"/fn", 2), ctypes.get_errno()]
    out["remount_rw"] = [libc.mount(None, b"/", None, 32 | 4096, None), ctypes.get_errno()]
    return out
"""
        sandbox = await start_action(family, code)
        reply = await sandbox.run()
        assert reply["ok"], reply
        for name, (ret, err) in reply["result"].items():
            assert ret == -1, (name, ret, err)
            assert err == EPERM, (name, ret, err)
    else:
        sandbox = await start_action(family, JS_SPAWN)
        reply = await sandbox.run({"argv": ["/usr/bin/mount", "-t", "tmpfs", "none", "/tmp"]})
        assert reply["ok"], reply
        assert reply["result"]["error"] == "EACCES", reply


async def test_new_user_namespace_is_denied(start_action: StartAction, family: str) -> None:
    """unshare(CLONE_NEWUSER), clone with namespace flags and setns fail; clone3 reports ENOSYS."""
    if family == "python":
        code = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def main(args):
    out = {}
    out["unshare_user"] = [libc.unshare(0x10000000), ctypes.get_errno()]
    out["unshare_net"] = [libc.unshare(0x40000000), ctypes.get_errno()]
    out["clone_newuser"] = [libc.syscall(ctypes.c_long(56), ctypes.c_long(0x10000000 | 17), 0, 0, 0, 0), ctypes.get_errno()]
    out["setns"] = [libc.setns(0, 0), ctypes.get_errno()]
    ctypes.set_errno(0)
    out["clone3"] = [libc.syscall(ctypes.c_long(435), 0, 0), ctypes.get_errno()]
    return out
"""
        sandbox = await start_action(family, code)
        reply = await sandbox.run()
        assert reply["ok"], reply
        result = reply["result"]
        assert result.pop("clone3") == [-1, ENOSYS], result
        for name, (ret, err) in result.items():
            assert ret == -1, (name, ret, err)
            assert err == EPERM, (name, ret, err)
    else:
        sandbox = await start_action(family, JS_SPAWN)
        reply = await sandbox.run({"argv": ["/usr/bin/unshare", "-U", "-r", "id"]})
        assert reply["ok"], reply
        assert reply["result"]["error"] == "EACCES", reply


async def test_host_processes_are_invisible(start_action: StartAction, family: str) -> None:
    """/proc shows the sandbox's own pid namespace only: pid 1 (reaper) and pid 2 (runner)."""
    code = {
        "python": "import os\ndef main(args):\n    return {'pids': sorted(int(p) for p in os.listdir('/proc') if p.isdigit()), 'me': os.getpid()}\n",
        "nodejs": "function main() { return { pids: require('fs').readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).map(Number).sort(), me: process.pid }; }\n",
    }[family]
    sandbox = await start_action(family, code)
    reply = await sandbox.run()
    assert reply["ok"], reply
    assert reply["result"] == {"pids": [1, 2], "me": 2}, reply


async def test_host_processes_cannot_be_signalled(start_action: StartAction, family: str) -> None:
    """The test process (standing in for the invoker) is out of reach: ESRCH; kill(-1) stays inside."""
    host_pid = os.getpid()
    code = {
        "python": """
import os, signal
def main(args):
    out = {}
    try:
        os.kill(args["pid"], 0)
        out["probe"] = "VISIBLE"
    except OSError as exc:
        out["probe"] = type(exc).__name__
    if not args.get("kill_all"):
        return out
    child = os.fork()
    if child == 0:
        try:
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    out["survived_kill_all"] = True
    return out
""",
        "nodejs": """
function main(args) {
  const out = {};
  try { process.kill(args.pid, 0); out.probe = 'VISIBLE'; } catch (e) { out.probe = e.code; }
  if (!args.kill_all) return out;
  try { process.kill(-1, 'SIGKILL'); } catch (e) { out.kill_all = e.code; }
  out.survived_kill_all = true;
  return out;
}
""",
    }[family]
    sandbox = await start_action(family, code)
    probe = await sandbox.run({"pid": host_pid})
    assert probe["ok"], probe
    assert probe["result"]["probe"] in ("ProcessLookupError", "ESRCH"), probe
    try:
        reply = await sandbox.run({"pid": host_pid, "kill_all": True})
    except EOFError:
        reply = None  # kill(-1) from a child may take the runner down with it: still contained
    if reply is not None:
        assert reply["ok"], reply
    # The host side is untouched: this process lives, and a new sandbox still starts and runs.
    os.kill(host_pid, 0)
    fresh = await start_action(family, code)
    second = await fresh.run({"pid": host_pid})
    assert second["ok"], second
    assert second["result"]["probe"] in ("ProcessLookupError", "ESRCH"), second


async def test_background_process_is_detected_and_killed(
    start_action: StartAction, family: str, backend: LinuxSandboxBackend
) -> None:
    """'; sleep 100 &' has no shell to run in; a forked/spawned leftover shows in stray_processes and dies with kill()."""
    code = {
        "python": """
import os, subprocess, time
def main(args):
    try:
        subprocess.Popen("; sleep 100 &", shell=True)
        shell = "STARTED"
    except OSError as exc:
        shell = type(exc).__name__
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(100)
        os._exit(0)
    os.waitpid(child, 0)
    return {"shell": shell}
""",
        "nodejs": """
const cp = require('child_process');
function main() {
  let shell;
  try { cp.execSync('; sleep 100 &'); shell = 'STARTED'; } catch (e) { shell = e.code || 'error'; }
  const child = cp.spawn(process.execPath, ['-e', 'setTimeout(() => {}, 100000)'], { detached: true, stdio: 'ignore' });
  child.unref();
  return new Promise((resolve) => setTimeout(() => resolve({ shell, spawned: child.pid > 0 }), 300));
}
""",
    }[family]
    sandbox = await start_action(family, code)
    reply = await sandbox.run()
    assert reply["ok"], reply
    assert reply["result"]["shell"] != "STARTED", reply
    strays: list[int] = []
    for _ in range(50):
        strays = sandbox.process.stray_processes()
        if strays:
            break
        await asyncio.sleep(0.02)
    assert strays, "the leftover process must be reported"
    await sandbox.kill()
    await asyncio.sleep(0.05)
    for pid in strays:
        assert not os.path.exists(f"/proc/{pid}") or _is_zombie(pid), f"stray {pid} survived kill()"
    assert not sandbox.process.is_alive()


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


async def test_fork_bomb_is_contained(start_action: StartAction, family: str, backend: LinuxSandboxBackend) -> None:
    """Process creation stops at max_pids (pids.max or RLIMIT_NPROC); a real bomb is killed as a whole; others keep running."""
    neighbour = await start_action(
        family,
        "def main(a):\n    return {'alive': True}\n"
        if family == "python"
        else "function main() { return { alive: true }; }\n",
    )
    counted = {
        "python": """
import os, time
def main(args):
    kids = []
    try:
        for _ in range(500):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            kids.append(pid)
        error = None
    except OSError as exc:
        error = type(exc).__name__
    for pid in kids:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    return {"forked": len(kids), "error": error}
""",
        "nodejs": """
const cp = require('child_process');
async function main() {
  const kids = [];
  let error = null;
  for (let i = 0; i < 200; i++) {
    const child = cp.spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    const started = await new Promise((resolve) => { child.once('spawn', () => resolve(true)); child.once('error', (e) => { error = e.code; resolve(false); }); });
    if (!started) break;
    kids.push(child);
  }
  for (const k of kids) k.kill('SIGKILL');
  return { forked: kids.length, error };
}
""",
    }[family]
    sandbox = await start_action(family, counted, max_pids=16)
    reply = await sandbox.run(timeout_s=60)
    assert reply["ok"], reply
    assert reply["result"]["error"] is not None, reply
    assert reply["result"]["forked"] < 16, reply

    bomb = {
        "python": "import os\ndef main(args):\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n",
        "nodejs": "const cp = require('child_process');\nfunction main() { for (;;) { try { cp.spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }); } catch (e) {} } }\n",
    }[family]
    bomber = await start_action(family, bomb, max_pids=32)
    run = asyncio.ensure_future(bomber.run(timeout_s=60))
    await asyncio.sleep(1.5)
    inside = bomber.process.stray_processes()
    assert len(inside) < 32, f"{len(inside)} processes despite max_pids=32"
    began = asyncio.get_running_loop().time()
    await bomber.kill()
    assert asyncio.get_running_loop().time() - began < 5
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    for pid in inside:
        assert not os.path.exists(f"/proc/{pid}") or _is_zombie(pid), f"bomb process {pid} survived"
    assert (await neighbour.run())["result"] == {"alive": True}


async def test_syscalls_of_a_foreign_abi_kill_the_process(start_action: StartAction, family: str) -> None:
    """An x32 syscall number would slip past a native deny list; the filter kills the process instead."""
    if family != "python":
        pytest.skip("Node.js actions cannot issue raw syscalls (no native code loads); covered by the Python case")
    sandbox = await start_action(family, PY_SYSCALLS)
    with pytest.raises(EOFError):
        # 0x40000000 | 59: execve through the x32 ABI.
        await sandbox.run({"calls": [["x32_execve", 0x40000000 | 59, 0, 0, 0]]})
    assert await sandbox.wait_dead(5)
