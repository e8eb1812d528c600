"""Activation logs: read a sandbox's stdout/stderr pipes, cut them at sentinels, format as OpenWhisk."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, final

from stockade.invoker.protocol import SENTINEL

__all__ = [
    "LOG_COLLECTION_FAILED",
    "LOG_DEVELOPER_ERROR",
    "ActivationLogs",
    "LogCollector",
    "format_log_line",
    "format_timestamp",
    "truncation_message",
]

Stream = Literal["stdout", "stderr"]

LOG_DEVELOPER_ERROR: Final = "The action did not initialize or run as expected. Log data might be missing."
LOG_COLLECTION_FAILED: Final = "There was an issue while collecting your logs. Data might be missing."
_SENTINEL_BYTES = SENTINEL.encode()
_READ_BYTES = 64 * 1024
# Java's String.trim(), which OpenWhisk applies to each line: every char up to U+0020.
_TRIM_CHARS = "".join(chr(c) for c in range(33))


def truncation_message(limit_bytes: int) -> str:
    """OpenWhisk's final stderr line when logs exceed the action's limit."""
    return f"Logs were truncated because the total bytes size exceeds the limit of {limit_bytes} bytes."


@functools.lru_cache(maxsize=8)
def _second_prefix(seconds: int) -> str:
    # Why cached: the lines of one activation mostly share their second.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def format_timestamp(time_ns: int) -> str:
    """ISO-8601 UTC with microseconds: ``2026-11-23T00:00:00.123456Z``."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return f"{_second_prefix(seconds)}.{nanos // 1000:06d}Z"


def format_log_line(time_ns: int, stream: Stream, text: str) -> str:
    """``<timestamp padded to 30> <stream>: <trimmed text>``, as OpenWhisk stores log lines."""
    return f"{format_timestamp(time_ns):<30} {stream}: {text.strip(_TRIM_CHARS)}"


@final
class ActivationLogs:
    """The formatted log lines of one activation, kept within its byte limit."""

    __slots__ = ("_lines", "_used_bytes", "is_truncated", "limit_bytes")

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self._lines: list[str] = []
        self._used_bytes = 0
        self.is_truncated = False

    def add(self, time_ns: int, stream: Stream, raw: bytes) -> None:
        """Add one line unless the limit is reached; the first line over it truncates the logs."""
        if self.is_truncated:
            return
        self._used_bytes += len(raw)
        if self._used_bytes > self.limit_bytes:
            self.is_truncated = True
            return
        self._lines.append(format_log_line(time_ns, stream, raw.decode("utf-8", "replace")))

    def truncate(self) -> None:
        """Mark the logs truncated (lines were dropped upstream)."""
        self.is_truncated = True

    def lines(self, time_ns: int, *notes: str) -> list[str]:
        """The lines, then the truncation notice if any, then ``notes`` as stderr lines."""
        out = list(self._lines)
        if self.is_truncated:
            out.append(format_log_line(time_ns, "stderr", truncation_message(self.limit_bytes)))
        out.extend(format_log_line(time_ns, "stderr", note) for note in notes)
        return out


@dataclass(slots=True)
class _Line:
    seq: int
    time_ns: int
    stream: Stream
    text: bytes | None  # None marks a sentinel


@dataclass(slots=True)
class _Pipe:
    name: Stream
    fd: int
    partial: bytearray
    partial_time_ns: int = 0
    sentinels: int = 0
    is_eof: bool = False
    is_reading: bool = False


@final
class LogCollector:
    """Reads both pipes through the event loop and hands out lines up to each stream's sentinel.

    Lines keep the wall time their first byte arrived and a global arrival number, so both streams
    interleave in arrival order. Data past the last sentinel stays for the next activation.
    Invariant: at most ``max_pending_bytes`` of text is buffered; beyond it lines are dropped and
    the next ``take`` reports truncation.
    """

    def __init__(
        self,
        stdout_fd: int,
        stderr_fd: int,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        time_ns: Callable[[], int] = time.time_ns,
        max_pending_bytes: int = 10 * 1024 * 1024,
    ) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._time_ns = time_ns
        self._pipes = (_Pipe("stdout", stdout_fd, bytearray()), _Pipe("stderr", stderr_fd, bytearray()))
        self._pending: list[_Line] = []
        self._pending_bytes = 0
        self._seq = 0
        self._is_dropping = False
        self._waiter: asyncio.Future[None] | None = None
        self.max_pending_bytes = max_pending_bytes

    def start(self) -> None:
        """Start reading both pipes in the background."""
        for pipe in self._pipes:
            if not pipe.is_eof and not pipe.is_reading:
                self._loop.add_reader(pipe.fd, self._on_readable, pipe)
                pipe.is_reading = True

    def close(self) -> None:
        """Stop reading; the caller closes the fds."""
        for pipe in self._pipes:
            self._stop(pipe)

    def now_ns(self) -> int:
        """The collector's wall time, for notes."""
        return self._time_ns()

    def _stop(self, pipe: _Pipe) -> None:
        if pipe.is_reading:
            self._loop.remove_reader(pipe.fd)
            pipe.is_reading = False

    def _on_readable(self, pipe: _Pipe) -> None:
        self._read(pipe)

    def _read(self, pipe: _Pipe) -> bool:
        """Read once; False when the pipe has nothing more right now."""
        try:
            data = os.read(pipe.fd, _READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:
            pipe.is_eof = True
            self._stop(pipe)
            self._wake()
            return False
        self._feed(pipe, data)
        return True

    def drain(self) -> None:
        """Read everything the pipes hold now, without waiting."""
        for pipe in self._pipes:
            while not pipe.is_eof and self._read(pipe):
                pass

    def _feed(self, pipe: _Pipe, data: bytes) -> None:
        now = self._time_ns()
        partial = pipe.partial
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            if partial:
                partial += data[start:end]
                self._add(pipe, pipe.partial_time_ns, bytes(partial))
                partial.clear()
            else:
                self._add(pipe, now, data[start:end])
            start = end + 1
        if start < len(data):
            if not partial:
                pipe.partial_time_ns = now
            partial += data[start:]
            if len(partial) > self.max_pending_bytes:
                # Keep the tail: a sentinel may still end this line.
                del partial[: len(partial) - len(_SENTINEL_BYTES)]
                self._is_dropping = True

    def _add(self, pipe: _Pipe, time_ns: int, raw: bytes) -> None:
        if raw.endswith(_SENTINEL_BYTES):
            # The action may have left a line without its newline just before the sentinel.
            prefix = raw[: -len(_SENTINEL_BYTES)]
            if prefix:
                self._add_text(pipe, time_ns, prefix)
            self._seq += 1
            self._pending.append(_Line(self._seq, time_ns, pipe.name, None))
            pipe.sentinels += 1
            self._wake()
        else:
            self._add_text(pipe, time_ns, raw)

    def _add_text(self, pipe: _Pipe, time_ns: int, raw: bytes) -> None:
        if self._pending_bytes + len(raw) > self.max_pending_bytes:
            self._is_dropping = True
            return
        self._pending_bytes += len(raw)
        self._seq += 1
        self._pending.append(_Line(self._seq, time_ns, pipe.name, raw))

    def has_sentinels(self) -> bool:
        """True when each stream has a sentinel pending or has ended."""
        return all(pipe.sentinels or pipe.is_eof for pipe in self._pipes)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done() and self.has_sentinels():
            self._waiter.set_result(None)

    async def wait_sentinels(self, timeout_s: float) -> bool:
        """Wait until ``has_sentinels()``; False on timeout."""
        if self.has_sentinels():
            return True
        self._waiter = self._loop.create_future()
        try:
            async with asyncio.timeout(timeout_s):
                await self._waiter
        except TimeoutError:
            return False
        finally:
            self._waiter = None
        return True

    def take(self, logs: ActivationLogs, *, everything: bool = False) -> bool:
        """Move each stream's lines up to its last sentinel into ``logs``; True if both had one.

        With ``everything`` (the runner is gone), streams without a sentinel give up all their
        lines, the unterminated last one included.
        """
        cut: dict[Stream, int] = {}
        for line in self._pending:
            if line.text is None:
                cut[line.stream] = line.seq
        taken: list[_Line] = []
        kept: list[_Line] = []
        for line in self._pending:
            last = cut.get(line.stream)
            if (last is not None and line.seq <= last) or (last is None and everything):
                if line.text is not None:
                    taken.append(line)
            else:
                kept.append(line)
        if everything:
            for pipe in self._pipes:
                if pipe.name not in cut and pipe.partial:
                    self._seq += 1
                    taken.append(_Line(self._seq, pipe.partial_time_ns, pipe.name, bytes(pipe.partial)))
                    pipe.partial.clear()
        taken.sort(key=lambda line: (line.time_ns, line.seq))
        for line in taken:
            assert line.text is not None
            logs.add(line.time_ns, line.stream, line.text)
        self._pending = kept
        self._pending_bytes = sum(len(line.text) for line in kept if line.text is not None)
        for pipe in self._pipes:
            pipe.sentinels = 0
        if self._is_dropping:
            logs.truncate()
            self._is_dropping = False
        return len(cut) == len(self._pipes)
