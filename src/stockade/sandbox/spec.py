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
