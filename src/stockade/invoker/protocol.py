"""Length-prefixed JSON frames over a sandbox's control socket (docs/design/runtime-protocol.md)."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Mapping
from typing import Any, Final, final

from stockade.errors import InternalError

__all__ = [
    "MAX_FRAME_BYTES",
    "SENTINEL",
    "ChannelClosedError",
    "FrameChannel",
    "FrameTooLargeError",
    "MalformedFrameError",
    "ProtocolError",
    "decode_frame_body",
    "encode_frame",
]

# Frames above this are a protocol error: the reader stops and the sandbox is killed.
MAX_FRAME_BYTES: Final = 64 * 1024 * 1024
# Printed by the runner on stdout and stderr after every init and run.
SENTINEL: Final = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
_HEADER = struct.Struct(">I")
# Below glibc's mmap threshold, so a recv buffer is not an mmap/munmap pair per read.
_READ_BYTES = 64 * 1024


class ProtocolError(InternalError):
    """The runner broke the runtime protocol; the sandbox must be killed."""

    code = "runtime_protocol_error"


@final
class FrameTooLargeError(ProtocolError):
    """A frame announced more than ``MAX_FRAME_BYTES``."""


@final
class MalformedFrameError(ProtocolError):
    """A frame body is not UTF-8 JSON holding one object."""


@final
class ChannelClosedError(ProtocolError):
    """The runner closed the control socket (usually: it exited)."""


def encode_frame(message: Mapping[str, Any], *, max_frame_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """Header plus compact UTF-8 JSON body; raises FrameTooLargeError above the limit."""
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
    if len(body) > max_frame_bytes:
        raise FrameTooLargeError(f"frame of {len(body)} bytes exceeds the limit of {max_frame_bytes} bytes")
    return _HEADER.pack(len(body)) + body


def decode_frame_body(body: bytes | bytearray) -> dict[str, Any]:
    """Parse one frame body; raises MalformedFrameError unless it is a JSON object."""
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedFrameError(f"frame is not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise MalformedFrameError("frame is not a JSON object")
    return message


@final
class FrameChannel:
    """Request/reply frames over a connected non-blocking socket; one request in flight at a time.

    Precondition: callers serialise ``request`` calls (the invoker owns a sandbox exclusively while
    it runs). Reads go through the event loop's reader, no threads.
    """

    __slots__ = ("_buffer", "_loop", "_max_frame_bytes", "_sock", "frames_received", "last_frame_bytes")

    def __init__(
        self,
        sock: socket.socket,
        *,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._sock = sock
        self._loop = loop or asyncio.get_running_loop()
        self._max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self.frames_received = 0
        # Body size of the last frame received (bounds the size of a result it carried).
        self.last_frame_bytes = 0

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send one frame."""
        await self._loop.sock_sendall(self._sock, encode_frame(message, max_frame_bytes=self._max_frame_bytes))

    async def receive(self) -> dict[str, Any]:
        """The next frame; raises ChannelClosedError on EOF, FrameTooLargeError, MalformedFrameError."""
        buffer = self._buffer
        while True:
            if len(buffer) >= 4:
                (length,) = _HEADER.unpack_from(buffer)
                if length > self._max_frame_bytes:
                    raise FrameTooLargeError(
                        f"runner sent a frame of {length} bytes; the limit is {self._max_frame_bytes} bytes"
                    )
                end = 4 + length
                if len(buffer) >= end:
                    body = bytes(memoryview(buffer)[4:end])
                    del buffer[:end]
                    self.frames_received += 1
                    self.last_frame_bytes = length
                    return decode_frame_body(body)
                want = max(_READ_BYTES, end - len(buffer))
            else:
                want = _READ_BYTES
            try:
                data = await self._loop.sock_recv(self._sock, want)
            except (ConnectionResetError, BrokenPipeError) as exc:
                raise ChannelClosedError(f"control socket failed: {exc}") from None
            if not data:
                raise ChannelClosedError("runner closed the control socket")
            buffer += data

    async def request(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """Send ``message`` and return the runner's reply."""
        try:
            await self.send(message)
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise ChannelClosedError(f"control socket failed: {exc}") from None
        return await self.receive()
