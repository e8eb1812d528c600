"""Log collection: sentinels, interleaving by arrival, OpenWhisk formatting and limits."""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest

from stockade.invoker.logs import (
    LOG_COLLECTION_FAILED,
    LOG_DEVELOPER_ERROR,
    ActivationLogs,
    LogCollector,
    format_log_line,
    format_timestamp,
    truncation_message,
)

S = b"XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"
T0 = 1_795_392_000_123_456_789  # 2026-11-23T00:00:00.123456789Z


def test_timestamp_is_utc_iso_with_microseconds():
    assert format_timestamp(T0) == "2026-11-23T00:00:00.123456Z"
    assert format_timestamp(T0 - 123_456_789) == "2026-11-23T00:00:00.000000Z"


def test_line_format_pads_timestamp_to_30_and_trims_like_java():
    line = format_log_line(T0, "stdout", "  hello\r\t")
    assert line == "2026-11-23T00:00:00.123456Z    stdout: hello"
    assert line.index("stdout") == 31


def test_messages_are_openwhisk_s():
    assert truncation_message(10485760) == (
        "Logs were truncated because the total bytes size exceeds the limit of 10485760 bytes."
    )
    assert LOG_DEVELOPER_ERROR == "The action did not initialize or run as expected. Log data might be missing."
    assert LOG_COLLECTION_FAILED == "There was an issue while collecting your logs. Data might be missing."


def test_activation_logs_stop_at_the_limit_and_append_the_notice():
    logs = ActivationLogs(limit_bytes=10)
    logs.add(T0, "stdout", b"12345")
    logs.add(T0, "stdout", b"67890")
    logs.add(T0, "stdout", b"x")
    logs.add(T0, "stderr", b"y")
    lines = logs.lines(T0, "note")
    assert [line.split(": ", 1)[1] for line in lines] == [
        "12345",
        "67890",
        truncation_message(10),
        "note",
    ]
    assert lines[2].split()[1] == "stderr:"


class Pipes:
    def __init__(self):
        self.out_r, self.out_w = os.pipe()
        self.err_r, self.err_w = os.pipe()
        for fd in (self.out_r, self.err_r):
            os.set_blocking(fd, False)

    def close(self):
        for fd in (self.out_r, self.out_w, self.err_r, self.err_w):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def pipes():
    p = Pipes()
    yield p
    p.close()


class Ticker:
    """time_ns that advances 1 µs per call, so arrival order is visible in timestamps."""

    def __init__(self):
        self.now = T0

    def __call__(self):
        self.now += 1000
        return self.now


def texts(lines):
    return [(line.split()[1], line.split(": ", 1)[1]) for line in lines]


async def test_streams_interleave_by_arrival_and_sentinels_are_stripped(pipes):
    collector = LogCollector(pipes.out_r, pipes.err_r, time_ns=Ticker())
    os.write(pipes.out_w, b"one\n")
    collector.drain()
    os.write(pipes.err_w, b"two\n")
    collector.drain()
    os.write(pipes.out_w, b"three\n" + S)
    os.write(pipes.err_w, S)
    collector.drain()
    logs = ActivationLogs(1 << 20)
    assert collector.take(logs) is True
    assert texts(logs.lines(T0)) == [("stdout:", "one"), ("stderr:", "two"), ("stdout:", "three")]


async def test_data_after_the_sentinel_stays_for_the_next_activation(pipes):
    collector = LogCollector(pipes.out_r, pipes.err_r, time_ns=Ticker())
    os.write(pipes.out_w, b"first\n" + S + b"second\n" + S)
    os.write(pipes.err_w, S + S)
    collector.drain()
    logs = ActivationLogs(1 << 20)
    # Everything up to the last sentinel of each stream belongs to this activation.
    collector.take(logs)
    assert texts(logs.lines(T0)) == [("stdout:", "first"), ("stdout:", "second")]
    os.write(pipes.out_w, b"bg output\nthird\n")
    collector.drain()
    assert collector.has_sentinels() is False
    os.write(pipes.out_w, S)
    os.write(pipes.err_w, S)
    collector.drain()
    logs = ActivationLogs(1 << 20)
    assert collector.take(logs) is True
    assert texts(logs.lines(T0)) == [("stdout:", "bg output"), ("stdout:", "third")]


async def test_text_without_newline_before_the_sentinel_is_a_line(pipes):
    collector = LogCollector(pipes.out_r, pipes.err_r)
    os.write(pipes.out_w, b"no newline" + S)
    os.write(pipes.err_w, S)
    collector.drain()
    logs = ActivationLogs(1 << 20)
    assert collector.take(logs)
    assert texts(logs.lines(T0)) == [("stdout:", "no newline")]


async def test_take_everything_flushes_partial_lines_when_the_runner_is_gone(pipes):
    collector = LogCollector(pipes.out_r, pipes.err_r)
    os.write(pipes.out_w, b"started\nhalf a li")
    collector.drain()
    logs = ActivationLogs(1 << 20)
    assert collector.take(logs, everything=True) is False
    assert texts(logs.lines(T0)) == [("stdout:", "started"), ("stdout:", "half a li")]


async def test_pending_cap_drops_lines_but_still_finds_sentinels(pipes):
    collector = LogCollector(pipes.out_r, pipes.err_r, max_pending_bytes=100)
    collector.start()
    os.write(pipes.out_w, b"x" * 60 + b"\n" + b"y" * 60 + b"\n" + b"z" * 500 + S)
    os.write(pipes.err_w, S)
    assert await collector.wait_sentinels(5) is True
    logs = ActivationLogs(1 << 20)
    assert collector.take(logs)
    lines = logs.lines(T0)
    assert texts(lines)[0] == ("stdout:", "x" * 60)
    assert texts(lines)[-1] == ("stderr:", truncation_message(1 << 20))
    collector.close()


async def test_background_reader_and_wait_for_sentinels(pipes):
    collector = LogCollector(pipes.out_r, pipes.err_r)
    collector.start()
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, os.write, pipes.out_w, b"late\n" + S)
    loop.call_later(0.06, os.write, pipes.err_w, S)
    assert await collector.wait_sentinels(5) is True
    logs = ActivationLogs(1 << 20)
    collector.take(logs)
    assert texts(logs.lines(T0)) == [("stdout:", "late")]
    collector.close()


async def test_wait_for_sentinels_times_out(pipes):
    collector = LogCollector(pipes.out_r, pipes.err_r)
    collector.start()
    os.write(pipes.out_w, S)
    assert await collector.wait_sentinels(0.05) is False
    collector.close()


async def test_eof_counts_as_done(pipes):
    collector = LogCollector(pipes.out_r, pipes.err_r)
    collector.start()
    os.write(pipes.out_w, b"bye\n")
    os.close(pipes.out_w)
    os.close(pipes.err_w)
    assert await collector.wait_sentinels(5) is True
    logs = ActivationLogs(1 << 20)
    assert collector.take(logs, everything=True) is False
    assert texts(logs.lines(T0)) == [("stdout:", "bye")]
    collector.close()
