"""InsecureProcessBackend: each runner is a plain child process of the platform. NOT a sandbox.

For development only (``invoker.sandbox_backend = insecure_process``, not recommended): actions
run with the platform's user and privileges and can read its files, reach the network and
signal its processes. What it does give: a minimal environment (the spec's, never the host's),
its own session and process group, best-effort rlimits, and kill of the whole group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final, final

from stockade.sandbox.backend import BackendReport
from stockade.sandbox.spec import SandboxSpec

__all__ = ["InsecureProcess", "InsecureProcessBackend", "descendant_pids"]

_RUNTIMES_DIR: Final = Path(__file__).resolve().parent.parent / "runtimes"
PYTHON_RUNNER: Final = _RUNTIMES_DIR / "python" / "runner.py"
NODE_RUNNER: Final = _RUNTIMES_DIR / "nodejs" / "runner.js"
DEFAULT_PATH: Final = "/usr/local/bin:/usr/bin:/bin"
_MIB = 1024 * 1024
# Headroom over the action's memory for the interpreter itself (RLIMIT_AS is address space).
_PYTHON_AS_HEADROOM_MB = 128
_KILL_WAIT_S = 5.0


def _read_proc(name: str, dir_fd: int) -> bytes:
    """A small /proc file, or b"" when it is gone."""
    # os.open/os.read: a buffered open() costs twice the syscalls, and this runs after every run.
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _thread_children(pid: int) -> list[int]:
    """Children of every thread of ``pid`` (a child belongs to the thread that forked it)."""
    try:
        task_fd = os.open(f"/proc/{pid}/task", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return []
    children: list[int] = []
    try:
        for tid in os.listdir(task_fd):
            children.extend(int(x) for x in _read_proc(f"{tid}/children", task_fd).split())
    finally:
        os.close(task_fd)
    return children


def descendant_pids(pid: int) -> list[int]:
    """All descendants of ``pid`` still parented in its tree, from /proc/<pid>/task/*/children."""
    found: list[int] = []
    queue = [pid]
    while queue:
        children = _thread_children(queue.pop())
        found.extend(children)
        queue.extend(children)
    return found


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@final
class InsecureProcess:
    """One runner child process, its control socket and its stdout/stderr pipes."""

    def __init__(
        self,
        sandbox_id: str,
        popen: subprocess.Popen[bytes],
        control: socket.socket,
        stdout_fd: int,
        stderr_fd: int,
        code_path: str,
        on_killed: Callable[[str], None] | None = None,
    ) -> None:
        self._sandbox_id = sandbox_id
        self._on_killed = on_killed
        self._popen = popen
        self._control = control
        self._stdout_fd = stdout_fd
        self._stderr_fd = stderr_fd
        self._code_path = code_path
        self._kill_task: asyncio.Task[None] | None = None
        try:
            self._pidfd: int | None = os.pidfd_open(popen.pid)
        except (OSError, AttributeError):
            self._pidfd = None

    @property
    def sandbox_id(self) -> str:
        """Unique id of this sandbox."""
        return self._sandbox_id

    @property
    def pid(self) -> int:
        """Host pid of the runner."""
        return self._popen.pid

    @property
    def control(self) -> socket.socket:
        """Connected, non-blocking stream socket to the runner."""
        return self._control

    @property
    def stdout_fd(self) -> int:
        """Read end of the runner's stdout pipe (non-blocking)."""
        return self._stdout_fd

    @property
    def stderr_fd(self) -> int:
        """Read end of the runner's stderr pipe (non-blocking)."""
        return self._stderr_fd

    @property
    def code_path(self) -> str:
        """The code directory; the same path as on the host (there is no mount namespace)."""
        return self._code_path

    def is_alive(self) -> bool:
        """True while the runner runs (reaps it once it has exited)."""
        return self._popen.poll() is None

    def memory_peak_bytes(self) -> int | None:
        """Unknown here: no memory cgroup."""
        return None

    def wipe_tmp(self) -> bool:
        """No private /tmp in this mode."""
        return False

    def oom_kills(self) -> int | None:
        """Unknown here: no memory cgroup (RLIMIT_AS makes Python raise MemoryError instead)."""
        return None

    def stray_processes(self) -> list[int]:
        """Descendants of the runner. Blind to processes that double-forked away (a gap of this backend)."""
        if self._popen.returncode is not None:
            return []
        return descendant_pids(self._popen.pid)

    async def kill(self) -> None:
        """SIGKILL the runner's process group and descendants, reap, close fds. Idempotent."""
        if self._kill_task is None:
            self._kill_task = asyncio.ensure_future(self._kill())
        await asyncio.shield(self._kill_task)

    async def _kill(self) -> None:
        pid = self._popen.pid
        if self._popen.poll() is None:
            # Descendants first: one that called setsid() left our process group.
            strays = descendant_pids(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            for stray in strays:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(stray, signal.SIGKILL)
            await self._wait_exit()
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        self._close_fds()
        if self._on_killed is not None:
            self._on_killed(self._sandbox_id)

    async def _wait_exit(self) -> None:
        if self._pidfd is None:
            for _ in range(int(_KILL_WAIT_S / 0.005)):
                if self._popen.poll() is not None:
                    return
                await asyncio.sleep(0.005)
            return
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()
        loop.add_reader(self._pidfd, _resolve, exited)
        try:
            if self._popen.poll() is None:
                async with asyncio.timeout(_KILL_WAIT_S):
                    await exited
        except TimeoutError:
            return
        finally:
            loop.remove_reader(self._pidfd)
        self._popen.poll()

    def _close_fds(self) -> None:
        self._control.close()
        for fd in (self._stdout_fd, self._stderr_fd, self._pidfd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._pidfd = None


@final
class InsecureProcessBackend:
    """Starts runners as unconfined child processes (development only; not recommended)."""

    def __init__(
        self,
        *,
        python_executable: str = sys.executable,
        node_executable: str | None = None,
        path_env: str = DEFAULT_PATH,
    ) -> None:
        self._python = python_executable
        self._node = node_executable or shutil.which("node", path=path_env) or "node"
        self._path_env = path_env
        self._live: dict[str, InsecureProcess] = {}

    def report(self) -> BackendReport:
        """Unconfined: what little is enforced, and a loud warning."""
        warnings = [
            "INSECURE: the insecure_process backend is NOT a sandbox. Actions run as plain child "
            "processes with the platform's user and privileges: they can read and write its files, "
            "reach any network and signal its processes. Use it only for development with trusted "
            "code (not recommended)."
        ]
        if os.geteuid() == 0:
            warnings.append("INSECURE: the platform runs as root, so actions run as root.")
        return BackendReport(
            name="insecure_process",
            mode="unconfined",
            enforced=(
                "wall-clock timeout (invoker kills the process group)",
                "per-run CPU timer (Python runner)",
                "environment limited to the action's variables plus PATH and LANG",
                "RLIMIT_NOFILE, RLIMIT_CORE=0, RLIMIT_FSIZE, RLIMIT_CPU backstop (best effort)",
                "RLIMIT_AS for Python, --max-old-space-size for Node.js (best effort)",
                "integrity check after each run (code digest, entry function, child processes)",
            ),
            not_enforced=(
                "filesystem isolation and read-only code",
                "network isolation (egress allowlist)",
                "process isolation (pid namespace), pid limit",
                "memory cgroup, CPU share",
                "privilege drop, seccomp, Landlock",
            ),
            warnings=tuple(warnings),
        )

    def _argv(self, spec: SandboxSpec, control_fd: int) -> list[str]:
        if spec.family == "python":
            # -I: ignore PYTHON* variables and user site; -S: no site-packages (stdlib only); -B: no .pyc.
            return [self._python, "-I", "-S", "-B", str(PYTHON_RUNNER), str(control_fd)]
        return [self._node, f"--max-old-space-size={spec.memory_mb}", str(NODE_RUNNER), str(control_fd)]

    async def start(self, spec: SandboxSpec) -> InsecureProcess:
        """Spawn a runner for ``spec`` with the control socket as an inherited fd."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        env = {"PATH": self._path_env, "LANG": "C.UTF-8", **spec.env}
        try:
            # Popen only forks and execs here (vfork, about a millisecond); nothing waits on the child.
            popen = subprocess.Popen(  # noqa: S603, ASYNC220 - fixed argv, no shell, no blocking wait
                self._argv(spec, child.fileno()),
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                pass_fds=(child.fileno(),),
                cwd=spec.code_dir,
                env=env,
                start_new_session=True,
            )
        except BaseException:
            parent.close()
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            child.close()
            os.close(out_w)
            os.close(err_w)
        self._limit(popen.pid, spec)
        parent.setblocking(False)
        os.set_blocking(out_r, False)
        os.set_blocking(err_r, False)
        sandbox_id = f"insecure-{secrets.token_hex(6)}"
        process = InsecureProcess(sandbox_id, popen, parent, out_r, err_r, str(spec.code_dir), on_killed=self._forget)
        self._live[process.sandbox_id] = process
        return process

    def _limit(self, pid: int, spec: SandboxSpec) -> None:
        """Best-effort rlimits, set before the runner receives any action code (init comes later)."""
        cpu_backstop_s = spec.cpu_backstop_s or max(60, 10 * -(-spec.timeout_ms // 1000))
        limits = [
            (resource.RLIMIT_NOFILE, spec.max_open_files, spec.max_open_files),
            (resource.RLIMIT_CORE, 0, 0),
            (resource.RLIMIT_FSIZE, spec.tmp_size_mb * _MIB, spec.tmp_size_mb * _MIB),
            # SIGXCPU at the soft limit, SIGKILL a little later at the hard one.
            (resource.RLIMIT_CPU, cpu_backstop_s, cpu_backstop_s + 5),
        ]
        if spec.family == "python":
            # Node reserves far more address space than it uses, so it gets a heap limit instead.
            as_bytes = (spec.memory_mb + _PYTHON_AS_HEADROOM_MB) * _MIB
            limits.append((resource.RLIMIT_AS, as_bytes, as_bytes))
        for which, soft, hard in limits:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                resource.prlimit(pid, which, (soft, hard))

    async def close(self) -> None:
        """Kill every runner this backend started."""
        live = list(self._live.values())
        self._live.clear()
        for process in live:
            await process.kill()

    def _forget(self, sandbox_id: str) -> None:
        self._live.pop(sandbox_id, None)

    @property
    def live_count(self) -> int:
        """Runners started and not yet killed."""
        return len(self._live)
