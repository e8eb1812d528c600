"""The backend's side of the zygote: start it, ask it for sandboxes, stop it.

One zygote per backend. Requests are serialised (the zygote forks one sandbox at a time, in about
10 ms); the sandboxes then finish their setup in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
from typing import Any, final

from stockade.sandbox.zygote import ENV_MAX_BYTES

__all__ = ["ZygoteClient", "ZygoteError", "wait_readable"]

_REPLY_MAX_BYTES = 1 << 16
_REPLY_FDS = 5


class ZygoteError(RuntimeError):
    """The zygote could not start, died, or refused a request (the message says why)."""


async def wait_readable(fd: int, timeout_s: float | None) -> bool:
    """Wait until ``fd`` is readable (or hung up); False on timeout."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def on_ready() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, on_ready)
    try:
        await asyncio.wait_for(ready, timeout_s)
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
    return True


def _discard_reply(exchange: asyncio.Future[tuple[dict[str, Any], list[int]]]) -> None:
    if exchange.cancelled() or exchange.exception() is not None:
        return
    _, fds = exchange.result()
    if len(fds) == _REPLY_FDS:
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(fds[0], signal.SIGKILL)
    for fd in fds:
        os.close(fd)


@final
class ZygoteClient:
    """A running zygote process and the SOCK_SEQPACKET socket to it."""

    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket, ready: dict[str, Any]) -> None:
        self.process = process
        self.sock = sock
        self.ready = ready
        self._lock = asyncio.Lock()
        self._inflight: set[asyncio.Future[tuple[dict[str, Any], list[int]]]] = set()
        self._closing = False

    @classmethod
    async def start(
        cls, python_executable: str, python_runner: str | None, timeout_s: float = 30.0, *, reaper: str | None = None
    ) -> ZygoteClient:
        """Start ``python -m stockade.sandbox.zygote`` and wait until it is ready.

        Must run on the event loop's own thread: the zygote dies with the thread that forked it.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # Invariant: the zygote gets no environment of ours (children inherit its memory), runs
            # isolated (-I: no PYTHON* variables, no user site) and in its own session (no terminal signals).
            process = subprocess.Popen(  # noqa: S603, ASYNC220 - fixed argv; fork+exec only, nothing waits
                [python_executable, "-I", "-m", "stockade.sandbox.zygote", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                cwd="/",
                start_new_session=True,
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        client = cls(process, ours, {})
        try:
            await asyncio.get_running_loop().sock_sendall(
                ours, json.dumps({"python_runner": python_runner, "reaper": reaper}).encode()
            )
            ready, _ = await client._receive(timeout_s)
        except BaseException:
            await client.close()
            raise
        if not ready.get("ready"):
            await client.close()
            raise ZygoteError(f"the zygote did not start: {ready.get('error', 'no reason given')}")
        client.ready = ready
        return client

    def is_running(self) -> bool:
        """True while the zygote process lives."""
        return self.process.poll() is None

    async def _receive(self, timeout_s: float | None) -> tuple[dict[str, Any], list[int]]:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, _REPLY_MAX_BYTES, _REPLY_FDS)
            except BlockingIOError:
                if not await wait_readable(self.sock.fileno(), timeout_s):
                    raise ZygoteError("the zygote did not answer in time") from None
                continue
            if not data:
                for fd in fds:
                    os.close(fd)
                raise ZygoteError("the zygote exited")
            try:
                message: dict[str, Any] = json.loads(data)
            except ValueError as exc:
                for fd in fds:
                    os.close(fd)
                raise ZygoteError("the zygote sent a malformed reply") from exc
            return message, fds

    async def _exchange(
        self, request: dict[str, Any], env_json: bytes | None, timeout_s: float, pass_fds: tuple[int, ...] = ()
    ) -> tuple[dict[str, Any], list[int]]:
        # ``pass_fds`` belong to this exchange (duplicates): closed once sent, even if the caller left.
        loop = asyncio.get_running_loop()
        try:
            async with self._lock:
                data = json.dumps(request, separators=(",", ":")).encode()
                if pass_fds:
                    # One small datagram: a SOCK_SEQPACKET send either fits whole or waits for room.
                    while True:
                        try:
                            socket.send_fds(self.sock, [data], list(pass_fds))
                            break
                        except BlockingIOError:
                            await asyncio.sleep(0.001)
                else:
                    await loop.sock_sendall(self.sock, data)
                if env_json is not None:
                    await loop.sock_sendall(self.sock, env_json)
                return await self._receive(timeout_s)
        finally:
            for fd in pass_fds:
                os.close(fd)

    async def _request(
        self, request: dict[str, Any], env_json: bytes | None, timeout_s: float, pass_fds: tuple[int, ...] = ()
    ) -> tuple[dict[str, Any], list[int]]:
        # Invariant: an exchange runs to its end even if the caller is cancelled, or the next request
        # would read this one's reply. A sandbox started for a caller that is gone is killed.
        exchange = asyncio.ensure_future(self._exchange(request, env_json, timeout_s, pass_fds))
        self._inflight.add(exchange)
        exchange.add_done_callback(self._inflight.discard)
        try:
            reply, fds = await asyncio.shield(exchange)
        except asyncio.CancelledError:
            if exchange.cancelled() and self._closing:
                raise ZygoteError("the zygote was stopped") from None
            exchange.add_done_callback(_discard_reply)
            raise
        if not reply.get("ok"):
            for fd in fds:
                os.close(fd)
            raise ZygoteError(str(reply.get("error", "the zygote refused the request")))
        return reply, fds

    async def spawn(
        self,
        plan: dict[str, Any],
        env_json: bytes,
        timeout_s: float,
        *,
        parked: str | None,
        slot: dict[str, Any] | None,
    ) -> tuple[int, list[int]]:
        """Have the zygote finish a sandbox in the parked child ``parked`` (or park one for ``slot`` first).

        Returns its pid 1's host pid and [pidfd, control, stdout, stderr, status].
        """
        if len(env_json) > ENV_MAX_BYTES:
            raise ZygoteError(f"the action's environment is larger than {ENV_MAX_BYTES} bytes")
        request = {"op": "spawn", "plan": plan, "parked": parked, "slot": slot}
        reply, fds = await self._request(request, env_json, timeout_s)
        if len(fds) != _REPLY_FDS:
            for fd in fds:
                os.close(fd)
            raise ZygoteError("the zygote sent the wrong number of fds")
        return int(reply["pid"]), fds

    async def park(self, token: str, slot: dict[str, Any], timeout_s: float) -> None:
        """Have the zygote prepare a child for ``slot`` that waits for a plan."""
        await self._request({"op": "park", "token": token, "slot": slot}, None, timeout_s)

    async def attach(self, pidfd: int, code_dir: str, timeout_s: float) -> None:
        """Have the zygote mount ``code_dir`` (read-only, noexec) on ``/fn`` of the stem cell whose pid 1 is ``pidfd``."""
        await self._request({"op": "attach", "code_dir": code_dir}, None, timeout_s, (os.dup(pidfd),))

    async def unpark(self, token: str, timeout_s: float) -> None:
        """Dismiss a parked child."""
        await self._request({"op": "unpark", "token": token}, None, timeout_s)

    async def close(self) -> None:
        """Stop the zygote: EOF on its socket ends it; SIGKILL if it lingers."""
        # Invariant: no event-loop reader is left on the socket when it closes; a reader on a closed
        # fd would swallow the events of the next socket that gets the same number.
        self._closing = True
        for exchange in list(self._inflight):
            exchange.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)
        self.sock.close()
        for _ in range(200):
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.01)
        else:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await asyncio.to_thread(self.process.wait)
        self._remove_workdir()

    def _remove_workdir(self) -> None:
        # A zygote that was killed cannot remove its (empty) work directory: do it for it.
        workdir = self.ready.get("workdir")
        if isinstance(workdir, str) and os.path.basename(workdir).startswith("stockade-zygote-"):
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(workdir, "root"))
                os.rmdir(workdir)
