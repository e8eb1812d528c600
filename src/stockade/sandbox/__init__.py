"""Host side of isolation: the SandboxSpec, the SandboxBackend seam and its backends."""

from stockade.sandbox.backend import BackendReport, SandboxBackend, SandboxProcess
from stockade.sandbox.insecure_process import InsecureProcessBackend
from stockade.sandbox.spec import SandboxSpec

__all__ = [
    "BackendReport",
    "InsecureProcessBackend",
    "SandboxBackend",
    "SandboxProcess",
    "SandboxSpec",
]
