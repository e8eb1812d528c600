"""Length-prefixed JSON frames over the control socket."""

from __future__ import annotations

import json
import socket
import struct

import pytest

from stockade.invoker.protocol import (
    MAX_FRAME_BYTES,
    ChannelClosedError,
    FrameChannel,
    FrameTooLargeError,
    MalformedFrameError,
    decode_frame_body,
    encode_frame,
)


@pytest.fixture
def pair():
    host, peer = socket.socketpair()
    host.setblocking(False)
    peer.settimeout(5)
    yield host, peer
    host.close()
    peer.close()


def frame(obj) -> bytes:
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def test_encode_is_big_endian_length_then_compact_utf8_json():
    data = encode_frame({"op": "run", "value": {"name": "é"}})
    body = '{"op":"run","value":{"name":"é"}}'.encode()
    assert data == struct.pack(">I", len(body)) + body


def test_encode_refuses_frames_over_the_limit():
    with pytest.raises(FrameTooLargeError):
        encode_frame({"x": "a" * 100}, max_frame_bytes=50)


@pytest.mark.parametrize("body", [b"[1]", b"not json", b"\xff\xfe", b'"text"'])
def test_decode_rejects_anything_but_an_object(body):
    with pytest.raises(MalformedFrameError):
        decode_frame_body(body)


async def test_request_sends_a_frame_and_returns_the_reply(pair):
    host, peer = pair
    channel = FrameChannel(host)
    peer.sendall(frame({"ok": True, "result": {"a": 1}}))
    reply = await channel.request({"op": "check"})
    assert reply == {"ok": True, "result": {"a": 1}}
    (length,) = struct.unpack(">I", peer.recv(4))
    assert json.loads(peer.recv(length)) == {"op": "check"}
    assert channel.last_frame_bytes == len(json.dumps({"ok": True, "result": {"a": 1}}))


async def test_frames_split_across_reads_and_coalesced_in_one_read(pair):
    host, peer = pair
    channel = FrameChannel(host)
    data = frame({"n": 1}) + frame({"n": 2})
    for i in range(len(data)):
        peer.sendall(data[i : i + 1])
    assert await channel.receive() == {"n": 1}
    assert await channel.receive() == {"n": 2}


async def test_large_frame_is_received_whole(pair):
    host, peer = pair
    channel = FrameChannel(host)
    big = {"blob": "x" * (3 * 1024 * 1024)}
    data = frame(big)

    import asyncio
    import threading

    thread = threading.Thread(target=peer.sendall, args=(data,))
    thread.start()
    try:
        assert await asyncio.wait_for(channel.receive(), 10) == big
    finally:
        thread.join()


async def test_oversize_frame_header_is_a_protocol_error(pair):
    host, peer = pair
    channel = FrameChannel(host)
    peer.sendall(struct.pack(">I", MAX_FRAME_BYTES + 1))
    with pytest.raises(FrameTooLargeError, match="limit is 67108864 bytes"):
        await channel.receive()


async def test_custom_frame_limit_applies_to_received_frames(pair):
    host, peer = pair
    channel = FrameChannel(host, max_frame_bytes=10)
    peer.sendall(frame({"x": "0123456789"}))
    with pytest.raises(FrameTooLargeError):
        await channel.receive()


async def test_eof_mid_frame_is_channel_closed(pair):
    host, peer = pair
    channel = FrameChannel(host)
    peer.sendall(frame({"n": 1})[:-2])
    peer.shutdown(socket.SHUT_WR)
    with pytest.raises(ChannelClosedError):
        await channel.receive()


async def test_malformed_body_is_a_protocol_error(pair):
    host, peer = pair
    channel = FrameChannel(host)
    peer.sendall(struct.pack(">I", 3) + b"{{{")
    with pytest.raises(MalformedFrameError):
        await channel.receive()
