"""Invoker: run one activation of an action in a warm or new sandbox and classify the outcome.

Outcomes follow OpenWhisk (docs: reference/openwhisk-compat.md §6): success and application
errors keep the sandbox warm; developer and internal errors, failed integrity checks and
timeouts destroy it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Final, final

import structlog

from stockade.config import InvokerSettings, LimitSettings, Settings
from stockade.domain import (
    POLICY_ANNOTATION,
    Action,
    ActionPolicy,
    ActivationResponse,
    ActivationStatus,
    Clock,
    SystemClock,
)
from stockade.domain import parse_policy as parse_action_policy
from stockade.errors import PlatformError
from stockade.invoker.admission import Admission, Grant
from stockade.invoker.code import CodeError, CodeStore, MaterializedCode
from stockade.invoker.egress_policy import EgressPolicy, EgressPolicyError, parse_egress
from stockade.invoker.egress_proxy import EgressLease, EgressProxy
from stockade.invoker.logs import LOG_COLLECTION_FAILED, LOG_DEVELOPER_ERROR, ActivationLogs
from stockade.invoker.outcomes import (
    CHECK_FAILED,
    CODE_MODIFIED,
    ENTRY_REPLACED,
    INIT_EXITED,
    INIT_FAILED,
    INIT_TIMEOUT,
    INTEGRITY_FAILED,
    INVALID_RESPONSE,
    MEMORY_EXHAUSTED,
    RUN_EXITED,
    RUN_TIMEOUT,
    START_FAILED,
    STRAY_PROCESSES,
    InvokerStatistics,
    RunOutcome,
    RunRequest,
    classify_result,
    compact_json,
    developer_error,
)
from stockade.invoker.pool import PoolKey, WarmPool
from stockade.invoker.protocol import ProtocolError
from stockade.invoker.session import SandboxSession
from stockade.observability.tracing import Tracer
from stockade.sandbox.backend import SandboxBackend
from stockade.sandbox.spec import SandboxSpec

__all__ = ["Invoker"]

_MIB = 1024 * 1024
# Action annotations for reuse: a fresh sandbox for every run; an empty /tmp for every run
# (in modes without a private /tmp, the sandbox is not reused instead).
USE_ONCE_ANNOTATION: Final = "sandbox-use-once"
WIPE_TMP_ANNOTATION: Final = "sandbox-wipe-tmp"
# How long the host waits for sentinels that were not yet in the pipes when the reply came.
LOG_WAIT_S: Final = 2.0
# The integrity check reads the code tree; generous, but far below any action timeout.
CHECK_TIMEOUT_S: Final = 5.0
_CHECK: Final = {"op": "check"}
EGRESS_INVALID: Final = "The action's egress policy is invalid: "
_log = structlog.get_logger("stockade.invoker")


class _Failed(Exception):
    """Internal: a phase ended the activation with ``response``; the sandbox is already gone."""

    def __init__(
        self, response: ActivationResponse, *, timed_out: bool = False, findings: tuple[str, ...] = ()
    ) -> None:
        super().__init__(response.status.value)
        self.response = response
        self.timed_out = timed_out
        self.findings = findings


@final
class Invoker:
    """Runs activations in sandboxes from ``backend``, reusing warm ones per PoolKey.

    Capacity: at most ``settings.max_sandboxes`` sandboxes live (idle or busy); at the cap an
    idle sandbox of another key is evicted (LRU), else ``run`` waits. Call ``close`` at shutdown.
    """

    def __init__(
        self,
        backend: SandboxBackend,
        code_store: CodeStore,
        *,
        settings: InvokerSettings | None = None,
        max_result_bytes: int = LimitSettings().max_result_bytes,
        clock: Clock | None = None,
        api_host: str = "",
        tracer: Tracer | None = None,
        egress: EgressProxy | None = None,
    ) -> None:
        """``egress``: the allowlist proxy for actions with egress grants; None = no action gets
        network access, whatever it declares (the safe default for embedded and test invokers)."""
        settings = settings or InvokerSettings()
        self._tracer = tracer
        self.egress = egress
        self._backend = backend
        self._code = code_store
        self._clock: Clock = clock or SystemClock()
        self._max_result_bytes = max_result_bytes
        self._api_host = api_host
        self._pool: WarmPool[SandboxSession] = WarmPool(
            clock=self._clock,
            max_sandboxes=settings.max_sandboxes,
            idle_ttl_ms=int(settings.idle_ttl_s * 1000),
            max_runs=settings.max_runs_per_sandbox,
        )
        self._reap_interval_s = max(1.0, min(settings.idle_ttl_s / 2, 30.0))
        self._memory_watermark = settings.recycle_memory_percent / 100
        # Bounded starts and the warm hand-over under a load step (admission.py).
        self._admission: Admission[SandboxSession] = Admission(
            self._pool, max_starts=settings.max_concurrent_starts, warm_wait_s=settings.warm_wait_ms / 1000
        )
        self._reaper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._is_closed = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        backend: SandboxBackend,
        *,
        clock: Clock | None = None,
        tracer: Tracer | None = None,
        egress: EgressProxy | None = None,
    ) -> Invoker:
        """An invoker wired from settings; code lives under ``data_dir/code``. The caller closes ``egress``."""
        return cls(
            backend,
            CodeStore(settings.data_dir / "code"),
            settings=settings.invoker,
            max_result_bytes=settings.limits.max_result_bytes,
            clock=clock,
            api_host=settings.api.base_url,
            tracer=tracer,
            egress=egress,
        )

    @property
    def code_root(self) -> Path:
        """Where materialised code lives."""
        return self._code.root

    # -- public ----------------------------------------------------------------------------------

    async def run_action(self, request: RunRequest) -> RunOutcome:
        """The ``ActionRunner`` contract: run one activation on this host (``run``)."""
        return await self.run(request)

    async def run(self, request: RunRequest) -> RunOutcome:
        """Run one activation to its outcome; waits while the invoker is at capacity."""
        if self._tracer is None:
            return await self._execute(request)
        with self._tracer.start_as_current_span(
            "stockade.invoker.run", attributes={"stockade.activation_id": request.activation_id}
        ) as span:
            outcome = await self._execute(request)
            span.set_attributes(
                {
                    "stockade.cold": outcome.init_time_ms is not None,
                    "stockade.wait_ms": outcome.wait_time_ms,
                    "stockade.status": outcome.response.status.value,
                    "stockade.timed_out": outcome.timed_out,
                    "stockade.findings": len(outcome.findings),
                }
            )
            # The sandbox phases, from the outcome's timings (no extra work inside the run).
            run_start_ms = outcome.start_ms + (outcome.init_time_ms or 0)
            if outcome.init_time_ms is not None:
                self._tracer.start_span("stockade.sandbox.init", start_time=outcome.start_ms * 1_000_000).end(
                    end_time=run_start_ms * 1_000_000
                )
            self._tracer.start_span("stockade.sandbox.run", start_time=run_start_ms * 1_000_000).end(
                end_time=max(outcome.end_ms, run_start_ms) * 1_000_000
            )
            return outcome

    async def _execute(self, request: RunRequest) -> RunOutcome:
        if self._is_closed:
            raise RuntimeError("invoker is closed")
        self._ensure_reaper()
        action = request.action
        arrived_ms = self._clock.now_ms()
        if action.exec.family is None:
            return self._outcome_without_sandbox(arrived_ms, ActivationStatus.INTERNAL_ERROR, START_FAILED)
        key = PoolKey(request.pool_namespace, action.path.fqn, action.version, action.updated)
        logs = ActivationLogs(action.limits.logs * _MIB)
        try:
            session, is_cold = await self._acquire(key, request)
        except CodeError as exc:
            return self._outcome_without_sandbox(arrived_ms, ActivationStatus.DEVELOPER_ERROR, exc.message)
        except EgressPolicyError as exc:
            return self._outcome_without_sandbox(
                arrived_ms, ActivationStatus.DEVELOPER_ERROR, EGRESS_INVALID + str(exc)
            )
        except Exception:
            # Backend failures stay here: the client sees a whisk internal error, no internals.
            return self._outcome_without_sandbox(arrived_ms, ActivationStatus.INTERNAL_ERROR, START_FAILED)
        if session.egress is not None:
            # Connections from now on are logged under this activation.
            session.egress.activation_id = request.activation_id
        ready_ms = self._clock.now_ms()
        is_settled = False
        try:
            outcome = await self._drive(session, request, logs, is_cold, arrived_ms, ready_ms)
            is_settled = True
            return outcome
        finally:
            if not is_settled:
                # Cancelled (or a bug) mid-activation: the sandbox state is unknown.
                self._spawn(self._destroy(session))

    async def reap_idle(self) -> int:
        """Kill idle sandboxes past the TTL; returns how many."""
        expired = self._pool.reap()
        for session in expired:
            session.is_discarded = True  # reap() already freed the slot
            await session.destroy()
        if expired:
            for session in expired:
                self._admission.forget_key(session.key)
            self._admission.pump()
        return len(expired)

    def statistics(self) -> InvokerStatistics:
        """Pool counters and the number of activations waiting for capacity."""
        return InvokerStatistics(self._pool.statistics(), self._admission.waiting)

    def pool_statistics(self) -> dict[str, int]:
        """The warm pool's counters, for the metrics (``stockade_warm_pool_sandboxes``, kills by reason)."""
        stats = self.statistics()
        pool = stats.pool
        return {
            "live": pool.live,
            "idle": pool.idle,
            "busy": pool.busy,
            "max_sandboxes": pool.max_sandboxes,
            "waiting": stats.waiting,
            "evictions": pool.evictions,
            "reaped": pool.reaped,
            "recycled": pool.recycled,
        }

    async def close(self) -> None:
        """Stop the reaper and kill every idle sandbox; busy ones are killed when their run ends."""
        self._is_closed = True
        self._admission.close()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        for session in self._pool.drain():
            session.is_discarded = True  # drain() already freed the slot
            await session.destroy()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # -- acquiring a sandbox -----------------------------------------------------------------------

    async def _acquire(self, key: PoolKey, request: RunRequest) -> tuple[SandboxSession, bool]:
        """A warm session of ``key`` or a new started one (not yet initialised).

        Starts are bounded (``max_concurrent_starts``); with none idle but busy sandboxes of
        ``key``, a run waits up to ``warm_wait_ms`` for one of them when a warm run is expected
        sooner than a cold start (admission.py).
        """
        admission = self._admission
        prefer_warm = admission.prefers_warm(key, request.action.exec.kind)
        code: MaterializedCode | None = None
        while True:
            if code is None and not self._pool.has_idle(key):
                # Before taking any start slot: one tenant's large archive must not hold the
                # slots everyone's cold starts need.
                code = await self._code.materialize(request.action.exec)
            grant = admission.try_now(key, prefer_warm=prefer_warm)
            if grant is None:
                grant = await self._wait(key, prefer_warm)
            session = grant.session
            if session is not None:
                if session.process.is_alive():
                    return session, False
                await self._destroy(session)
                prefer_warm = False
                continue
            return await self._start_granted(key, request, grant, code), True

    async def _wait(self, key: PoolKey, prefer_warm: bool) -> Grant[SandboxSession]:
        waiter = self._admission.enqueue(key, prefer_warm=prefer_warm)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            # Granted and cancelled at once: give the grant back so nothing is lost.
            granted = self._admission.abandon(waiter)
            if granted is not None:
                self._give_back(key, granted)
            raise

    def _give_back(self, key: PoolKey, grant: Grant[SandboxSession]) -> None:
        """Return a grant its run did not use (cancelled while waiting)."""
        if grant.session is not None:
            self._release(grant.session)
            return
        for victim in grant.evicted:
            victim.is_discarded = True  # its slot passed to the grant, which gives it back now
            self._spawn(victim.destroy())
        self._pool.discard()
        self._admission.not_busy(key)
        self._admission.start_done(key)

    async def _start_granted(
        self, key: PoolKey, request: RunRequest, grant: Grant[SandboxSession], code: MaterializedCode | None
    ) -> SandboxSession:
        """Start a sandbox in the start slot and pool slot that ``grant`` holds."""
        began = time.monotonic()
        try:
            for victim in grant.evicted:
                victim.is_discarded = True  # its slot passed to us
                await victim.destroy()
            if code is None:
                code = await self._code.materialize(request.action.exec)
            session = await self._start(key, request, code)
        except BaseException:
            self._pool.discard()
            self._admission.not_busy(key)
            raise
        finally:
            self._admission.start_done(key)
        session.started_s = time.monotonic() - began
        return session

    async def _start(self, key: PoolKey, request: RunRequest, code: MaterializedCode) -> SandboxSession:
        action = request.action
        family = action.exec.family
        assert family is not None
        env = dict(request.init_env)
        if self._api_host:
            env["__OW_API_HOST"] = self._api_host
        lease = await self._open_egress(action, key, request.policy)
        spec = SandboxSpec(
            family=family,
            code_dir=code.path,
            memory_mb=action.limits.memory,
            timeout_ms=action.limits.timeout,
            env=env,
            label=f"{action.path.relative}@{action.version}",
            egress_socket=lease.path if lease is not None else None,
        )
        try:
            process = await self._backend.start(spec)
        except BaseException:
            if lease is not None:
                await lease.close()
            raise
        try:
            return SandboxSession(process, key, code, egress=lease)
        except BaseException:
            await process.kill()
            if lease is not None:
                await lease.close()
            raise

    async def _open_egress(
        self, action: Action, key: PoolKey, policy: ActionPolicy | None = None
    ) -> EgressLease | None:
        """A proxy socket when the action's policy grants egress (and a proxy is wired); else None.

        Raises EgressPolicyError for a malformed grant: the action is refused rather than run with
        part of its policy. A policy annotation that does not parse at all grants nothing.
        """
        if policy is not None:
            grants = policy.egress
        else:
            try:
                grants = parse_action_policy(action.annotation(POLICY_ANNOTATION), action.path.namespace).egress
            except PlatformError:
                return None
        if not grants:
            return None
        if self.egress is None:
            _log.warning("egress.unavailable", action=action.path.fqn, detail="no egress proxy: no network access")
            return None
        egress_policy: EgressPolicy = parse_egress(grants, self.egress.data)
        return await self.egress.open(
            egress_policy,
            namespace=key.namespace,
            action=action.path.fqn,
            label=f"{action.path.relative}@{action.version}",
        )

    # -- one activation ---------------------------------------------------------------------------

    async def _drive(
        self,
        session: SandboxSession,
        request: RunRequest,
        logs: ActivationLogs,
        is_cold: bool,
        arrived_ms: int,
        ready_ms: int,
    ) -> RunOutcome:
        timeout_ms = request.action.limits.timeout
        notes: list[str] = []
        start_ms = ready_ms
        init_time_ms: int | None = None
        timed_out = False
        findings: tuple[str, ...] = ()
        began = time.monotonic()
        init_s = 0.0
        try:
            if is_cold:
                await self._init(session, request, logs, notes, timeout_ms)
                run_start_ms = self._clock.now_ms()
                init_time_ms = run_start_ms - start_ms
                init_s = time.monotonic() - began
            else:
                run_start_ms = start_ms
            response = await self._run(session, request, logs, notes, timeout_ms, run_start_ms)
            run_s = time.monotonic() - began - init_s
        except _Failed as failed:
            response, timed_out, findings = failed.response, failed.timed_out, failed.findings
            end_ms = self._clock.now_ms()
            if is_cold and init_time_ms is None:
                init_time_ms = end_ms - start_ms
        else:
            end_ms = self._clock.now_ms()
            findings = await self._verify(session)
            if findings:
                await self._destroy(session, code_modified=any(f.startswith(CODE_MODIFIED) for f in findings))
            elif self._must_recycle(session, request.action) or not self._wipe_tmp(session, request.action):
                await self._destroy(session)
            else:
                self._admission.learn(
                    session.key, request.action.exec.kind, run_s, session.started_s + init_s if is_cold else None
                )
                self._release(session)
        return RunOutcome(
            response=response,
            logs=logs.lines(session.logs.now_ns(), *notes),
            start_ms=start_ms,
            end_ms=end_ms,
            wait_time_ms=max(0, ready_ms - arrived_ms),
            init_time_ms=init_time_ms,
            timed_out=timed_out,
            findings=findings,
            sandbox_id=session.sandbox_id,
        )

    async def _init(
        self, session: SandboxSession, request: RunRequest, logs: ActivationLogs, notes: list[str], timeout_ms: int
    ) -> None:
        """Send init and capture the integrity facts; raises _Failed (sandbox destroyed)."""
        exec_ = request.action.exec
        # Like OpenWhisk's /init, the first activation's variables are visible to module-level code.
        env = {**request.init_env, **request.activation_env}
        message = {
            "op": "init",
            "code_dir": session.process.code_path,
            "main": exec_.main or "main",
            "binary": exec_.binary,
            "env": env,
        }
        try:
            reply = await session.request(message, timeout_ms / 1000)
        except TimeoutError:
            await self._abort(session, logs, notes)
            raise _Failed(developer_error(INIT_TIMEOUT.format(ms=timeout_ms)), timed_out=True) from None
        except ProtocolError:
            exited = MEMORY_EXHAUSTED if self._memory_exhausted(session) else INIT_EXITED
            await self._abort(session, logs, notes)
            raise _Failed(developer_error(exited)) from None
        if not await session.collect_logs(logs, wait_s=LOG_WAIT_S):
            notes.append(LOG_COLLECTION_FAILED)
        if reply.get("ok") is not True:
            await self._destroy(session)
            error = reply.get("error")
            raise _Failed(
                developer_error(error if isinstance(error, str) else INIT_FAILED.format(body=compact_json(reply)))
            )
        try:
            facts = await session.request(_CHECK, CHECK_TIMEOUT_S)
        except (TimeoutError, ProtocolError):
            facts = {}
        session.digest, session.entry = facts.get("digest"), facts.get("entry")
        if facts.get("ok") is not True or session.digest != session.code.digest:
            # The shared code directory changed since it was built: rebuild it, do not run.
            await self._destroy(session, code_modified=True)
            finding = f"{CODE_MODIFIED}: code directory differs from what was materialised"
            raise _Failed(
                ActivationResponse.failure(ActivationStatus.INTERNAL_ERROR, INTEGRITY_FAILED), findings=(finding,)
            )

    async def _run(
        self,
        session: SandboxSession,
        request: RunRequest,
        logs: ActivationLogs,
        notes: list[str],
        timeout_ms: int,
        run_start_ms: int,
    ) -> ActivationResponse:
        """Send run and classify the reply; raises _Failed (sandbox destroyed) on developer errors."""
        deadline_ms = run_start_ms + timeout_ms
        env = dict(request.activation_env)
        env["__OW_DEADLINE"] = str(deadline_ms)
        message = {
            "op": "run",
            "value": request.parameters,
            "env": env,
            "deadline_ms": deadline_ms,
            # Invariant: CPU time <= wall time for one thread, so the wall clock normally fires first;
            # the CPU timer catches multi-threaded burners and backs up a stuck host timer.
            "cpu_ms": timeout_ms,
            "check": True,
        }
        try:
            reply = await session.request(message, timeout_ms / 1000)
        except TimeoutError:
            await self._abort(session, logs, notes)
            raise _Failed(developer_error(RUN_TIMEOUT.format(ms=timeout_ms)), timed_out=True) from None
        except ProtocolError:
            exited = MEMORY_EXHAUSTED if self._memory_exhausted(session) else RUN_EXITED
            await self._abort(session, logs, notes)
            raise _Failed(developer_error(exited)) from None
        session.runs += 1
        session.facts = reply.get("check")
        if not await session.collect_logs(logs, wait_s=LOG_WAIT_S):
            notes.append(LOG_COLLECTION_FAILED)
        if reply.get("ok") is not True:
            await self._destroy(session)
            error = reply.get("error")
            raise _Failed(
                developer_error(error if isinstance(error, str) else INVALID_RESPONSE.format(body=compact_json(reply)))
            )
        response = classify_result(
            reply.get("result"), frame_bytes=session.channel.last_frame_bytes, max_result_bytes=self._max_result_bytes
        )
        if response.status is ActivationStatus.DEVELOPER_ERROR:
            await self._destroy(session)
            raise _Failed(response)
        return response

    async def _verify(self, session: SandboxSession) -> tuple[str, ...]:
        """Integrity after a run: code digest and entry unchanged since init, no stray processes.

        Precondition: ``_run`` stored the facts the runner sent with its reply (``session.facts``).
        """
        findings: list[str] = []
        try:
            strays = session.process.stray_processes()
        except OSError:
            strays = []
        reply = session.facts
        if not isinstance(reply, dict):
            findings.append(f"{CHECK_FAILED}: the run reply carried no integrity facts")
        else:
            if reply.get("ok") is not True:
                findings.append(f"{CHECK_FAILED}: {reply.get('error')}")
            else:
                if reply.get("digest") != session.digest:
                    findings.append(f"{CODE_MODIFIED}: code directory changed during the run")
                if reply.get("entry") != session.entry:
                    findings.append(f"{ENTRY_REPLACED}: the entry function was rebound or rewritten")
        if strays:
            findings.append(f"{STRAY_PROCESSES}: {' '.join(str(pid) for pid in strays)}")
        return tuple(findings)

    # -- ending a sandbox ---------------------------------------------------------------------------

    @staticmethod
    def _memory_exhausted(session: SandboxSession) -> bool:
        """The runner died because the memory cgroup killed it (read before the sandbox is destroyed)."""
        kills = session.process.oom_kills()
        return kills is not None and kills > 0

    async def _abort(self, session: SandboxSession, logs: ActivationLogs, notes: list[str]) -> None:
        """Timeout or death: keep what the pipes hold, then kill."""
        session.collect_remaining(logs)
        notes.append(LOG_DEVELOPER_ERROR)
        await self._destroy(session)

    async def _destroy(self, session: SandboxSession, *, code_modified: bool = False) -> None:
        # Accounting first and synchronously, so a cancelled kill cannot leak a pool slot.
        if not session.is_discarded:
            session.is_discarded = True
            self._pool.discard()
            self._admission.not_busy(session.key)
            self._admission.forget_key(session.key)
            self._admission.pump()
            if code_modified:
                self._code.discard(session.code)
        await session.destroy()

    def _must_recycle(self, session: SandboxSession, action: Action) -> bool:
        """Use-once actions, and sandboxes whose memory peak crossed the watermark, are not reused."""
        if action.annotation(USE_ONCE_ANNOTATION) is True:
            return True
        peak = session.process.memory_peak_bytes()
        limit = action.limits.memory * _MIB
        return peak is not None and peak >= limit * self._memory_watermark

    def _wipe_tmp(self, session: SandboxSession, action: Action) -> bool:
        """Empty /tmp between runs when the action asks; False (destroy instead) when that fails."""
        if action.annotation(WIPE_TMP_ANNOTATION) is not True:
            return True
        try:
            return session.process.wipe_tmp()
        except OSError:
            return False

    def _release(self, session: SandboxSession) -> None:
        """A busy sandbox's run is over and it may serve again: to a waiter of its key, else idle."""
        if self._is_closed or session.runs >= self._pool.max_runs:
            if not self._is_closed:
                self._pool.put(session.key, session, session.runs)  # counts the recycling
            self._spawn(self._destroy(session))
            return
        if self._admission.hand_over(session.key, session):
            return  # still busy: a run of the same key was waiting for it
        self._admission.not_busy(session.key)
        self._pool.put(session.key, session, session.runs)
        self._admission.pump()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _ensure_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = asyncio.ensure_future(self._reap_forever())

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self._reap_interval_s)
            await self.reap_idle()

    def _outcome_without_sandbox(self, arrived_ms: int, status: ActivationStatus, message: str) -> RunOutcome:
        now_ms = self._clock.now_ms()
        return RunOutcome(
            response=ActivationResponse.failure(status, message),
            logs=[],
            start_ms=arrived_ms,
            end_ms=now_ms,
            wait_time_ms=max(0, now_ms - arrived_ms),
        )
