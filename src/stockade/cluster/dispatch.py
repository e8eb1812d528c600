"""The controller's ``ActionRunner``: a run request goes sealed through JetStream to an invoker.

Placement (docs/design/scale-out.md §4): the live invokers are the keys of the heartbeat bucket;
an action's home is its place on a consistent-hash ring, then its ring successors; the first
candidate with a free slot (its last heartbeat's ``busy`` plus what this controller sent it since)
takes the run, else the shared overflow subject does. The result comes back on this controller's
own subject. A run whose invoker stops heartbeating is, when at most once (blocking), closed at
once as a whisk internal error; otherwise sent again to the next live candidate (at least once,
the same activation id), up to ``MAX_DISPATCHES`` times. Every run ends by its deadline plus
``result_grace_ms`` at the latest: the caller never waits forever.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Final

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from stockade.cluster.jetstream import (
    connect,
    ensure_controllers_bucket,
    ensure_invokers_bucket,
    ensure_run_stream,
    live_keys,
)
from stockade.cluster.ring import HashRing
from stockade.cluster.wire import (
    ANY_SUBJECT,
    CONTROLLERS_BUCKET,
    INVOKERS_BUCKET,
    RESULT_PREFIX,
    RunMessage,
    envelope_context,
    invoke_subject,
    lost_outcome,
    outcome_from_json,
)
from stockade.config import NatsSettings
from stockade.domain import ActionPolicy, RunOutcome, RunRequest, parse_policy
from stockade.errors import PlatformError, ServiceUnavailableError
from stockade.services.vault import ParameterVault

__all__ = ["MAX_DISPATCHES", "DispatchRunner", "Heartbeat"]

log = structlog.get_logger("stockade.dispatch")

MAX_DISPATCHES: Final = 3


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What an invoker says about itself every beat."""

    slots: int
    busy: int


@dataclass(slots=True)
class _Pending:
    request: RunRequest
    future: asyncio.Future[RunOutcome]
    target: str
    dispatches: int = 1
    sent: list[str] = field(default_factory=list)


class DispatchRunner:
    """Runs actions on remote invokers (``stockade controller``)."""

    def __init__(self, settings: NatsSettings, controller_id: str) -> None:
        self._settings = settings
        self._vault: ParameterVault | None = None
        self.controller_id = controller_id
        self._reply_subject = f"{RESULT_PREFIX}.{controller_id}"
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None
        self._controllers: KeyValue | None = None
        self._pending: dict[str, _Pending] = {}
        self._members: dict[str, Heartbeat] = {}
        self._ring = HashRing(())
        self._watch: asyncio.Task[None] | None = None
        # This controller's runs placed on, and finished by, each invoker since the heartbeats were
        # last read: its estimate of an invoker's load is the beat's busy count plus the difference.
        self._sent_since_beat: dict[str, int] = {}
        self._finished_since_beat: dict[str, int] = {}

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self, vault: ParameterVault) -> None:
        """Connect, ensure the stream and bucket, listen for results, watch the invokers."""
        self._vault = vault
        self._nc = await connect(self._settings.url, f"controller-{self.controller_id}")
        self._js = self._nc.jetstream()
        await ensure_run_stream(self._js)
        self._kv = await ensure_invokers_bucket(self._js, self._settings.dead_after_s)
        self._controllers = await ensure_controllers_bucket(self._js, self._settings.dead_after_s)
        await self._controllers.put(self.controller_id, b"{}")
        await self._nc.subscribe(self._reply_subject, cb=self._on_result)
        try:
            await self.refresh_members()
        except Exception:
            log.warning("dispatch.members_unavailable")  # the watch below keeps trying
        self._watch = asyncio.create_task(self._watch_members())

    async def close(self) -> None:
        """Stop watching; runs still waiting end as lost (their records are written by the caller)."""
        if self._watch is not None:
            self._watch.cancel()
        for pending in list(self._pending.values()):
            if not pending.future.done():
                pending.future.set_result(lost_outcome(_now_ms()))
        if self._nc is not None:
            await self._nc.drain()

    # -- membership --------------------------------------------------------------------------------

    @property
    def members(self) -> dict[str, Heartbeat]:
        """The live invokers as last seen."""
        return dict(self._members)

    async def refresh_members(self) -> None:
        """Read the heartbeat bucket; re-place or close runs whose invoker is gone.

        When the bucket cannot be read, the error propagates and the members stay as last seen:
        an outage of NATS is not read as every invoker gone.
        """
        assert self._js is not None
        assert self._kv is not None
        members: dict[str, Heartbeat] = {}
        for key, value in (await live_keys(self._js, self._kv, INVOKERS_BUCKET)).items():
            try:
                body = json.loads(value or b"{}")
                members[key] = Heartbeat(int(body["slots"]), int(body["busy"]))
            except (ValueError, KeyError, TypeError):
                log.warning("dispatch.member_unreadable", invoker=key)
        if set(members) != set(self._members):
            log.info("dispatch.members", live=sorted(members))
            self._ring = HashRing(members)
        self._members = members
        self._sent_since_beat = {}
        self._finished_since_beat = {}
        for activation_id, pending in list(self._pending.items()):
            if pending.target != "any" and pending.target not in members and not pending.future.done():
                await self._lost(activation_id, pending)

    async def live_controllers(self) -> frozenset[str]:
        """The controllers heartbeating now (this one included once it has beaten).

        Raises when the bucket cannot be read: a caller must not take an outage for "none alive".
        """
        assert self._js is not None
        assert self._controllers is not None
        return frozenset(await live_keys(self._js, self._controllers, CONTROLLERS_BUCKET))

    async def _watch_members(self) -> None:
        period = min(self._settings.heartbeat_s, 1.0)
        while True:
            await asyncio.sleep(period)
            try:
                assert self._controllers is not None
                await self._controllers.put(self.controller_id, b"{}")
                await self.refresh_members()
            except Exception:
                log.warning("dispatch.members_unavailable")

    async def _lost(self, activation_id: str, pending: _Pending) -> None:
        if pending.request.at_most_once or pending.dispatches >= MAX_DISPATCHES:
            log.warning("dispatch.invoker_lost", activation_id=activation_id, invoker=pending.target)
            pending.future.set_result(lost_outcome(_now_ms()))
            return
        pending.dispatches += 1
        try:
            await self._publish(pending)
        except Exception:
            pending.future.set_result(lost_outcome(_now_ms()))

    # -- placement ------------------------------------------------------------------------------------

    def place(self, request: RunRequest, exclude: tuple[str, ...] = ()) -> str:
        """The invoker id that takes this run, or ``any`` (overflow)."""
        action = request.action
        key = action.path.relative
        for candidate in self._ring.candidates(key, limit=3):
            if candidate in exclude:
                continue
            beat = self._members.get(candidate)
            if beat is None:
                continue
            if self._load(candidate, beat) < beat.slots:
                return candidate
        return "any"

    def _load(self, invoker: str, beat: Heartbeat) -> int:
        sent = self._sent_since_beat.get(invoker, 0)
        return max(0, beat.busy + sent - self._finished_since_beat.get(invoker, 0))

    # -- the runner contract --------------------------------------------------------------------------

    async def run_action(self, request: RunRequest) -> RunOutcome:
        """Seal, place, publish (stored by JetStream before we wait), and wait for the result."""
        if self._js is None or self._vault is None:
            raise ServiceUnavailableError("The dispatcher is not connected.")
        loop = asyncio.get_running_loop()
        pending = _Pending(request, loop.create_future(), target="")
        self._pending[request.activation_id] = pending
        try:
            await self._publish(pending)
            wait_s = self._wait_budget_s(request)
            try:
                return await asyncio.wait_for(asyncio.shield(pending.future), timeout=wait_s)
            except TimeoutError:
                log.warning("dispatch.result_timeout", activation_id=request.activation_id, invoker=pending.target)
                return lost_outcome(_now_ms())
        finally:
            self._pending.pop(request.activation_id, None)
            if pending.target not in ("", "any"):
                self._finished_since_beat[pending.target] = self._finished_since_beat.get(pending.target, 0) + 1

    def _wait_budget_s(self, request: RunRequest) -> float:
        deadline = request.deadline_ms or (_now_ms() + request.action.limits.timeout)
        return max(0.0, (deadline - _now_ms() + self._settings.result_grace_ms) / 1000)

    async def _publish(self, pending: _Pending) -> None:
        assert self._js is not None
        request = pending.request
        target = self.place(request, exclude=tuple(pending.sent))
        pending.target = target
        pending.sent.append(target)
        if target != "any":
            self._sent_since_beat[target] = self._sent_since_beat.get(target, 0) + 1
        message = await self._message(request)
        subject = ANY_SUBJECT if target == "any" else invoke_subject(target)
        headers = {
            # Deduplicated by JetStream within its window; each re-dispatch is a new message.
            "Nats-Msg-Id": f"{request.activation_id}.{pending.dispatches}",
            "Stockade-Reply": self._reply_subject,
        }
        try:
            await self._js.publish(subject, message.to_bytes(), headers=headers, timeout=5)
        except Exception as exc:
            log.warning("dispatch.publish_failed", activation_id=request.activation_id, error=type(exc).__name__)
            raise ServiceUnavailableError("The activation could not be dispatched; retry later.") from None

    async def _message(self, request: RunRequest) -> RunMessage:
        action = request.action
        policy = request.policy
        if policy is None:
            try:
                policy = parse_policy(action.annotation("policy"), action.path.namespace)
            except PlatformError:
                policy = ActionPolicy()
        values = {
            "parameters": dict(request.parameters),
            "activation_env": dict(request.activation_env),
            "init_env": dict(request.init_env),
        }
        namespace = request.pool_namespace
        assert self._vault is not None
        sealed = await self._vault.seal_json(namespace, envelope_context(namespace, request.activation_id), values)
        return RunMessage(
            activation_id=request.activation_id,
            namespace=namespace,
            action_namespace=action.path.namespace,
            action_name=action.path.key,
            version=action.version,
            updated=action.updated,
            deadline_ms=request.deadline_ms,
            policy=policy,
            at_most_once=request.at_most_once,
            sealed=sealed,
        )

    async def _on_result(self, msg: Msg) -> None:
        activation_id = (msg.headers or {}).get("Stockade-Activation", "")
        pending = self._pending.get(activation_id)
        if pending is None or pending.future.done():
            return  # a duplicate run's result, or a caller that gave up: the first answer won
        claimed = (msg.headers or {}).get("Stockade-Claimed")
        if claimed is not None:
            # The invoker that took the run (an overflow run's target was "any" until now).
            pending.target = claimed
            return
        try:
            pending.future.set_result(outcome_from_json(json.loads(msg.data)))
        except ValueError:
            log.warning("dispatch.bad_result", activation_id=activation_id)
            pending.future.set_result(lost_outcome(_now_ms()))

    def pool_statistics(self) -> dict[str, int]:
        """What this controller sees of the cluster (for /metrics)."""
        beats = self._members.values()
        return {
            "live": sum(b.busy for b in beats),
            "busy": sum(b.busy for b in beats),
            "idle": sum(max(0, b.slots - b.busy) for b in beats),
            "max_sandboxes": sum(b.slots for b in beats),
            "waiting": len(self._pending),
            "evictions": 0,
            "reaped": 0,
            "recycled": 0,
        }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
