"""SandboxPlan: a SandboxSpec resolved against this host into exactly what the setup steps do.

The backend builds the plan (pure: no I/O beyond reading what the host looks like) and sends it to
the zygote as JSON. The plan never holds the action's environment: that travels separately so the
zygote never keeps it (see ``zygote.py``).
"""

from __future__ import annotations

import json
import os
import resource
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, final

from stockade.sandbox.spec import RuntimeFamily, SandboxSpec

__all__ = [
    "CODE_PATH",
    "EGRESS_SOCKET_PATH",
    "INNER_UID",
    "RUNTIMES_PATH",
    "Bind",
    "HostPaths",
    "Mode",
    "SandboxPlan",
    "Slot",
    "build_plan",
]

Mode = Literal["root", "unprivileged"]

# Where things appear inside every sandbox.
CODE_PATH = "/fn"
RUNTIMES_PATH = "/opt/stockade/runtimes"
EGRESS_SOCKET_PATH = "/run/stockade/egress.sock"
# Invariant: the only uid (and gid) that exists inside a sandbox; 0 is never mapped.
INNER_UID = 1000
HOSTNAME = "sandbox"
# Without a memory cgroup (unprivileged mode), Python gets RLIMIT_AS this far above its memory limit:
# a clean MemoryError for one huge allocation, with some room for the interpreter's mappings and
# thread stacks. With a memory cgroup there is no RLIMIT_AS: address space is not memory (each
# thread reserves an 8 MB stack and a 64 MB malloc arena it mostly never touches), so an ordinary
# ThreadPoolExecutor(16) failed under it; the cgroup bounds what is really used.
_PYTHON_AS_HEADROOM_MB = 256
# Top-level names that merged-/usr hosts make symlinks into /usr.
_USR_ALIASES = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


@final
@dataclass(frozen=True, slots=True)
class Bind:
    """A host path bound read-only (plus nosuid, nodev) into the sandbox."""

    source: str
    target: str
    is_dir: bool = True
    noexec: bool = False


@final
@dataclass(frozen=True, slots=True)
class HostPaths:
    """Host paths the plan needs, found once by the backend."""

    python_prefixes: tuple[str, ...]
    runtimes_dir: str
    node_binary: str | None
    node_interpreter: str | None
    certs_dir: str | None = "/etc/ssl/certs"


@final
@dataclass(frozen=True, slots=True)
class Slot:
    """What a sandbox is before its action is known: host identity, cgroups, namespaces' names.

    A zygote child takes all of it ahead of time (it is *parked*), then waits for a SandboxPlan.
    """

    host_uid: int
    host_gid: int
    # Host cgroup.procs files to join (root mode with cgroups); empty otherwise.
    cgroup_procs: tuple[str, ...] = ()
    inner_uid: int = INNER_UID
    hostname: str = HOSTNAME

    def to_dict(self) -> dict[str, Any]:
        """The slot as plain JSON-able data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Slot:
        """Inverse of ``to_dict``."""
        return cls(**{**data, "cgroup_procs": tuple(data["cgroup_procs"])})


@final
@dataclass(frozen=True, slots=True)
class SandboxPlan:
    """Everything a parked child needs to finish one sandbox for one action, in setup order."""

    sandbox_id: str
    family: RuntimeFamily
    mode: Mode
    binds: tuple[Bind, ...]
    # (link name under /, target) for merged-/usr aliases such as /lib64 -> usr/lib64.
    symlinks: tuple[tuple[str, str], ...]
    tmp_size_mb: int
    tmp_max_files: int
    has_egress: bool
    # (RLIMIT name, soft, hard); applied in this order.
    rlimits: tuple[tuple[str, int, int], ...]
    landlock_abi: int
    landlock_vars: dict[str, str] = field(default_factory=dict)
    node_argv: tuple[str, ...] = ()
    inner_uid: int = INNER_UID
    hostname: str = HOSTNAME

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON-able data."""
        return asdict(self)

    def to_json(self) -> bytes:
        """The plan as compact JSON."""
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxPlan:
        """Inverse of ``to_dict``."""
        fields = dict(data)
        fields["binds"] = tuple(Bind(**b) for b in fields["binds"])
        fields["symlinks"] = tuple((a, b) for a, b in fields["symlinks"])
        fields["rlimits"] = tuple((n, s, h) for n, s, h in fields["rlimits"])
        fields["node_argv"] = tuple(fields["node_argv"])
        return cls(**fields)

    @classmethod
    def from_json(cls, raw: bytes) -> SandboxPlan:
        """Inverse of ``to_json``."""
        return cls.from_dict(json.loads(raw))


def _node_heap_mb(memory_mb: int) -> int:
    # V8's default old-space limit ignores the cgroup (4 GB here): keep the JS heap well inside the
    # memory limit, leaving a quarter for code, buffers and the runtime itself.
    return max(16, memory_mb * 3 // 4)


def cpu_backstop_s(spec: SandboxSpec) -> int:
    """RLIMIT_CPU for the sandbox's life: explicit, or 10x the run timeout and at least 60 s."""
    if spec.cpu_backstop_s is not None:
        return spec.cpu_backstop_s
    return max(60, 10 * -(-spec.timeout_ms // 1000))


def _rlimits(spec: SandboxSpec, *, memory_cgroup: bool) -> tuple[tuple[str, int, int], ...]:
    mib = 1 << 20
    cpu = cpu_backstop_s(spec)
    limits = [
        ("RLIMIT_CORE", 0, 0),
        ("RLIMIT_NOFILE", spec.max_open_files, spec.max_open_files),
        ("RLIMIT_FSIZE", spec.tmp_size_mb * mib, spec.tmp_size_mb * mib),
        # Soft limit: SIGXCPU every second past it; hard limit: SIGKILL.
        ("RLIMIT_CPU", cpu, cpu + 5),
        # Counted per uid within the sandbox's user namespace: a per-sandbox process cap in both modes.
        ("RLIMIT_NPROC", spec.max_pids, spec.max_pids),
    ]
    if spec.family == "python" and not memory_cgroup:
        address_space = (spec.memory_mb + _PYTHON_AS_HEADROOM_MB) * mib
        limits.append(("RLIMIT_AS", address_space, address_space))
    for name, _, _ in limits:
        assert hasattr(resource, name), name
    return tuple(limits)


def _usr_aliases() -> tuple[list[tuple[str, str]], list[Bind]]:
    links: list[tuple[str, str]] = []
    binds: list[Bind] = []
    for name in _USR_ALIASES:
        host = f"/{name}"
        if os.path.islink(host):
            links.append((name, os.readlink(host)))
        elif os.path.isdir(host):
            binds.append(Bind(source=host, target=host))
    return links, binds


def _outside_usr(path: str) -> bool:
    return not (path == "/usr" or path.startswith("/usr/"))


def build_plan(
    spec: SandboxSpec,
    *,
    sandbox_id: str,
    mode: Mode,
    landlock_abi: int,
    paths: HostPaths,
    memory_cgroup: bool = False,
    bind_code: bool = True,
) -> SandboxPlan:
    """Resolve ``spec`` for this host. Raises ValueError when the runtime cannot run here.

    ``memory_cgroup``: the sandbox runs in a memory cgroup that bounds it (root mode), so Python
    gets no address-space limit. ``bind_code=False``: a stem cell's plan, whose ``/fn`` stays empty
    until the action's code is attached from outside (``mounts.attach_code``).
    """
    code_dir = os.path.realpath(spec.code_dir)
    if not os.path.isdir(code_dir):
        raise ValueError(f"code_dir {spec.code_dir} is not a directory")
    links, alias_binds = _usr_aliases()
    binds = [Bind(source="/usr", target="/usr"), *alias_binds]
    variables: dict[str, str] = {}
    node_argv: tuple[str, ...] = ()
    if spec.family == "python":
        # The interpreter prefix at its own path: the zygote's already-imported modules and sys.path
        # refer to it. Only the prefix itself, never its parents (e.g. not all of /root).
        binds += [Bind(source=p, target=p) for p in paths.python_prefixes if _outside_usr(p)]
    else:
        if paths.node_binary is None or paths.node_interpreter is None:
            raise ValueError("node is not installed on this host")
        node_prefix = str(Path(paths.node_binary).parent.parent)
        if _outside_usr(paths.node_binary):
            binds.append(Bind(source=node_prefix, target=node_prefix))
        variables = {"node": paths.node_binary, "ld_so": paths.node_interpreter}
        runner = f"{RUNTIMES_PATH}/nodejs/runner.js"
        node_argv = (paths.node_binary, f"--max-old-space-size={_node_heap_mb(spec.memory_mb)}", runner, "3")
    if paths.certs_dir and os.path.isdir(paths.certs_dir):
        binds.append(Bind(source=paths.certs_dir, target="/etc/ssl/certs", noexec=True))
    binds.append(Bind(source=paths.runtimes_dir, target=RUNTIMES_PATH, noexec=True))
    if bind_code:
        binds.append(Bind(source=code_dir, target=CODE_PATH, noexec=True))
    if spec.egress_socket is not None:
        binds.append(Bind(source=str(spec.egress_socket), target=EGRESS_SOCKET_PATH, is_dir=False, noexec=True))
    return SandboxPlan(
        sandbox_id=sandbox_id,
        family=spec.family,
        mode=mode,
        binds=tuple(binds),
        symlinks=tuple(links),
        tmp_size_mb=spec.tmp_size_mb,
        tmp_max_files=spec.tmp_max_files,
        has_egress=spec.egress_socket is not None,
        rlimits=_rlimits(spec, memory_cgroup=memory_cgroup),
        landlock_abi=landlock_abi,
        landlock_vars=variables,
        node_argv=node_argv,
    )
