"""Drive a sandbox directly with runtime-protocol frames: for tests, benchmarks and self-checks.

The invoker has its own, fuller channel (``stockade.invoker.protocol``); this one is deliberately
small and stand-alone so the sandbox layer can be exercised without the layers above it.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import time
from pathlib import Path
from typing import Any, final

from stockade.sandbox.backend import SandboxBackend, SandboxProcess
from stockade.sandbox.spec import RuntimeFamily, SandboxSpec

__all__ = ["SENTINEL", "ActionSandbox", "write_action"]

SENTINEL = b"XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"
_HEADER = struct.Struct(">I")
_ENTRY = {"python": "__main__.py", "nodejs": "index.js"}


def write_action(directory: Path, family: RuntimeFamily, code: str, extra_files: dict[str, str] | None = None) -> Path:
    """Write plain action code as the invoker's code store does: files 0444, directories 0555."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in {_ENTRY[family]: code, **(extra_files or {})}.items():
        path = directory / name
        path.write_text(text)
        path.chmod(0o444)
    directory.chmod(0o555)
    return directory


@final
class ActionSandbox:
    """One sandbox with an initialised action: run it, read its logs, kill it."""

    def __init__(self, process: SandboxProcess) -> None:
        self.process = process
        self._buffer = b""

    @classmethod
    async def start(cls, backend: SandboxBackend, spec: SandboxSpec, *, init: bool = True) -> ActionSandbox:
        """Start a sandbox for ``spec`` and (by default) send it the init frame."""
        sandbox = cls(await backend.start(spec))
        if init:
            reply = await sandbox.request(
                {"op": "init", "code_dir": sandbox.process.code_path, "main": "main", "env": {}}
            )
            if not reply.get("ok"):
                await sandbox.process.kill()
                raise RuntimeError(f"init failed: {reply}")
        return sandbox

    async def request(self, message: dict[str, Any], timeout_s: float | None = 30.0) -> dict[str, Any]:
        """Send one frame and return the reply; raises EOFError when the runner is gone."""
        loop = asyncio.get_running_loop()
        body = json.dumps(message).encode()
        await loop.sock_sendall(self.process.control, _HEADER.pack(len(body)) + body)
        return await asyncio.wait_for(self._receive(loop), timeout_s)

    async def _receive(self, loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
        while True:
            if len(self._buffer) >= 4:
                (size,) = _HEADER.unpack_from(self._buffer)
                if len(self._buffer) >= 4 + size:
                    body, self._buffer = self._buffer[4 : 4 + size], self._buffer[4 + size :]
                    reply: dict[str, Any] = json.loads(body)
                    return reply
            chunk = await loop.sock_recv(self.process.control, 1 << 16)
            if not chunk:
                raise EOFError("the runner closed the control socket")
            self._buffer += chunk

    async def run(
        self, value: dict[str, Any] | None = None, *, cpu_ms: int = 0, timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """One run frame; the reply as the runner sent it."""
        message = {"op": "run", "value": value or {}, "env": {}, "deadline_ms": 0, "cpu_ms": cpu_ms}
        return await self.request(message, timeout_s)

    def logs(self) -> tuple[bytes, bytes]:
        """Whatever the runner wrote to stdout and stderr so far (sentinel lines removed)."""
        out = []
        for fd in (self.process.stdout_fd, self.process.stderr_fd):
            data = b""
            try:
                while chunk := os.read(fd, 1 << 16):
                    data += chunk
            except (BlockingIOError, OSError):
                pass
            out.append(data.replace(SENTINEL, b""))
        return out[0], out[1]

    async def wait_dead(self, timeout_s: float) -> bool:
        """True once the sandbox is no longer alive (within ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        # Polling: the SandboxProcess seam offers no awaitable exit.
        while self.process.is_alive():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def kill(self) -> None:
        """Kill the sandbox (idempotent)."""
        await self.process.kill()
