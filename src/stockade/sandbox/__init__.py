"""Host side of isolation: the SandboxSpec, the SandboxBackend seam and its backends.

The backends are loaded lazily: the zygote imports this package at start, and every module it
holds is inherited by every sandbox it forks, so nothing heavier than the seam loads here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stockade.sandbox.backend import BackendReport, SandboxBackend, SandboxProcess
from stockade.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from stockade.sandbox.insecure_process import InsecureProcessBackend
    from stockade.sandbox.linux import LinuxSandboxBackend

__all__ = [
    "BackendReport",
    "InsecureProcessBackend",
    "LinuxSandboxBackend",
    "SandboxBackend",
    "SandboxProcess",
    "SandboxSpec",
]


def __getattr__(name: str) -> Any:
    if name == "LinuxSandboxBackend":
        from stockade.sandbox.linux import LinuxSandboxBackend

        return LinuxSandboxBackend
    if name == "InsecureProcessBackend":
        from stockade.sandbox.insecure_process import InsecureProcessBackend

        return InsecureProcessBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
