"""LinuxSandboxBackend: every action in its own namespaces + seccomp + Landlock (+ cgroups as root) sandbox.

Python sandboxes are forked by the zygote (about 10 ms); Node.js sandboxes go through the same setup
and exec node at the end. The backend owns the zygote (started on first use or by ``prepare``, stopped
by ``close``), the slots (one host uid/gid and one cgroup per live sandbox in root mode) and the
teardown. See docs/design/sandbox.md for the steps and the threat model.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, final

import structlog

from stockade.config import Settings
from stockade.errors import InternalError, ServiceUnavailableError
from stockade.sandbox import cgroups
from stockade.sandbox.backend import BackendReport
from stockade.sandbox.host import HostFacts, probe
from stockade.sandbox.launch import runner_environment
from stockade.sandbox.linux_sandbox import LinuxSandbox
from stockade.sandbox.plan import RUNTIMES_PATH, SandboxPlan, Slot, build_plan
from stockade.sandbox.spec import RuntimeFamily, SandboxSpec
from stockade.sandbox.stems import Stem, StemPool, StemStatistics
from stockade.sandbox.zygote_client import ZygoteClient, ZygoteError

__all__ = [
    "DEFAULT_RUNTIMES_DIR",
    "BackendStatistics",
    "LinuxSandboxBackend",
    "SandboxStartError",
    "StemStatistics",
]

DEFAULT_RUNTIMES_DIR = Path(__file__).resolve().parent.parent / "runtimes"
_log = structlog.get_logger("stockade.sandbox")
# How long close() retries removing cgroups that are still busy with a leaving process.
_CGROUP_CLOSE_TIMEOUT_S = 2.0
_STEM_ID = "stem"
_STEM_REFILL_DELAY_S = 0.02


class SandboxStartError(InternalError):
    """A sandbox could not be created; the message says which setup step failed and why."""

    code: ClassVar[str] = "sandbox_error"


@final
@dataclass(frozen=True, slots=True)
class BackendStatistics:
    """Counters for /metrics."""

    sandboxes_live: int
    sandboxes_started_total: int
    sandbox_start_failures_total: int
    sandboxes_killed_total: int
    zygote_restarts_total: int


@final
@dataclass(frozen=True, slots=True)
class _Prepared:
    """A reserved slot: its id and cgroup; when pooled, a parked zygote child already holds it."""

    slot: int
    sandbox_id: str
    group: cgroups.SandboxCgroup | None


@final
class LinuxSandboxBackend:
    """The default SandboxBackend on Linux. One per platform process."""

    name = "linux"

    def __init__(
        self,
        *,
        runtimes_dir: Path = DEFAULT_RUNTIMES_DIR,
        uid_base: int = 200_000,
        max_sandboxes: int = 1024,
        python_executable: str = sys.executable,
        node_binary: str | None = None,
        start_timeout_s: float = 10.0,
        prepared_slots: int = 2,
        stem_cells: int = 0,
    ) -> None:
        """Args:
        runtimes_dir: holds python/runner.py and nodejs/runner.js (bound read-only into every sandbox).
        uid_base: root mode gives slot ``n`` the host uid and gid ``uid_base + n``; keep the range
            unused by anything else on the host.
        max_sandboxes: live sandboxes at most (slots).
        python_executable: the interpreter the zygote runs (its prefix is bound into Python sandboxes).
        node_binary: node to exec for Node.js sandboxes (default: ``node`` on /usr/local/bin:/usr/bin:/bin).
        start_timeout_s: longest a sandbox may take to set up.
        prepared_slots: slots kept ready with a parked zygote child that already has its namespaces,
            id maps, cgroups and pid 1: that work (and the cgroup move's RCU grace period, 6-15 ms)
            is then off the cold start. 0 disables the pool.
        stem_cells: per runtime family, sandboxes kept fully started (every setup step done, the
            runtime loaded, ``/fn`` empty) for the default limits without egress; a matching
            ``start`` attaches the action's code read-only at ``/fn`` from outside and hands over
            the action's environment, instead of starting a sandbox. 0 disables them.
        """
        self._runtimes_dir = runtimes_dir
        self._uid_base = uid_base
        self._python_executable = python_executable
        self._node_binary = node_binary
        self._start_timeout_s = start_timeout_s
        self._free_slots = list(range(max_sandboxes - 1, -1, -1))
        self._facts: HostFacts | None = None
        self._cgroups: cgroups.CgroupManager | None = None
        self._zygote: ZygoteClient | None = None
        self._zygote_lock = asyncio.Lock()
        self._live: set[LinuxSandbox] = set()
        # Groups whose removal failed while a process was still leaving them; retried at close.
        self._leaked_groups: list[cgroups.SandboxCgroup] = []
        self._ids = itertools.count()
        self._started = self._failed = self._killed = self._zygote_restarts = 0
        self._closed = False
        self._prepared_target = prepared_slots
        self._prepared: list[_Prepared] = []
        self._refill_task: asyncio.Task[None] | None = None
        # Set when a refill is asked for while one runs: the running one makes another pass.
        self._refill_again = False
        self._stems = StemPool(stem_cells)

    @classmethod
    def from_settings(cls, settings: Settings) -> LinuxSandboxBackend:
        """The backend ``stockade up`` builds: one slot per allowed sandbox plus the prepared ones and stem cells."""
        prepared = 2
        stems = settings.invoker.stem_cells
        return cls(
            max_sandboxes=settings.invoker.max_sandboxes + prepared + 2 * stems,
            prepared_slots=prepared,
            stem_cells=stems,
        )

    def facts(self) -> HostFacts:
        """What this host offers (probed once)."""
        if self._facts is None:
            self._facts = probe(self._runtimes_dir, self._node_binary)
            if self._facts.mode == "root" and self._facts.cgroup_layout is not None:
                self._cgroups = cgroups.CgroupManager(self._facts.cgroup_layout)
        return self._facts

    def report(self) -> BackendReport:
        """The mode and what it enforces here, for ``stockade up``."""
        facts = self.facts()
        reason = facts.unavailable_reason
        if reason:
            return BackendReport(self.name, "unavailable", not_enforced=("every isolation layer",), warnings=(reason,))
        enforced = [
            "namespaces: user, mount, pid, net, ipc, uts, cgroup",
            "read-only root (pivot_root); action code read-only and noexec at /fn",
            "private /tmp with size and inode limits",
            "uid 1000 inside, nothing mapped to root; no capabilities; no_new_privs",
            "seccomp deny list (precompiled; no exec in Python sandboxes)",
            f"Landlock ABI {facts.landlock_abi} (read-only /, writable /tmp only)",
            "no network (empty network namespace)",
            "rlimits: NOFILE, FSIZE, CORE, CPU, NPROC (+ AS for Python)",
            "pid 1 reaper; the runner is never pid 1",
        ]
        not_enforced: list[str] = []
        warnings: list[str] = []
        if facts.landlock_abi < 4:
            not_enforced.append("Landlock TCP rules (kernel ABI < 4)")
        if facts.landlock_abi < 6:
            not_enforced.append("Landlock signal and abstract-socket scoping (kernel ABI < 6)")
        if facts.mode == "root":
            enforced.append(f"a host uid/gid per sandbox slot ({self._uid_base}+slot), no supplementary groups")
        else:
            not_enforced += [
                f"separate host uids: every sandbox runs as uid {os.getuid()} (mapped to 1000 inside)",
                "dropping the developer's supplementary groups (needs root)",
            ]
        if self._cgroups is not None:
            enforced += [
                "cgroup memory limit with OOM kill",
                "cgroup pids.max",
                "cgroup CPU quota and accounting",
                "cgroup.kill teardown",
            ]
        else:
            not_enforced += [
                "memory limit for Node.js beyond --max-old-space-size (no cgroup; Buffers are unbounded)",
                "memory limit for Python beyond RLIMIT_AS per process",
                "CPU share (no quota; RLIMIT_CPU and the runner's CPU timer only)",
                "CPU and memory accounting",
            ]
            warnings.append(f"no cgroups: {facts.cgroup_error}")
        warnings += [e for e in (facts.python_runner_error, facts.node_runner_error) if e]
        return BackendReport(self.name, facts.mode, tuple(enforced), tuple(not_enforced), tuple(warnings))

    @property
    def zygote_pid(self) -> int | None:
        """Host pid of the running zygote, if any (for introspection and tests)."""
        return self._zygote.process.pid if self._zygote is not None and self._zygote.is_running() else None

    def statistics(self) -> BackendStatistics:
        """Counters since this backend was made."""
        return BackendStatistics(len(self._live), self._started, self._failed, self._killed, self._zygote_restarts)

    def stem_statistics(self) -> StemStatistics:
        """Stem cells ready per runtime; starts served by one (hits) or not (misses, while enabled)."""
        return self._stems.statistics()

    async def prepare(self) -> None:
        """Probe the host, start the zygote, fill the prepared slots and start the stem cells now.

        Otherwise the first ``start`` does, in the background.
        """
        await self._ensure_zygote()
        await self._refill()
        await self._refill_stems()
        await self._refill()

    async def _ensure_zygote(self) -> ZygoteClient:
        facts = self.facts()
        if facts.unavailable_reason:
            raise ServiceUnavailableError(f"sandboxes cannot run on this host: {facts.unavailable_reason}")
        async with self._zygote_lock:
            if self._zygote is not None and not self._zygote.is_running():
                _log.warning("sandbox.zygote_died", pid=self._zygote.process.pid)
                await self._zygote.close()
                self._zygote = None
                self._zygote_restarts += 1
                for prepared in self._prepared:
                    await self._discard(prepared, parked=False)
                self._prepared.clear()
                await self._kill_stems()
            if self._zygote is None:
                self._zygote = await ZygoteClient.start(
                    self._python_executable, facts.python_runner, reaper=facts.reaper
                )
                _log.info("sandbox.zygote_started", pid=self._zygote.process.pid, mode=facts.mode)
            return self._zygote

    def _reserve(self, memory_mb: int, max_pids: int, cpu_percent: int) -> _Prepared:
        """Take a free slot and make its cgroup (root mode)."""
        if not self._free_slots:
            raise ServiceUnavailableError("every sandbox slot is in use")
        slot = self._free_slots.pop()
        sandbox_id = f"sbx-{slot}-{next(self._ids)}-{secrets.token_hex(3)}"
        group = None
        if self._cgroups is not None:
            try:
                group = self._cgroups.create(
                    sandbox_id, memory_mb=memory_mb, max_pids=max_pids, cpu_percent=cpu_percent
                )
            except OSError:
                self._free_slots.append(slot)
                raise
        return _Prepared(slot, sandbox_id, group)

    def _slot_identity(self, reserved: _Prepared) -> dict[str, object]:
        root = self.facts().mode == "root"
        return Slot(
            host_uid=self._uid_base + reserved.slot if root else os.getuid(),
            host_gid=self._uid_base + reserved.slot if root else os.getgid(),
            cgroup_procs=reserved.group.procs_files if reserved.group is not None else (),
        ).to_dict()

    async def _refill(self) -> None:
        while (
            self._zygote is not None
            and len(self._prepared) < self._prepared_target
            and len(self._free_slots) > 1
            and not self._closed
        ):
            try:
                # Default limits until a spec arrives; a parked child is tiny, so any limit fits it.
                reserved = self._reserve(memory_mb=256, max_pids=64, cpu_percent=100)
            except (OSError, ServiceUnavailableError) as exc:
                _log.warning("sandbox.prepare_failed", error=str(exc))
                return
            try:
                await self._zygote.park(reserved.sandbox_id, self._slot_identity(reserved), self._start_timeout_s)
            except (OSError, ZygoteError) as exc:
                await self._discard(reserved, parked=False)
                _log.warning("sandbox.prepare_failed", error=str(exc))
                return
            except asyncio.CancelledError:
                # The park request still completes (it is shielded): dismiss the child it made.
                await self._discard(reserved, parked=True)
                raise
            self._prepared.append(reserved)

    async def _refill_all(self, delay_s: float = 0.0) -> None:
        # Stem cells first (each takes a parked child), then the parked children again.
        if delay_s:
            await asyncio.sleep(delay_s)
        while True:
            self._refill_again = False
            await self._refill_stems()
            await self._refill()
            # A start that took a stem cell or a parked child while this pass was past its check
            # asked for another pass; without it, that one would stay missing until the next start.
            if not self._refill_again or self._closed:
                return

    def _schedule_refill(self, delay_s: float = 0.0) -> None:
        if not (self._prepared_target or self._stems.target):
            return
        if self._refill_task is None or self._refill_task.done():
            self._refill_task = asyncio.ensure_future(self._refill_all(delay_s))
        else:
            self._refill_again = True

    # -- stem cells ---------------------------------------------------------------------------------

    def _stem_families(self) -> list[RuntimeFamily]:
        facts = self.facts()
        families: list[RuntimeFamily] = []
        if facts.python_runner_error is None:
            families.append("python")
        if facts.node_runner_error is None:
            families.append("nodejs")
        return families

    def _plan_without_code(self, spec: SandboxSpec, *, memory_cgroup: bool) -> SandboxPlan:
        facts = self.facts()
        return build_plan(
            spec,
            sandbox_id=_STEM_ID,
            mode=facts.mode,
            landlock_abi=facts.landlock_abi,
            paths=facts.paths,
            memory_cgroup=memory_cgroup,
            bind_code=False,
        )

    async def _refill_stems(self) -> None:
        """Start stem cells until each runtime has its target (in the background, off any request)."""
        for family in self._stem_families():
            while (
                self._zygote is not None
                and self._stems.wants(family)
                and len(self._free_slots) > 1
                and not self._closed
            ):
                if not await self._start_stem(self._zygote, family):
                    break

    async def _start_stem(self, zygote: ZygoteClient, family: RuntimeFamily) -> bool:
        # Default limits, no egress, no environment: the stem holds nothing of any action.
        spec = SandboxSpec(family=family, code_dir=self._runtimes_dir, label=f"stem:{family}")
        try:
            sandbox = await self._launch(zygote, spec, bind_code=False)
        except SandboxStartError as exc:
            _log.warning("sandbox.stem_failed", family=family, error=str(exc))
            return False
        try:
            if not self._closed:
                await sandbox.warm(f"{RUNTIMES_PATH}/{family}/warmup")
        except OSError as exc:
            await sandbox.kill()
            _log.warning("sandbox.stem_failed", family=family, error=str(exc))
            return False
        except BaseException:
            await sandbox.kill()
            raise
        if self._closed:
            await sandbox.kill()
            return False
        plan = self._plan_without_code(spec, memory_cgroup=sandbox.group is not None)
        self._stems.add(Stem(sandbox, plan, (spec.memory_mb, spec.max_pids, spec.cpu_percent)))
        return True

    def _take_stem(self, spec: SandboxSpec) -> tuple[Stem, dict[str, list[int]]] | None:
        """A stem cell ``spec`` can use (same plan but for the code), with the rlimits to lower; or None."""
        if not self._stems.target:
            return None
        try:
            wanted = self._plan_without_code(spec, memory_cgroup=self._cgroups is not None)
        except ValueError:
            return None  # the ordinary start reports it
        return self._stems.take(spec.family, tuple(spec.env), wanted)

    async def _assign_stem(
        self, zygote: ZygoteClient, stem: Stem, spec: SandboxSpec, rlimits: dict[str, list[int]]
    ) -> LinuxSandbox | None:
        """Give ``stem`` to ``spec``'s action: limits, its code at /fn, its environment. None (stem killed) on failure.

        Invariant: a stem cell is assigned once; from here on it is an ordinary sandbox of this action.
        """
        sandbox = stem.sandbox
        try:
            if not sandbox.is_alive():
                raise OSError("the stem cell exited")
            if sandbox.group is not None and stem.limits != (spec.memory_mb, spec.max_pids, spec.cpu_percent):
                sandbox.group.set_limits(memory_mb=spec.memory_mb, max_pids=spec.max_pids, cpu_percent=spec.cpu_percent)
            await zygote.attach(sandbox.pidfd, str(spec.code_dir), self._start_timeout_s)
            await sandbox.assign(runner_environment(spec.env), rlimits)
        except (OSError, ValueError, TimeoutError, ZygoteError) as exc:
            self._stems.attach_failures += 1
            _log.warning("sandbox.stem_assign_failed", label=spec.label, family=spec.family, error=str(exc))
            await sandbox.kill()
            return None
        except BaseException:
            await sandbox.kill()
            raise
        self._stems.hits += 1
        return sandbox

    async def _kill_stems(self) -> None:
        await asyncio.gather(*(stem.sandbox.kill() for stem in self._stems.drain()), return_exceptions=True)

    async def _discard(self, reserved: _Prepared, *, parked: bool) -> None:
        """Give a reserved slot back, once a parked child in it (if any) is gone."""
        if parked and self._zygote is not None and self._zygote.is_running():
            with contextlib.suppress(OSError, ZygoteError):
                await self._zygote.unpark(reserved.sandbox_id, self._start_timeout_s)
        if reserved.group is not None:
            deadline = time.monotonic() + 2.0
            # Polling: an emptied v1/v2 cgroup sends this process no event it could await.
            while reserved.group.pids() and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.002)
        self._release(reserved.slot, reserved.group)

    async def start(self, spec: SandboxSpec) -> LinuxSandbox:
        """Create a sandbox for ``spec`` and return once its runner is set up and connected."""
        if self._closed:
            raise ServiceUnavailableError("the sandbox backend is closed")
        zygote = await self._ensure_zygote()
        began = time.perf_counter()
        taken = self._take_stem(spec)
        if taken is not None:
            stem, rlimits = taken
            assigned = await self._assign_stem(zygote, stem, spec, rlimits)
            # A moment later: starting the next stem cell competes for the CPU with this one's init.
            self._schedule_refill(_STEM_REFILL_DELAY_S)
            if assigned is not None:
                self._live.add(assigned)
                return self._started_one(assigned, spec, began, stem_cell=True)
        try:
            sandbox = await self._launch(zygote, spec, live=True)
        except SandboxStartError as exc:
            self._failed += 1
            _log.warning("sandbox.start_failed", label=spec.label, family=spec.family, error=str(exc))
            self._schedule_refill()
            raise
        # Refill only now: a fork in the zygote competes for the CPU with this sandbox's own setup.
        self._schedule_refill()
        return self._started_one(sandbox, spec, began, stem_cell=False)

    async def _launch(
        self, zygote: ZygoteClient, spec: SandboxSpec, *, bind_code: bool = True, live: bool = False
    ) -> LinuxSandbox:
        """Spawn a sandbox for ``spec`` (in a parked child when one is ready) and wait for its setup.

        Shared by ordinary starts (``live``: counted among the live sandboxes from the spawn on) and
        stem cells (``bind_code`` False: ``/fn`` stays empty). Raises SandboxStartError, with
        nothing left running, when it could not start; a cancelled caller leaves nothing running either.
        """
        try:
            prepared = self._prepared.pop(0) if self._prepared else None
            try:
                reserved, pid, fds = await self._spawn(zygote, spec, prepared, bind_code=bind_code)
            except ZygoteError:
                if prepared is None:
                    raise
                # The parked child is gone (killed, or the zygote restarted): start afresh.
                reserved, pid, fds = await self._spawn(zygote, spec, None, bind_code=bind_code)
        except (OSError, ValueError, ZygoteError) as exc:
            raise SandboxStartError(f"sandbox could not start: {exc}") from exc
        sandbox = LinuxSandbox(
            reserved.sandbox_id, pid, fds, reserved.group, on_released=lambda: self._on_released(sandbox, reserved.slot)
        )
        if live:
            self._live.add(sandbox)
        try:
            failure = await sandbox.wait_setup(self._start_timeout_s)
        except OSError as exc:
            failure = str(exc)
        except BaseException:
            # Cancelled (or worse) half-way: the sandbox must not outlive its caller's interest.
            await sandbox.kill()
            raise
        if failure is not None:
            await sandbox.kill()
            raise SandboxStartError(failure)
        return sandbox

    def _started_one(self, sandbox: LinuxSandbox, spec: SandboxSpec, began: float, *, stem_cell: bool) -> LinuxSandbox:
        self._started += 1
        _log.debug(
            "sandbox.started",
            sandbox_id=sandbox.sandbox_id,
            label=spec.label,
            family=spec.family,
            pid=sandbox.pid,
            stem_cell=stem_cell,
            setup_ms=round((time.perf_counter() - began) * 1000, 2),
        )
        return sandbox

    async def _spawn(
        self, zygote: ZygoteClient, spec: SandboxSpec, prepared: _Prepared | None, *, bind_code: bool = True
    ) -> tuple[_Prepared, int, list[int]]:
        facts = self.facts()
        if prepared is not None:
            reserved = prepared
            if reserved.group is not None:
                reserved.group.set_limits(
                    memory_mb=spec.memory_mb, max_pids=spec.max_pids, cpu_percent=spec.cpu_percent
                )
        else:
            reserved = self._reserve(spec.memory_mb, spec.max_pids, spec.cpu_percent)
        try:
            plan = build_plan(
                spec,
                sandbox_id=reserved.sandbox_id,
                mode=facts.mode,
                landlock_abi=facts.landlock_abi,
                paths=facts.paths,
                memory_cgroup=reserved.group is not None,
                bind_code=bind_code,
            )
            pid, fds = await zygote.spawn(
                plan.to_dict(),
                json.dumps(dict(spec.env)).encode(),
                self._start_timeout_s,
                parked=reserved.sandbox_id if prepared is not None else None,
                slot=None if prepared is not None else self._slot_identity(reserved),
            )
        except BaseException:
            await self._discard(reserved, parked=prepared is not None)
            raise
        return reserved, pid, fds

    def _release(self, slot: int, group: cgroups.SandboxCgroup | None) -> None:
        if group is not None and not group.destroy():
            _log.warning("sandbox.cgroup_leaked", dirs=sorted(group.dirs.values()))
            self._leaked_groups.append(group)
        self._free_slots.append(slot)

    def _on_released(self, sandbox: LinuxSandbox, slot: int) -> None:
        # Invariant: a slot (host uid, cgroup name) is reused only after all its processes are gone.
        self._live.discard(sandbox)
        self._killed += 1
        if sandbox.is_fully_released:
            self._free_slots.append(slot)
        else:
            _log.error("sandbox.slot_quarantined", sandbox_id=sandbox.sandbox_id, slot=slot)

    async def close(self) -> None:
        """Kill every sandbox, stop the zygote, remove this backend's cgroups."""
        self._closed = True
        if self._refill_task is not None:
            self._refill_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refill_task
        await asyncio.gather(*(sandbox.kill() for sandbox in list(self._live)), return_exceptions=True)
        await self._kill_stems()
        for prepared in self._prepared:
            await self._discard(prepared, parked=True)
        self._prepared.clear()
        async with self._zygote_lock:
            if self._zygote is not None:
                await self._zygote.close()
                self._zygote = None
        if self._cgroups is not None:
            # A group can stay busy for a moment after its last process is reaped (the parked
            # children leave with the zygote): retry briefly instead of leaving directories behind.
            deadline = time.monotonic() + _CGROUP_CLOSE_TIMEOUT_S
            while True:
                self._leaked_groups = [group for group in self._leaked_groups if not group.destroy()]
                if self._cgroups.close() or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.01)
