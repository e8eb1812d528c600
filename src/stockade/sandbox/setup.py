"""enter(): build one sandbox, one mechanism per step, in this order. docs/design/sandbox.md lists the same steps.

Runs in a fresh child of the zygote and never returns: it ends as the runner (pid 2) and the reaper
(pid 1). The steps before the plan depend only on the slot, so the zygote runs them ahead of time
(the child is *parked*); the rest run once the action's plan arrives.

Parked (slot only; in the zygote's child, then its pid 1, then pid 2):
 1. namespaces.unshare         no host groups; user+mnt+pid+net+ipc+uts namespaces
 2. namespaces.write_id_maps   by the zygote: uid/gid 1000 inside = the slot's host ids; no setgroups
 3. cgroups.join               into the slot's cgroups (root mode; slow, hence done while parked)
 4. namespaces.fork_init       host name; fork: the child is pid 1
 5. launch.fork_runner         pid 1 forks pid 2, confines itself completely, execs the static
                               reaper (if built) and only reaps;
                               pid 2 waits for the plan and does the rest
With the plan (in pid 2):
 6. mounts.open_sources        O_PATH handles on the bind sources, still as the parked identity
 7. capabilities.assume_identity  uid/gid 1000 (the namespace's capabilities stay for now)
 8. mounts.build_root          tmpfs root, read-only binds, /fn, /tmp, /dev, /proc, /etc
 9. mounts.pivot_root          switch root (pid 1's too), detach the host's, root read-only
10. network.configure          empty net namespace (loopback only for egress)
11. rlimits.apply              per-process limits
12. cgroups.enter_namespace    a cgroup namespace rooted at our own group
13. capabilities.drop          bounding, ambient and all sets emptied; securebits locked
14. capabilities.set_no_new_privs
15. landlock.restrict          filesystem, TCP and scope allow list
16. seccomp.load               precompiled deny list
17. launch.exec_runner         Python: serve with the zygote's runner; Node.js: exec node

Why this order: the cgroup must be joined before pid 1 is forked (4), so every process of the sandbox
is in it, and before the cgroup namespace exists (12). In root mode the parked identity is host uid 0
without any host capability: it can still search root-only directories for the bind sources (6), but
it is not mapped inside, so it cannot create the root's files: hence 7 before 8. Steps 8-12 need the
capabilities the new user namespace grants, so they go only at 13; Landlock and seccomp need
no_new_privs (14) and come last, so that setup itself is never filtered.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn, final

from stockade.sandbox import capabilities, cgroups, landlock, launch, mounts, namespaces, network, rlimits, seccomp
from stockade.sandbox.launch import RunnerFds
from stockade.sandbox.plan import SandboxPlan, Slot
from stockade.sandbox.policy import LandlockPathRule, LandlockPolicy

__all__ = ["SetupContext", "SetupHooks", "enter"]


@final
@dataclass(frozen=True, slots=True)
class SetupHooks:
    """How the child talks to the zygote while it is being built."""

    # Block until the zygote has written our id maps (step 2).
    wait_id_maps: Callable[[], None]
    # Tell the zygote the host pid of pid 1 (called in the original child, which then exits).
    report_pid: Callable[[int], None]
    # Block until the plan and the action's environment arrive.
    wait_plan: Callable[[], tuple[SandboxPlan, Mapping[str, str]]]


@final
@dataclass(slots=True)
class SetupContext:
    """What the steps need: the slot, channels, compiled policies and the zygote's root mount point."""

    slot: Slot
    fds: RunnerFds
    seccomp_programs: Mapping[str, bytes]
    landlock_policies: Mapping[str, LandlockPolicy]
    python_serve: Callable[[int], None] | None
    landlock_abi: int
    # An empty directory the root is mounted on (inside the sandbox's own mount namespace).
    root_dir: str
    # The step running now (for error reports) and whether we are pid 1 already.
    step: str = "start"
    is_inside: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    # The static pid-1 binary (an fd inherited from the zygote), or None for the Python reaper.
    reaper_fd: int | None = None


def enter(ctx: SetupContext, hooks: SetupHooks) -> NoReturn:
    """Build a sandbox around this process, then run the runner in it. Never returns."""
    ctx.step = "namespaces.unshare"
    namespaces.unshare()
    ctx.step = "namespaces.write_id_maps"
    hooks.wait_id_maps()
    ctx.step = "cgroups.join"
    cgroups.join(ctx.slot)
    ctx.step = "namespaces.fork_init"
    namespaces.fork_init(ctx.slot, hooks.report_pid)
    ctx.is_inside = True
    ctx.step = "launch.fork_runner"
    reaper = None if ctx.reaper_fd is None else launch.Reaper(ctx.reaper_fd, ctx.seccomp_programs["python"])
    launch.fork_runner(lambda: _confine_reaper(ctx), ctx.fds.status, reaper)
    if ctx.reaper_fd is not None:
        os.close(ctx.reaper_fd)  # the runner never sees it

    ctx.step = "waiting for the plan"
    plan, ctx.env = hooks.wait_plan()
    ctx.step = "mounts.open_sources"
    sources = mounts.open_sources(plan)
    ctx.step = "capabilities.assume_identity"
    capabilities.assume_identity(plan.inner_uid)
    ctx.step = "mounts.build_root"
    mounts.build_root(plan, ctx.root_dir, sources)
    ctx.step = "mounts.pivot_root"
    mounts.pivot_root(ctx.root_dir)
    ctx.step = "network.configure"
    network.configure(plan)
    ctx.step = "rlimits.apply"
    rlimits.apply(plan)
    ctx.step = "cgroups.enter_namespace"
    cgroups.enter_namespace()
    ctx.step = "capabilities.drop"
    capabilities.drop(plan.inner_uid)
    ctx.step = "capabilities.set_no_new_privs"
    capabilities.set_no_new_privs()
    ctx.step = "landlock.restrict"
    landlock.restrict(
        ctx.landlock_policies[plan.family],
        version=plan.landlock_abi,
        egress=plan.has_egress,
        variables=plan.landlock_vars,
    )
    ctx.step = "seccomp.load"
    seccomp.load(ctx.seccomp_programs[plan.family])
    ctx.step = "launch.exec_runner"
    launch.exec_runner(plan, ctx.fds, ctx.env, ctx.python_serve)


# The reaper needs no file, port or signal: a Landlock domain that grants nothing...
_NOTHING = LandlockPolicy(name="reaper", paths=(), tcp_ports=(), scopes=("abstract_unix_socket", "signal"))
# ...but reading and executing the static reaper binary it becomes (by fd: its host path may be
# closed to the sandbox's uid).
_EXEC_REAPER = LandlockPolicy(
    name="reaper-exec",
    paths=(
        LandlockPathRule(
            path="{reaper}",
            access=frozenset({"read", "execute"}),
            reason="pid 1 executes the static reaper, and nothing else",
        ),
    ),
    tcp_ports=(),
    scopes=("abstract_unix_socket", "signal"),
)


def _confine_reaper(ctx: SetupContext) -> None:
    """Pid 1 gets the runner's confinement minus the filesystem: it only ever calls wait().

    With the static reaper, pid 1 keeps the one right to execute it, under the Node.js filter
    (which allows execve); the reaper's first act is to add the Python filter (no execve at all).
    """
    capabilities.assume_identity(ctx.slot.inner_uid)
    capabilities.drop(ctx.slot.inner_uid)
    capabilities.set_no_new_privs()
    if ctx.reaper_fd is None:
        landlock.restrict(_NOTHING, version=ctx.landlock_abi, egress=False, variables={})
        # The Python list denies execve as well; the reaper never execs.
        seccomp.load(ctx.seccomp_programs["python"])
        return
    variables = {"reaper": f"/proc/self/fd/{ctx.reaper_fd}"}
    landlock.restrict(_EXEC_REAPER, version=ctx.landlock_abi, egress=False, variables=variables)
    seccomp.load(ctx.seccomp_programs["nodejs"])
