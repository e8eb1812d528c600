"""SandboxSpec: everything a sandbox needs to start, serialisable, with no host environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, final

__all__ = ["RuntimeFamily", "SandboxSpec"]

RuntimeFamily = Literal["python", "nodejs"]


@final
@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """What to start: which runtime, which code, which limits.

    Invariant: ``env`` holds only what the action may see (init parameters and __OW_API_HOST);
    the host environment is never passed through.
    """

    family: RuntimeFamily
    # Host directory holding the action's materialised code; bound read-only and noexec.
    code_dir: Path
    memory_mb: int = 256
    # Hard per-run wall-clock limit; the invoker also applies it.
    timeout_ms: int = 60_000
    # Static environment for the runner process (init parameters, __OW_API_HOST).
    env: Mapping[str, str] = field(default_factory=dict)
    # Size limit of the private /tmp.
    tmp_size_mb: int = 16
    # Most processes the sandbox may hold.
    max_pids: int = 64
    # Seam for allowlisted egress: a host unix socket leading to the egress proxy, or None for
    # no network at all (the default).
    egress_socket: Path | None = None
    # Label for logs and metrics ("ns/pkg/action@version").
    label: str = ""
    # Share of one CPU the sandbox may use (cgroup cfs quota, root mode only); 100 = one full core.
    cpu_percent: int = 100
    # RLIMIT_CPU backstop over the sandbox's whole life, in CPU seconds; None = 10 x timeout, at least 60 s.
    # The per-run CPU budget is the runner's (cpu_ms); this only catches a runner that lost control.
    cpu_backstop_s: int | None = None
    # Inode limit of the private /tmp (files plus directories).
    tmp_max_files: int = 4096
    # RLIMIT_NOFILE of every process in the sandbox.
    max_open_files: int = 256

    def __post_init__(self) -> None:
        for name in ("memory_mb", "timeout_ms", "tmp_size_mb", "max_pids", "tmp_max_files", "max_open_files"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SandboxSpec.{name} must be positive")
        if not 1 <= self.cpu_percent <= 100 * 1024:
            raise ValueError("SandboxSpec.cpu_percent must be between 1 and 102400")
        if self.cpu_backstop_s is not None and self.cpu_backstop_s <= 0:
            raise ValueError("SandboxSpec.cpu_backstop_s must be positive")
