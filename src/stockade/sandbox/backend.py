"""The SandboxBackend seam: start a runner in isolation, hand back its control channel.

The invoker speaks the runtime protocol (see ``stockade.invoker.protocol``) over ``control``;
the runner's stdout and stderr arrive on ``stdout``/``stderr`` pipes, and the runner writes the
OpenWhisk sentinel line on both after every init and run. The backend owns isolation only.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Protocol, final

from stockade.sandbox.spec import SandboxSpec

__all__ = ["BackendReport", "SandboxBackend", "SandboxProcess"]


@final
@dataclass(frozen=True, slots=True)
class BackendReport:
    """What a backend enforces on this host, for ``stockade up`` to print."""

    name: str
    mode: str  # e.g. "root", "unprivileged", "unconfined"
    enforced: tuple[str, ...] = ()
    not_enforced: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())


class SandboxProcess(Protocol):
    """One live sandbox: a runner process tree confined as its spec says."""

    @property
    def sandbox_id(self) -> str:
        """Unique id of this sandbox."""

    @property
    def pid(self) -> int:
        """Host pid of the sandbox's top process."""

    @property
    def control(self) -> socket.socket:
        """Connected, non-blocking stream socket to the runner."""

    @property
    def stdout_fd(self) -> int:
        """Read end of the runner's stdout pipe (non-blocking)."""

    @property
    def stderr_fd(self) -> int:
        """Read end of the runner's stderr pipe (non-blocking)."""

    @property
    def code_path(self) -> str:
        """Where the runner sees the action's code directory."""

    def is_alive(self) -> bool:
        """True while the sandbox's processes run."""

    def stray_processes(self) -> list[int]:
        """Pids in the sandbox other than its runner and reaper (for tamper checks)."""

    def memory_peak_bytes(self) -> int | None:
        """Highest memory use since the sandbox started, where this mode can tell (else None)."""

    def wipe_tmp(self) -> bool:
        """Empty the sandbox's private /tmp between runs; False when this mode has none."""

    def oom_kills(self) -> int | None:
        """How many processes the sandbox's memory limit killed so far, where this mode can tell (else None)."""

    async def kill(self) -> None:
        """Kill every process of the sandbox, reap, and release its resources. Idempotent."""


class SandboxBackend(Protocol):
    """Creates sandboxes. One per platform process."""

    def report(self) -> BackendReport:
        """What this backend enforces here."""

    async def start(self, spec: SandboxSpec) -> SandboxProcess:
        """Start a runner for ``spec`` and return once its control socket is connected."""

    async def close(self) -> None:
        """Kill every sandbox this backend started and release shared resources."""
