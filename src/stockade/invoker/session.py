"""SandboxSession: one live sandbox as the invoker drives it (frames, logs, integrity facts)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, final

from stockade.invoker.code import MaterializedCode
from stockade.invoker.egress_proxy import EgressLease
from stockade.invoker.logs import ActivationLogs, LogCollector
from stockade.invoker.pool import PoolKey
from stockade.invoker.protocol import MAX_FRAME_BYTES, FrameChannel
from stockade.sandbox.backend import SandboxProcess

__all__ = ["SandboxSession"]


@final
class SandboxSession:
    """A started sandbox with its control channel and log collector.

    Precondition: one activation at a time drives a session (the pool hands it out exclusively).
    """

    __slots__ = (
        "channel",
        "code",
        "digest",
        "egress",
        "entry",
        "facts",
        "is_discarded",
        "key",
        "logs",
        "process",
        "runs",
        "started_s",
    )

    def __init__(
        self,
        process: SandboxProcess,
        key: PoolKey,
        code: MaterializedCode,
        *,
        time_ns: Callable[[], int] = time.time_ns,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        egress: EgressLease | None = None,
    ) -> None:
        self.process = process
        # The sandbox's egress proxy socket (None: no network); closed with the sandbox.
        self.egress = egress
        self.key = key
        self.code = code
        self.channel = FrameChannel(process.control, max_frame_bytes=max_frame_bytes)
        self.logs = LogCollector(process.stdout_fd, process.stderr_fd, time_ns=time_ns)
        self.logs.start()
        self.runs = 0
        # Seconds the backend took to start this sandbox (for the invoker's cold-start estimate).
        self.started_s = 0.0
        # Integrity facts captured right after init; compared after every run.
        self.digest: str | None = None
        self.entry: str | None = None
        # The integrity facts the runner sent with its last run reply.
        self.facts: object = None
        # Set by the invoker once this session's pool slot is given back.
        self.is_discarded = False

    @property
    def sandbox_id(self) -> str:
        """The backend's id of this sandbox."""
        return self.process.sandbox_id

    async def request(self, message: Mapping[str, Any], timeout_s: float) -> dict[str, Any]:
        """One request/reply; raises TimeoutError after ``timeout_s`` or a ProtocolError."""
        async with asyncio.timeout(timeout_s):
            return await self.channel.request(message)

    async def collect_logs(self, logs: ActivationLogs, *, wait_s: float) -> bool:
        """After a reply: move this phase's lines into ``logs``; False if a sentinel never came."""
        collector = self.logs
        collector.drain()
        # Fast path: the runner wrote both sentinels before its reply, so they are in the pipes.
        if not collector.has_sentinels():
            await collector.wait_sentinels(wait_s)
        return collector.take(logs)

    def collect_remaining(self, logs: ActivationLogs) -> None:
        """When the runner is gone or killed: move everything buffered into ``logs``."""
        self.logs.drain()
        self.logs.take(logs, everything=True)

    async def destroy(self) -> None:
        """Stop reading its pipes and kill the sandbox. Idempotent (so is the backend's kill)."""
        # Readers go before the fds: the backend closes them in kill().
        self.logs.close()
        await self.process.kill()
        if self.egress is not None:
            await self.egress.close()
