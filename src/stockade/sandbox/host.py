"""What this host offers the sandbox, found once: mode, user namespaces, Landlock, cgroups, runtimes.

Each missing mechanism is recorded with its reason, so ``report()`` can say exactly what a mode
enforces and what it cannot, and tests can skip with that reason instead of passing silently.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import final

from stockade.sandbox import cgroups, landlock, namespaces, policy, seccomp
from stockade.sandbox.plan import HostPaths, Mode

__all__ = ["REAPER_PATH", "HostFacts", "elf_interpreter", "probe"]

# Built by scripts/build-reaper from reaper.c.
REAPER_PATH = Path(__file__).resolve().parent / "bin" / "stockade-reaper"


@final
@dataclass(frozen=True, slots=True)
class HostFacts:
    """The result of ``probe``."""

    mode: Mode
    # None when usable; otherwise why not.
    userns_error: str | None
    policy_error: str | None
    landlock_abi: int
    cgroup_layout: cgroups.CgroupLayout | None
    cgroup_error: str | None
    paths: HostPaths
    python_runner: str | None
    python_runner_error: str | None
    node_runner_error: str | None
    # The static pid-1 binary (scripts/build-reaper), or None: then pid 1 stays a Python process.
    reaper: str | None = None

    @property
    def unavailable_reason(self) -> str | None:
        """Why no sandbox can start here at all, or None."""
        if self.userns_error:
            return self.userns_error
        if self.policy_error:
            return f"sandbox policies cannot be loaded or compiled: {self.policy_error}"
        if self.landlock_abi < 1:
            return "Landlock is not available in this kernel (needs Linux 5.13+ with landlock in the LSM list)"
        return None


def _is_static_elf(path: Path) -> bool:
    # A regular, executable ELF file without an interpreter (pid 1 can load nothing else).
    try:
        if not path.is_file() or not os.access(path, os.X_OK):
            return False
        with open(path, "rb") as handle:
            if handle.read(4) != b"\x7fELF":
                return False
    except OSError:
        return False
    return elf_interpreter(str(path)) is None


def elf_interpreter(binary: str) -> str | None:
    """The real path of the ELF interpreter (PT_INTERP) of a 64-bit little-endian binary, or None."""
    try:
        with open(binary, "rb") as handle:
            header = handle.read(64)
            if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
                return None
            (phoff,) = struct.unpack_from("<Q", header, 32)
            phentsize, phnum = struct.unpack_from("<HH", header, 54)
            for index in range(phnum):
                handle.seek(phoff + index * phentsize)
                p_type, _, p_offset, _, _, p_filesz = struct.unpack("<IIQQQQ", handle.read(40))
                if p_type == 3:  # PT_INTERP
                    handle.seek(p_offset)
                    return os.path.realpath(handle.read(p_filesz).rstrip(b"\0").decode())
    except (OSError, struct.error, UnicodeDecodeError):
        return None
    return None


def _python_prefixes() -> tuple[str, ...]:
    # The interpreter the zygote runs (the platform's own): its stdlib and extension modules live
    # under base_prefix, and under base_exec_prefix when that differs.
    prefixes = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)}
    return tuple(sorted(prefixes))


def _policy_error() -> str | None:
    try:
        for family in ("python", "nodejs"):
            seccomp.compile_policy(policy.load_seccomp_policy(family))
            policy.load_landlock_policy(family)
    except (OSError, ValueError) as exc:
        return str(exc)
    return None


def probe(runtimes_dir: Path, node_binary: str | None = None) -> HostFacts:
    """Look at this host. Forks once (the user namespace probe); call it once per backend."""
    mode: Mode = "root" if os.geteuid() == 0 else "unprivileged"
    layout, cgroup_error = cgroups.detect_layout()
    node = node_binary or shutil.which("node", path="/usr/local/bin:/usr/bin:/bin")
    node_real = os.path.realpath(node) if node else None
    runner = runtimes_dir / "python" / "runner.py"
    node_runner = runtimes_dir / "nodejs" / "runner.js"
    paths = HostPaths(
        python_prefixes=_python_prefixes(),
        runtimes_dir=str(runtimes_dir.resolve()),
        node_binary=node_real,
        node_interpreter=elf_interpreter(node_real) if node_real else None,
    )
    node_error = None
    if node_real is None:
        node_error = "node is not installed"
    elif not node_runner.is_file():
        node_error = f"{node_runner} is missing"
    return HostFacts(
        mode=mode,
        userns_error=namespaces.probe_user_namespaces(),
        policy_error=_policy_error(),
        landlock_abi=landlock.abi(),
        cgroup_layout=layout,
        cgroup_error=cgroup_error,
        paths=paths,
        python_runner=str(runner) if runner.is_file() else None,
        python_runner_error=None if runner.is_file() else f"{runner} is missing",
        node_runner_error=node_error,
        reaper=str(REAPER_PATH) if _is_static_elf(REAPER_PATH) else None,
    )
