"""Cgroups: memory (with OOM kill), process and CPU limits plus accounting per sandbox (root mode).

This host kind runs a hybrid hierarchy: the v1 memory, pids, cpu and cpuacct controllers enforce the
limits, and the controller-less cgroup2 mount supplies ``cgroup.kill`` to end a sandbox as a whole.
Each backend makes its groups under its *own* cgroup in every hierarchy (``stockade-<pid>-<n>``), so
a platform started inside a service's or a session's cgroup stays inside it.

Host side: ``CgroupManager`` creates a ``SandboxCgroup`` per sandbox, and kills, measures and removes
it. Setup steps: ``join`` (in the parked child, before pid 1 is forked, so every process of the
sandbox is in the group) and ``enter_namespace`` (so the cgroup namespace is rooted at that group).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from dataclasses import dataclass
from typing import final

from stockade.sandbox import _syscalls as sc
from stockade.sandbox.plan import Slot

__all__ = [
    "CgroupLayout",
    "CgroupManager",
    "CgroupStatistics",
    "SandboxCgroup",
    "detect_layout",
    "enter_namespace",
    "join",
    "join_files",
]

_V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
_CPU_PERIOD_US = 100_000
_counter = itertools.count()


@final
@dataclass(frozen=True, slots=True)
class CgroupLayout:
    """Per hierarchy, the directory of this process's own cgroup (where ours are made)."""

    memory: str
    pids: str
    cpu: str
    cpuacct: str
    unified: str


@final
@dataclass(frozen=True, slots=True)
class CgroupStatistics:
    """Accounting of one sandbox's cgroup."""

    cpu_ns: int
    memory_peak_bytes: int
    memory_limit_hits: int
    oom_kills: int
    pids_current: int


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: str) -> str:
    # A raw read is ~3x cheaper than a text-mode open (the statistics files use SandboxCgroup._stat).
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def detect_layout() -> tuple[CgroupLayout | None, str | None]:
    """This host's usable hierarchy, or None with the reason it cannot be used."""
    if os.geteuid() != 0:
        return None, "cgroups need root"
    mounts: dict[str, str] = {}
    unified_mount = None
    try:
        mountinfo = _read("/proc/self/mountinfo").splitlines()
        own: dict[str, str] = {}
        for line in _read("/proc/self/cgroup").splitlines():
            _, names, path = line.split(":", 2)
            own[names] = path
    except OSError as exc:
        return None, f"cannot read cgroup mounts: {exc}"
    for line in mountinfo:
        fields = line.split()
        after = fields[fields.index("-") + 1 :]
        fstype, options = after[0], after[2].split(",")
        if fstype == "cgroup":
            for controller in _V1_CONTROLLERS:
                if controller in options:
                    mounts.setdefault(controller, fields[4])
        elif fstype == "cgroup2" and unified_mount is None:
            unified_mount = fields[4]
    missing = [c for c in _V1_CONTROLLERS if c not in mounts]
    if missing or unified_mount is None:
        return None, (
            f"needs cgroup v1 {', '.join(_V1_CONTROLLERS)} plus a cgroup2 mount (hybrid layout); "
            f"missing {missing or ['cgroup2']} (cgroup v2-only hosts are not supported yet)"
        )

    def own_dir(mount: str, key: str) -> str:
        path = next((p for names, p in own.items() if key in names.split(",")), "/") if key else own.get("", "/")
        return os.path.normpath(mount + path)

    layout = CgroupLayout(
        memory=own_dir(mounts["memory"], "memory"),
        pids=own_dir(mounts["pids"], "pids"),
        cpu=own_dir(mounts["cpu"], "cpu"),
        cpuacct=own_dir(mounts["cpuacct"], "cpuacct"),
        unified=own_dir(unified_mount, ""),
    )
    # The root cgroup has no cgroup.kill file even where the kernel supports it: look in a child.
    probe = os.path.join(layout.unified, f"stockade-probe-{os.getpid()}")
    try:
        os.mkdir(probe)
        has_kill = os.path.exists(os.path.join(probe, "cgroup.kill"))
        os.rmdir(probe)
    except OSError as exc:
        return None, f"cannot create cgroups under {layout.unified}: {exc}"
    if not has_kill:
        return None, "the kernel has no cgroup.kill (needs Linux 5.14 or later)"
    if not os.access(layout.memory, os.W_OK):
        return None, f"cannot create cgroups under {layout.memory}"
    return layout, None


@final
class SandboxCgroup:
    """One sandbox's groups: a directory per v1 controller plus one in cgroup2."""

    def __init__(self, dirs: dict[str, str]) -> None:
        self.dirs = dirs
        # The statistics files, opened once and re-read with pread at offset 0 (the kernel renders
        # them afresh): after every run that is one syscall per file instead of four. Closed by destroy.
        self._stat_fds: dict[str, int] = {}
        self._destroying = False

    def _stat(self, path: str) -> str:
        fd = self._stat_fds.get(path)
        if fd is None:
            if self._destroying:
                return _read(path)  # nothing is kept open once removal has begun
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            self._stat_fds[path] = fd
        return os.pread(fd, 4096, 0).decode()

    def _close_stats(self) -> None:
        fds, self._stat_fds = list(self._stat_fds.values()), {}
        for fd in fds:
            os.close(fd)

    @property
    def procs_files(self) -> tuple[str, ...]:
        """The cgroup.procs files a process writes itself into to join (each hierarchy once)."""
        return tuple(sorted({os.path.join(d, "cgroup.procs") for d in self.dirs.values()}))

    def set_limits(self, *, memory_mb: int, max_pids: int, cpu_percent: int) -> None:
        """Memory (RAM and RAM+swap), processes and CPU quota."""
        memory = self.dirs["memory"]
        limit = str(memory_mb << 20)
        files = [f"{memory}/memory.limit_in_bytes"]
        memsw = f"{memory}/memory.memsw.limit_in_bytes"
        if os.path.exists(memsw):
            # Invariant (kernel): memsw >= memory at every moment, so raise memsw first, lower it last.
            files = [memsw, *files] if int(limit) > int(_read(memsw)) else [*files, memsw]
        for path in files:
            _write(path, limit)
        _write(f"{self.dirs['pids']}/pids.max", str(max_pids))
        _write(f"{self.dirs['cpu']}/cpu.cfs_period_us", str(_CPU_PERIOD_US))
        _write(f"{self.dirs['cpu']}/cpu.cfs_quota_us", str(_CPU_PERIOD_US * cpu_percent // 100))

    def kill(self) -> None:
        """SIGKILL every process in the group at once (cgroup.kill); no process can escape by forking."""
        _write(f"{self.dirs['unified']}/cgroup.kill", "1")

    def pids(self) -> list[int]:
        """Host pids of the processes in the group."""
        try:
            return [int(p) for p in _read(f"{self.dirs['unified']}/cgroup.procs").split()]
        except FileNotFoundError:
            return []

    def memory_peak_bytes(self) -> int:
        """Peak memory use of the group (one file read: cheap enough for every run)."""
        return int(self._stat(f"{self.dirs['memory']}/memory.max_usage_in_bytes"))

    def oom_kills(self) -> int:
        """Processes of the group the OOM killer ended (memory.oom_control's ``oom_kill``)."""
        for line in self._stat(f"{self.dirs['memory']}/memory.oom_control").splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value)
        return 0

    def statistics(self) -> CgroupStatistics:
        """CPU time, memory peak, limit hits, OOM kills and current process count."""
        memory = self.dirs["memory"]
        oom = dict(line.split() for line in self._stat(f"{memory}/memory.oom_control").splitlines() if line)
        return CgroupStatistics(
            cpu_ns=int(self._stat(f"{self.dirs['cpuacct']}/cpuacct.usage")),
            memory_peak_bytes=int(self._stat(f"{memory}/memory.max_usage_in_bytes")),
            memory_limit_hits=int(self._stat(f"{memory}/memory.failcnt")),
            oom_kills=int(oom.get("oom_kill", "0")),
            pids_current=int(self._stat(f"{self.dirs['pids']}/pids.current")),
        )

    def destroy(self) -> bool:
        """Remove the groups; False while some still hold processes (retry after they are reaped)."""
        self._destroying = True
        self._close_stats()
        done = True
        for path in set(self.dirs.values()):
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError:
                done = False
        return done


@final
class CgroupManager:
    """Creates this backend's sandbox groups under ``stockade-<pid>-<n>`` in each hierarchy."""

    def __init__(self, layout: CgroupLayout) -> None:
        self.layout = layout
        self.token = f"stockade-{os.getpid()}-{next(_counter)}"
        self._parents = {name: getattr(layout, name) for name in (*_V1_CONTROLLERS, "unified")}
        self._sweep_stale()
        for parent in set(self._parents.values()):
            os.makedirs(os.path.join(parent, self.token), exist_ok=True)

    def _sweep_stale(self) -> None:
        # Groups left by a backend that died: remove them once they are empty (rmdir refuses otherwise).
        for parent in set(self._parents.values()):
            for name in os.listdir(parent):
                owner = name.split("-")
                if owner[0] != "stockade" or len(owner) != 3 or not owner[1].isdigit() or _is_alive(int(owner[1])):
                    continue
                base = os.path.join(parent, name)
                for child in os.listdir(base):
                    if os.path.isdir(os.path.join(base, child)):
                        with contextlib.suppress(OSError):
                            os.rmdir(os.path.join(base, child))
                with contextlib.suppress(OSError):
                    os.rmdir(base)

    def create(self, sandbox_id: str, *, memory_mb: int, max_pids: int, cpu_percent: int) -> SandboxCgroup:
        """A new, limited group for one sandbox."""
        dirs = {name: os.path.join(parent, self.token, sandbox_id) for name, parent in self._parents.items()}
        for path in set(dirs.values()):
            os.mkdir(path, 0o755)
        group = SandboxCgroup(dirs)
        try:
            group.set_limits(memory_mb=memory_mb, max_pids=max_pids, cpu_percent=cpu_percent)
        except OSError:
            group.destroy()
            raise
        return group

    def close(self) -> bool:
        """Remove this backend's parent groups (after every sandbox group is gone); False if some remain."""
        done = True
        for parent in set(self._parents.values()):
            try:
                os.rmdir(os.path.join(parent, self.token))
            except FileNotFoundError:
                pass
            except OSError:
                done = False
        return done


def join_files(procs_files: tuple[str, ...]) -> None:
    """Move this process into the groups whose cgroup.procs files are given ("0" means the writer)."""
    for procs in procs_files:
        _write(procs, "0")


def join(slot: Slot) -> None:
    """Setup step (root mode; still host uid 0): move this process into the slot's groups.

    Done while parked: the move waits for an RCU grace period (6-15 ms here). cgroup v1 lets host
    uid 0 move itself even without capabilities on the host.
    """
    join_files(slot.cgroup_procs)


def enter_namespace() -> None:
    """Setup step: a cgroup namespace rooted at the sandbox's own group, so the host tree stays unnamed."""
    sc.unshare(sc.CLONE_NEWCGROUP)
