"""The invoker process's loop: take runs from JetStream, open them, run them, answer, acknowledge.

Each invoker reads its own subject (``stockade.invoke.<id>``, durable consumer ``inv-<id>``) and,
when it has free slots, the shared overflow subject. It loads the action by name from the store,
verified against its integrity stamp, and runs it only at the version the controller resolved; it
opens the sealed envelope only here, in memory, just before the run. A message delivered again
(its first invoker died before acknowledging) never runs a blocking activation twice: it answers
a whisk internal error instead. A message past its deadline plus grace is dropped: its controller
has already closed the activation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Final

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.kv import KeyValue

from stockade.cluster.jetstream import connect, ensure_invokers_bucket, ensure_run_stream
from stockade.cluster.wire import (
    ANY_SUBJECT,
    INVOKER_LOST,
    RUN_STREAM,
    RunMessage,
    envelope_context,
    internal_error,
    invoke_subject,
    outcome_to_json,
)
from stockade.config import NatsSettings
from stockade.domain import RunOutcome, RunRequest
from stockade.services.catalog import Catalog
from stockade.services.runner import ActionRunner
from stockade.services.vault import ParameterVault

__all__ = ["ACTION_CHANGED", "InvokerWorker"]

log = structlog.get_logger("stockade.invoker_worker")

ACTION_CHANGED: Final = "The action changed while the activation was queued."
RUN_REFUSED: Final = "There was an internal server error."
_ACK_WAIT_S: Final = 30.0
_MAX_DELIVER: Final = 5


class InvokerWorker:
    """``stockade invoker``: one per process; ``runner`` is the local ``Invoker``."""

    def __init__(
        self,
        settings: NatsSettings,
        invoker_id: str,
        runner: ActionRunner,
        catalog: Catalog,
        vault: ParameterVault,
    ) -> None:
        if not invoker_id or invoker_id == "any" or not invoker_id.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"invalid invoker id {invoker_id!r} (letters, digits, - and _; not 'any')")
        self._settings = settings
        self.invoker_id = invoker_id
        self._runner = runner
        self._catalog = catalog
        self._vault = vault
        self._slots = asyncio.Semaphore(settings.invoker_slots)
        self._busy = 0
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None
        self.runs = 0

    async def start(self) -> None:
        """Connect, bind the consumers, start heartbeating and fetching."""
        self._nc = await connect(self._settings.url, f"invoker-{self.invoker_id}")
        self._js = self._nc.jetstream()
        await ensure_run_stream(self._js)
        self._kv = await ensure_invokers_bucket(self._js, self._settings.dead_after_s)
        own = await self._bind(f"inv-{self.invoker_id}", invoke_subject(self.invoker_id))
        shared = await self._bind("any", ANY_SUBJECT)
        await self._beat()
        self._loops = [
            asyncio.create_task(self._heartbeat()),
            asyncio.create_task(self._fetch_loop(own, prefer=True)),
            asyncio.create_task(self._fetch_loop(shared, prefer=False)),
        ]

    async def _bind(self, durable: str, subject: str) -> JetStreamContext.PullSubscription:
        assert self._js is not None
        config = ConsumerConfig(
            durable_name=durable,
            filter_subject=subject,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=_ACK_WAIT_S,
            max_deliver=_MAX_DELIVER,
            max_ack_pending=max(2, 2 * self._settings.invoker_slots) if durable != "any" else 10_000,
        )
        await self._js.add_consumer(RUN_STREAM, config)
        return await self._js.pull_subscribe_bind(durable=durable, stream=RUN_STREAM)

    async def stop(self) -> None:
        """Stop fetching, finish the runs in flight, leave the cluster (the key is deleted)."""
        self._stopping.set()
        for task in self._loops:
            task.cancel()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._kv is not None:
            with contextlib.suppress(Exception):
                await self._kv.delete(self.invoker_id)
        if self._nc is not None:
            # Every run has been answered and acknowledged above; flush those and close. (A drain
            # would wait out its 30 s timeout on the cancelled pull subscriptions and log an error.)
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=5)
            with contextlib.suppress(Exception):
                await self._nc.close()

    async def _beat(self) -> None:
        assert self._kv is not None
        body = {"slots": self._settings.invoker_slots, "busy": self._busy}
        await self._kv.put(self.invoker_id, json.dumps(body).encode())

    async def _heartbeat(self) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(self._settings.heartbeat_s)
            try:
                await self._beat()
            except Exception:
                log.warning("invoker.heartbeat_failed")

    async def _fetch_loop(self, sub: JetStreamContext.PullSubscription, *, prefer: bool) -> None:
        while not self._stopping.is_set():
            await self._slots.acquire()
            if not prefer:
                # The overflow subject gets a slot only while this invoker's own queue is idle.
                await asyncio.sleep(0.05)
            try:
                messages = await sub.fetch(1, timeout=1.0)
            except (NatsTimeoutError, TimeoutError):
                self._slots.release()
                continue
            except Exception:
                self._slots.release()
                await asyncio.sleep(0.5)
                continue
            for msg in messages:
                task = asyncio.create_task(self._handle(msg))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _handle(self, msg: Msg) -> None:
        self._busy += 1
        try:
            await self._process(msg)
        except Exception:
            log.exception("invoker.message_failed")
        finally:
            self._busy -= 1
            self._slots.release()

    async def _process(self, msg: Msg) -> None:
        assert self._nc is not None
        reply = (msg.headers or {}).get("Stockade-Reply", "")
        try:
            message = RunMessage.from_bytes(msg.data)
        except ValueError:
            log.warning("invoker.malformed_message")
            await msg.term()
            return
        now = _now_ms()
        if msg.metadata.num_delivered > 1 and message.at_most_once:
            # At most once: its first delivery may have run; never run it again.
            await self._answer(reply, message.activation_id, internal_error(INVOKER_LOST, now))
            await msg.ack()
            return
        deadline = message.deadline_ms
        if deadline is not None and now > deadline + self._settings.result_grace_ms:
            # Its controller has already closed it (a record exists); running it now helps no one.
            await msg.ack()
            return
        if reply:
            # Say who took it, so that its controller can close it (or send it elsewhere) as soon as
            # this invoker stops heartbeating, even when it came from the overflow subject.
            await self._nc.publish(
                reply, b"", headers={"Stockade-Activation": message.activation_id, "Stockade-Claimed": self.invoker_id}
            )
        outcome = await self._run(message, msg)
        await self._answer(reply, message.activation_id, outcome)
        await msg.ack()
        self.runs += 1

    async def _run(self, message: RunMessage, msg: Msg) -> RunOutcome:
        try:
            action = await self._catalog.action(message.action_namespace, message.action_name)
            if (action.version, action.updated) != (message.version, message.updated):
                self._catalog.forget(message.action_namespace, message.action_name)
                action = await self._catalog.action(message.action_namespace, message.action_name)
        except Exception as exc:
            log.warning("invoker.action_unavailable", activation_id=message.activation_id, error=type(exc).__name__)
            return internal_error(RUN_REFUSED, _now_ms())
        if (action.version, action.updated) != (message.version, message.updated):
            return internal_error(ACTION_CHANGED, _now_ms())
        try:
            values = await self._vault.open_json(
                envelope_context(message.namespace, message.activation_id), message.sealed
            )
            if not isinstance(values, dict):
                raise TypeError("envelope")
            parameters = values["parameters"]
            activation_env = values["activation_env"]
            init_env = values["init_env"]
            if not (isinstance(parameters, dict) and isinstance(activation_env, dict) and isinstance(init_env, dict)):
                raise TypeError("envelope")
        except Exception:
            log.warning("invoker.envelope_refused", activation_id=message.activation_id)
            return internal_error(RUN_REFUSED, _now_ms())
        request = RunRequest(
            action=action,
            parameters=parameters,
            activation_id=message.activation_id,
            activation_env={str(k): str(v) for k, v in activation_env.items()},
            init_env={str(k): str(v) for k, v in init_env.items()},
            namespace=message.namespace,
            deadline_ms=message.deadline_ms,
            policy=message.policy,
            at_most_once=message.at_most_once,
        )
        log.info("invoker.run", activation_id=message.activation_id, delivered=msg.metadata.num_delivered)
        progress = asyncio.create_task(_keep_in_progress(msg))
        try:
            return await self._runner.run_action(request)
        finally:
            progress.cancel()

    async def _answer(self, reply: str, activation_id: str, outcome: RunOutcome) -> None:
        assert self._nc is not None
        if not reply:
            return
        body = json.dumps(outcome_to_json(outcome), separators=(",", ":")).encode()
        await self._nc.publish(reply, body, headers={"Stockade-Activation": activation_id})
        await self._nc.flush()


async def _keep_in_progress(msg: Msg) -> None:
    """Tell JetStream the run is alive (else it redelivers after AckWait)."""
    while True:
        await asyncio.sleep(_ACK_WAIT_S / 3)
        with contextlib.suppress(Exception):
            await msg.in_progress()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
