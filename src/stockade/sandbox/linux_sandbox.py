"""LinuxSandbox: one live sandbox as the host sees it (the SandboxProcess of LinuxSandboxBackend).

The host holds a pidfd of the sandbox's pid 1, so liveness checks and kills can never hit a recycled
pid. Inside the sandbox's pid namespace pid 1 is the reaper and pid 2 the runner; anything else is a
stray (a process an action left behind) and makes ``stray_processes`` non-empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import stat
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import final

from stockade.sandbox.cgroups import SandboxCgroup
from stockade.sandbox.plan import CODE_PATH
from stockade.sandbox.zygote_client import wait_readable

__all__ = ["LinuxSandbox", "SandboxStatistics"]

_REAPER_NS_PID = 1
_RUNNER_NS_PID = 2
_TEARDOWN_TIMEOUT_S = 5.0
_FRAME_HEADER = struct.Struct(">I")


@final
@dataclass(frozen=True, slots=True)
class SandboxStatistics:
    """Accounting of one sandbox (None where this mode has no source for it)."""

    cpu_ns: int | None
    memory_peak_bytes: int | None
    memory_limit_hits: int | None
    oom_kills: int | None
    pids_current: int | None


def _ns_pid(host_pid: int) -> int | None:
    """The pid ``host_pid`` has in its own (innermost) pid namespace, or None once it is gone."""
    try:
        with open(f"/proc/{host_pid}/status") as handle:
            for line in handle:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    children = [int(c) for c in handle.read().split()]
            except OSError:
                continue
            found += children
            pending += children
    return found


@final
class LinuxSandbox:
    """A running sandbox; its fds belong to it until ``kill``."""

    def __init__(
        self,
        sandbox_id: str,
        pid: int,
        fds: list[int],
        group: SandboxCgroup | None,
        on_released: Callable[[], None],
    ) -> None:
        self._sandbox_id = sandbox_id
        self._pid = pid
        self._pidfd, control, self._stdout_fd, self._stderr_fd, self._status_fd = fds
        self._control = socket.socket(fileno=control)
        self._control.setblocking(False)
        for fd in (self._stdout_fd, self._stderr_fd, self._status_fd):
            os.set_blocking(fd, False)
        self._group = group
        self._on_released = on_released
        self._kill_task: asyncio.Future[None] | None = None
        self._released = False
        self._fully_released = False
        self._expected_pids: set[int] = set()

    @property
    def sandbox_id(self) -> str:
        """Unique id of this sandbox."""
        return self._sandbox_id

    @property
    def pid(self) -> int:
        """Host pid of the sandbox's pid 1 (the reaper)."""
        return self._pid

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
        """Where the runner sees the action's code: always /fn, read-only."""
        return CODE_PATH

    @property
    def group(self) -> SandboxCgroup | None:
        """The sandbox's cgroups (root mode), else None."""
        return self._group

    @property
    def pidfd(self) -> int:
        """A pidfd of pid 1 (owned by this sandbox; closed by ``kill``)."""
        return self._pidfd

    @property
    def is_fully_released(self) -> bool:
        """True once killed and every process and cgroup is confirmed gone."""
        return self._fully_released

    async def wait_setup(self, timeout_s: float) -> str | None:
        """Wait for setup to finish: None on success, else the reason (from the failed step)."""
        deadline = time.monotonic() + timeout_s
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(self._status_fd, 4096)
            except BlockingIOError:
                if not await wait_readable(self._status_fd, max(0.0, deadline - time.monotonic())):
                    return f"sandbox {self._sandbox_id} did not finish setup within {timeout_s} s"
                continue
            if not chunk:
                break
            chunks.append(chunk)
        os.close(self._status_fd)
        self._status_fd = -1
        if chunks:
            return b"".join(chunks).decode(errors="replace")
        if not self.is_alive():
            return f"sandbox {self._sandbox_id} exited during setup"
        return None

    async def assign(self, env: dict[str, str], rlimits: dict[str, list[int]] | None = None) -> None:
        """Stem cells: give the waiting runner its action's environment, and have it enter ``/fn`` again.

        One one-way ``assign`` frame (docs/design/runtime-protocol.md): the runner answers nothing,
        handles it before any later frame, and ends the sandbox if it cannot take it (which the
        invoker then sees at init). ``rlimits`` (Python): limits the runner lowers for itself, by name.
        Raises OSError when the frame cannot be sent.
        """
        message: dict[str, object] = {"op": "assign", "code_dir": CODE_PATH, "env": env}
        if rlimits:
            message["rlimits"] = rlimits
        await self._send_one_way(message)

    async def warm(self, code_dir: str) -> None:
        """Stem cells, before assign: have the runner load and run the runtime's warm-up action once (one-way)."""
        await self._send_one_way({"op": "warm", "code_dir": code_dir})

    async def _send_one_way(self, message: dict[str, object]) -> None:
        body = json.dumps(message, separators=(",", ":")).encode()
        await asyncio.get_running_loop().sock_sendall(self._control, _FRAME_HEADER.pack(len(body)) + body)

    def is_alive(self) -> bool:
        """True while the sandbox's pid 1 runs (its pidfd turns readable when it exits)."""
        if self._released:
            return False
        poller = select.poll()
        poller.register(self._pidfd, select.POLLIN)
        return not poller.poll(0)

    def stray_processes(self) -> list[int]:
        """Host pids of processes in the sandbox other than the reaper (ns pid 1) and the runner (ns pid 2)."""
        if self._released:
            return []
        members = self._group.pids() if self._group is not None else [self._pid, *_descendants(self._pid)]
        strays = []
        for host_pid in members:
            # Invariant: the reaper and the runner live as long as the sandbox (either dying ends
            # it), so once seen their host pids need no /proc lookup on later runs.
            if host_pid in self._expected_pids:
                continue
            inner = _ns_pid(host_pid)
            if inner in (_REAPER_NS_PID, _RUNNER_NS_PID):
                self._expected_pids.add(host_pid)
            elif inner is not None:
                strays.append(host_pid)
        return strays

    def statistics(self) -> SandboxStatistics:
        """CPU, memory and process accounting (root mode with cgroups; None fields otherwise)."""
        if self._group is None or self._released:
            return SandboxStatistics(None, None, None, None, None)
        stats = self._group.statistics()
        return SandboxStatistics(
            stats.cpu_ns, stats.memory_peak_bytes, stats.memory_limit_hits, stats.oom_kills, stats.pids_current
        )

    def memory_peak_bytes(self) -> int | None:
        """Peak memory of the sandbox's cgroup (root mode), else None."""
        if self._group is None or self._released:
            return None
        try:
            return self._group.memory_peak_bytes()
        except OSError:
            return None

    def oom_kills(self) -> int | None:
        """OOM kills counted by the sandbox's memory cgroup (root mode), else None."""
        if self._group is None or self._released:
            return None
        try:
            return self._group.oom_kills()
        except (OSError, ValueError):
            return None

    def wipe_tmp(self) -> bool:
        """Empty the sandbox's /tmp from the host (between runs, while the runner is idle).

        Works through /proc/<pid>/root with fd-relative, no-follow operations, so links an action
        planted in /tmp cannot redirect the deletion outside it.
        """
        root = os.open(f"/proc/{self._pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            tmp = os.open("tmp", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root)
        finally:
            os.close(root)
        try:
            for name in os.listdir(tmp):
                if stat.S_ISDIR(os.stat(name, dir_fd=tmp, follow_symlinks=False).st_mode):
                    shutil.rmtree(name, dir_fd=tmp)
                else:
                    os.unlink(name, dir_fd=tmp)
        finally:
            os.close(tmp)
        return True

    def _signal_kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    async def kill(self) -> None:
        """Kill every process of the sandbox, wait until they are gone, free its cgroup and fds. Idempotent.

        The teardown finishes even if the caller is cancelled meanwhile.
        """
        if self._kill_task is None:
            self._kill_task = asyncio.ensure_future(self._kill())
        await asyncio.shield(self._kill_task)

    async def _kill(self) -> None:
        if self._group is not None:
            try:
                self._group.kill()
            except OSError:
                self._signal_kill()
        else:
            # pid 1 of the namespace: the kernel kills everything else in it when it dies.
            self._signal_kill()
        exited = await wait_readable(self._pidfd, _TEARDOWN_TIMEOUT_S)
        group_gone = True
        if self._group is not None:
            deadline = time.monotonic() + _TEARDOWN_TIMEOUT_S
            while self._group.pids() or not self._group.destroy():
                if time.monotonic() > deadline:
                    group_gone = False
                    break
                await asyncio.sleep(0.001)
        self._control.close()
        for fd in (self._stdout_fd, self._stderr_fd, self._status_fd, self._pidfd):
            if fd >= 0:
                os.close(fd)
        self._released = True
        self._fully_released = exited and group_gone
        self._on_released()
