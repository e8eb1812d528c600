"""JetStream plumbing shared by controllers and invokers: connect, and the stream and bucket both expect.

Idempotent: every process ensures the same definitions at start, so no bootstrap order is needed.
The run stream keeps work until an invoker acknowledges it (WorkQueue), refuses new work when full
(``discard new``: a full stream fails the publish, nothing accepted is evicted) and deduplicates
publishes by ``Nats-Msg-Id`` for two minutes.
"""

from __future__ import annotations

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import KeyDeletedError, KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from stockade.cluster.wire import CONTROLLERS_BUCKET, INVOKE_PREFIX, INVOKERS_BUCKET, RUN_STREAM

__all__ = ["connect", "ensure_controllers_bucket", "ensure_invokers_bucket", "ensure_run_stream", "live_keys"]

_MAX_STREAM_BYTES = 1 << 30


async def connect(url: str, name: str) -> Client:
    """A connection that keeps reconnecting (a NATS restart is a pause, not an end)."""
    return await nats.connect(url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5)


async def ensure_run_stream(js: JetStreamContext) -> None:
    """The dispatch stream (``stockade.invoke.>``)."""
    config = StreamConfig(
        name=RUN_STREAM,
        subjects=[f"{INVOKE_PREFIX}.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        max_bytes=_MAX_STREAM_BYTES,
        duplicate_window=120.0,
    )
    try:
        await js.stream_info(RUN_STREAM)
    except NotFoundError:
        await js.add_stream(config)


async def ensure_invokers_bucket(js: JetStreamContext, dead_after_s: float) -> KeyValue:
    """Invoker heartbeats: a key per live invoker, gone ``dead_after_s`` after its last beat."""
    return await _bucket(js, INVOKERS_BUCKET, dead_after_s)


async def ensure_controllers_bucket(js: JetStreamContext, dead_after_s: float) -> KeyValue:
    """Controller heartbeats (journal rows of a controller that is gone are recovered by the others)."""
    return await _bucket(js, CONTROLLERS_BUCKET, dead_after_s)


async def _bucket(js: JetStreamContext, name: str, ttl_s: float) -> KeyValue:
    try:
        return await js.key_value(name)
    except (NotFoundError, nats.js.errors.BucketNotFoundError):
        return await js.create_key_value(KeyValueConfig(bucket=name, ttl=ttl_s, history=1))


async def live_keys(js: JetStreamContext, kv: KeyValue, bucket: str) -> dict[str, bytes]:
    """The keys of a heartbeat bucket that hold a value now, with their values.

    Reads the subjects from the bucket's stream info (one server request) rather than through
    ``KeyValue.keys()``, whose short-lived watcher can report an empty bucket when its first entry
    arrives after the consumer already counts as drained. A key whose last entry is a delete marker,
    or that expired between the two reads, is left out; any other failure propagates, so the
    caller keeps what it last knew instead of reading an outage as every member gone.
    """
    prefix = f"$KV.{bucket}."
    info = await js.stream_info(f"KV_{bucket}", subjects_filter=f"{prefix}>")
    values: dict[str, bytes] = {}
    for subject in info.state.subjects or {}:
        key = subject[len(prefix) :]
        try:
            entry = await kv.get(key)
        except (KeyNotFoundError, KeyDeletedError):
            continue
        values[key] = entry.value or b""
    return values
