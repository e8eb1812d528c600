"""Invoking actions: throttle, resolve, seal, merge parameters, run (or run a sequence), record.

Blocking invokes wait at most ``wait_ms`` (OpenWhisk's 60 s) and then answer 202 while the
activation carries on; every accepted invoke gets an activation record either way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, final

import structlog
from structlog.contextvars import bound_contextvars

from stockade.domain import (
    JSON,
    POLICY_ANNOTATION,
    Action,
    ActionPolicy,
    Activation,
    ActivationResponse,
    ActivationStatus,
    Clock,
    EntityPath,
    Identity,
    KeyValue,
    is_truthy,
    kv_merge,
    new_activation_id,
    parse_fqn,
    parse_policy,
)
from stockade.domain.runs import RunRequest
from stockade.errors import (
    BadRequestError,
    ConflictError,
    InternalError,
    NotFoundError,
    PlatformError,
    ServiceUnavailableError,
    StorageFullError,
    StoreError,
)
from stockade.observability.events import EventType, SecurityEvent, Severity
from stockade.observability.tags import TAGS_ANNOTATION, tags_of
from stockade.observability.tracing import Tracer, traced
from stockade.security import CryptoError
from stockade.security.authz import Permission
from stockade.security.tokens import ActionTokens, TokenClaims
from stockade.services.activations import ActivationRecorder
from stockade.services.catalog import Catalog, ResolvedAction
from stockade.services.journal import (
    GAVE_UP_MESSAGE,
    INTERRUPTED_BLOCKING_MESSAGE,
    MAX_ATTEMPTS,
    NOT_RERUN_MESSAGE,
    identity_from_json,
    interrupted_activation,
    journal_entry,
    request_context,
)
from stockade.services.monitoring import ActivationMonitor
from stockade.services.runner import ActionRunner
from stockade.services.schemas import SchemaCache
from stockade.services.secrets import SecretService
from stockade.services.throttle import Throttle
from stockade.services.vault import ParameterVault
from stockade.store import PendingActivation

__all__ = [
    "SEALED_MESSAGE",
    "ActionRunner",
    "InvokeRequest",
    "InvokeResult",
    "InvokeService",
]

RESPONSE_REFUSED = "responseRefused"
log = structlog.get_logger("stockade.invoke")

SEALED_MESSAGE = "Request defines parameters that are not allowed (e.g., reserved properties)."
# Arguments only the platform sets on web requests.
RESERVED_WEB_KEYS = frozenset({"__ow_method", "__ow_headers", "__ow_path", "__ow_user", "__ow_query", "__ow_body"})

# How request parameters are checked against bound ones:
#   "final": OpenWhisk's rule, bound parameters are sealed when the action is annotated final;
#   "web":   every bound parameter is sealed, and the reserved __ow_* keys cannot be supplied;
#   "none":  no check (raw web actions, sequence components).
SealMode = Literal["final", "web", "none"]


@final
@dataclass(frozen=True, slots=True)
class InvokeRequest:
    """One invoke as the API received it."""

    identity: Identity
    path: EntityPath
    params: Mapping[str, JSON]
    blocking: bool = False
    wait_ms: int = 60_000
    transaction_id: str = ""
    # Activation annotations added by the caller (web actions, triggers).
    cause: str | None = None
    # How the request's keys are checked against bound parameters (see SealMode).
    seal: SealMode = "final"
    # The keys the client itself supplied (web requests add __ow_* ones); None: all of params.
    supplied_keys: frozenset[str] | None = None
    # Web actions and the gateway: why the result cannot be sent as an HTTP response (None: it
    # can); a reason is recorded on the activation as the ``responseRefused`` annotation.
    response_check: Callable[[Activation], str | None] | None = None


@final
@dataclass(frozen=True, slots=True)
class InvokeResult:
    """The activation id, and the record when it finished within the wait."""

    activation_id: str
    activation: Activation | None


def env_value(value: JSON) -> str:
    """Stringify a parameter for the environment: null → "", scalars → text, else compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"))


@dataclass(slots=True)
class _Run:
    """What one activation produced, before it becomes a record."""

    response: ActivationResponse
    logs: list[str]
    start_ms: int
    end_ms: int
    annotations: list[KeyValue] = field(default_factory=list)
    duration_ms: int | None = None
    init_time_ms: int | None = None
    timed_out: bool = False


class InvokeService:
    """Use case: invoke an action."""

    def __init__(
        self,
        catalog: Catalog,
        runner: ActionRunner,
        recorder: ActivationRecorder,
        throttle: Throttle,
        clock: Clock,
        vault: ParameterVault,
        secrets: SecretService,
        *,
        tokens: ActionTokens | None = None,
        max_sequence_length: int = 50,
        monitor: ActivationMonitor | None = None,
        tracer: Tracer | None = None,
        owner: str = "",
    ) -> None:
        # Scale-out: this controller's id, written into each journal row it accepts, so that
        # recovery by another controller leaves the rows of live controllers alone.
        self.owner = owner
        # Rows this process is re-running now (scale-out janitor passes skip them).
        self._recovering: set[str] = set()
        self._tokens = tokens
        self._monitor = monitor
        self._tracer = tracer
        self._vault = vault
        self._secrets = secrets
        self._catalog = catalog
        self._runner = runner
        self._recorder = recorder
        self._throttle = throttle
        self._clock = clock
        self._max_sequence_length = max_sequence_length
        self._tasks: set[asyncio.Task[Activation]] = set()
        self._schemas = SchemaCache()

    async def invoke(self, request: InvokeRequest) -> InvokeResult:
        """Accept an invoke: 429/403/404/400 before anything runs, then run and record."""
        namespace = request.identity.namespace
        await self._throttle.admit_invoke(namespace)
        resolved = await self._catalog.resolve_action(request.identity, request.path, Permission.INVOKE)
        supplied = request.supplied_keys if request.supplied_keys is not None else frozenset(request.params)
        try:
            merged = self.merge_parameters(resolved, request.params, seal=request.seal, supplied=supplied)
        except BadRequestError:
            self._refused(EventType.SEALED_PARAMETER_REFUSED, request, resolved.action)
            raise
        params = await self._vault.reveal(merged)
        try:
            self._schemas.validate(resolved.action, {k: v for k, v in params.items() if k not in RESERVED_WEB_KEYS})
        except BadRequestError:
            self._refused(EventType.SCHEMA_REFUSED, request, resolved.action)
            raise
        activation_id = new_activation_id()
        self._throttle.started(namespace)
        if not request.blocking:
            try:
                await self._recorder.accept(await self._journal_entry(request, resolved, activation_id))
            except StoreError as exc:
                self._throttle.finished(namespace)
                raise _unrecorded(exc) from None
            except BaseException:
                self._throttle.finished(namespace)
                raise
        # A blocking invoke acknowledges nothing before its response, which waits for the terminal
        # record: its journal row is sealed and committed only if the wait ends first (the 202).
        return await self._start(request, resolved, params, activation_id, 1, journal_on_timeout=request.blocking)

    async def _start(
        self,
        request: InvokeRequest,
        resolved: ResolvedAction,
        params: dict[str, JSON],
        activation_id: str,
        attempt: int,
        *,
        journal_on_timeout: bool = False,
    ) -> InvokeResult:
        task = asyncio.create_task(self._activate(request, resolved, params, activation_id, None, None, attempt))
        self._tasks.add(task)
        task.add_done_callback(self._done(request.identity.namespace))
        if not request.blocking:
            return InvokeResult(activation_id, None)
        # asyncio.wait leaves the task running on timeout (the activation carries on and is recorded).
        done, _pending = await asyncio.wait((task,), timeout=request.wait_ms / 1000)
        if not done and journal_on_timeout:
            # Invariant: the 202 after the blocking wait is an acknowledgement too: the journal
            # row is committed first (StorageFullError → 507; the run carries on), unless the run
            # finished meanwhile (then its terminal record is the answer).
            try:
                entry = await self._journal_entry(request, resolved, activation_id)
                if not task.done():
                    await self._recorder.accept_nowait(entry)
            except StoreError as exc:
                raise _unrecorded(exc) from None
        if not task.done():
            return InvokeResult(activation_id, None)
        return InvokeResult(activation_id, task.result())

    async def _journal_entry(
        self, request: InvokeRequest, resolved: ResolvedAction, activation_id: str
    ) -> PendingActivation:
        entry = await journal_entry(self._vault, self._clock.now_ms(), request, resolved.action, activation_id)
        if self.owner:
            entry = replace(entry, doc={**entry.doc, "owner": self.owner})
        return entry

    async def recover(self, live_owners: Collection[str] | None = None) -> dict[str, int]:
        """Start-up: end every activation an earlier process accepted but did not record.

        Blocking ones are closed as internal errors (at most once); non-blocking ones are run
        again under their own id (at least once), up to ``MAX_ATTEMPTS`` runs in all.
        ``live_owners`` (scale-out): rows accepted by these other live controllers are theirs and
        left alone; this controller's own rows are from its earlier life only at start-up.
        """
        counts = {"rerun": 0, "closed": 0, "skipped": 0}
        if self.owner and live_owners is None:
            return counts  # scale-out: the controller's janitor recovers, knowing who is alive
        after: tuple[int, str] | None = None
        seen: set[str] = set()
        while True:
            batch = await self._recorder.pending_journal(500, after)
            if not batch:
                self._recovering &= seen
                return counts
            after = (batch[-1].accepted_ms, batch[-1].activation_id)
            for pending in batch:
                seen.add(pending.activation_id)
                owner = pending.doc.get("owner")
                if pending.activation_id in self._recovering or (
                    live_owners is not None and isinstance(owner, str) and owner in live_owners
                ):
                    counts["skipped"] += 1
                    continue
                if pending.blocking:
                    await self._close_interrupted(pending, INTERRUPTED_BLOCKING_MESSAGE)
                    counts["closed"] += 1
                elif pending.attempts >= MAX_ATTEMPTS:
                    await self._close_interrupted(pending, GAVE_UP_MESSAGE.format(n=pending.attempts))
                    counts["closed"] += 1
                else:
                    self._recovering.add(pending.activation_id)
                    await self._rerun(pending)
                    counts["rerun"] += 1

    async def _close_interrupted(self, pending: PendingActivation, message: str) -> None:
        log.warning("invoke.interrupted_closed", activation_id=pending.activation_id, attempts=pending.attempts)
        await self._recorder.finish(interrupted_activation(pending, message, self._clock.now_ms()))

    async def _open_request(self, pending: PendingActivation) -> InvokeRequest:
        """The journalled request, opened (CryptoError when the row was tampered with)."""
        context = request_context(pending.namespace, pending.activation_id)
        body = await self._vault.open_json(context, pending.doc["request"])
        if not isinstance(body, dict):
            raise InternalError()
        identity = identity_from_json(body.get("identity"))
        params = body.get("params")
        supplied = body.get("supplied")
        cause = body.get("cause")
        return InvokeRequest(
            identity=identity,
            path=parse_fqn(str(body["path"]), identity.namespace),
            params=params if isinstance(params, dict) else {},
            blocking=body.get("blocking") is True,
            transaction_id=str(body.get("transactionId") or ""),
            cause=cause if isinstance(cause, str) else None,
            seal=body.get("seal") or "final",
            supplied_keys=frozenset(str(k) for k in supplied) if isinstance(supplied, list) else None,
        )

    async def _rerun(self, pending: PendingActivation) -> None:
        attempt = pending.attempts + 1
        # Invariant: the attempt is counted before the run, so a crash loop ends at MAX_ATTEMPTS.
        await self._recorder.count_attempt(pending.activation_id, attempt)
        try:
            request = await self._open_request(pending)
            if request.blocking:
                # The row says non-blocking, its sealed request says blocking: at most once wins.
                await self._close_interrupted(pending, INTERRUPTED_BLOCKING_MESSAGE)
                return
            resolved = await self._catalog.resolve_action(request.identity, request.path, Permission.INVOKE)
            keys = request.supplied_keys if request.supplied_keys is not None else frozenset(request.params)
            merged = self.merge_parameters(resolved, request.params, seal=request.seal, supplied=keys)
            revealed = await self._vault.reveal(merged)
        except Exception as exc:
            reason = exc.message if isinstance(exc, PlatformError) else "its request could not be read back"
            if isinstance(exc, CryptoError):
                reason = "its journalled request failed its integrity check"
            log.warning("invoke.rerun_refused", activation_id=pending.activation_id, reason=reason)
            await self._close_interrupted(pending, NOT_RERUN_MESSAGE.format(reason=reason))
            return
        log.info("invoke.rerun", activation_id=pending.activation_id, attempt=attempt)
        self._throttle.started(request.identity.namespace)
        await self._start(request, resolved, revealed, pending.activation_id, attempt)

    def _refused(self, kind: EventType, request: InvokeRequest, action: Action) -> None:
        if self._monitor is None:
            return
        self._monitor.events.emit(
            SecurityEvent(
                type=kind,
                severity=Severity.MEDIUM,
                time_ms=self._clock.now_ms(),
                namespace=request.identity.namespace,
                action=action.path.relative,
                subject=request.identity.subject,
                source="invoke",
                details={"seal": request.seal, "tags": list(tags_of(action.annotation(TAGS_ANNOTATION)))},
            )
        )

    def _done(self, namespace: str) -> Any:
        def callback(task: asyncio.Task[Activation]) -> None:
            self._tasks.discard(task)
            self._throttle.finished(namespace)
            if not task.cancelled() and task.exception() is not None:
                log.error("invoke.failed", error=repr(task.exception()))

        return callback

    @staticmethod
    def merge_parameters(
        resolved: ResolvedAction,
        body: Mapping[str, JSON],
        *,
        seal: SealMode = "final",
        supplied: frozenset[str] | None = None,
    ) -> dict[str, JSON]:
        """package < binding < action < request; sealed parameters cannot be overridden."""
        defaults: dict[str, KeyValue] = {}
        if resolved.package is not None:
            defaults.update((kv.key, kv) for kv in resolved.package.parameters)
        if resolved.binding is not None:
            defaults.update((kv.key, kv) for kv in resolved.binding.parameters)
        defaults.update((kv.key, kv) for kv in resolved.action.parameters)
        keys = frozenset(body) if supplied is None else supplied
        if seal == "web" and RESERVED_WEB_KEYS.intersection(keys):
            raise BadRequestError(SEALED_MESSAGE)
        if seal == "web" or (seal == "final" and is_truthy_json_true(resolved.action.annotation("final"))):
            sealed = {k for k, kv in defaults.items() if kv.value is not None}
            if sealed.intersection(keys):
                raise BadRequestError(SEALED_MESSAGE)
        merged: dict[str, JSON] = {k: kv.value for k, kv in defaults.items() if not kv.init}
        merged.update(body)
        return merged

    @staticmethod
    def _policy(action: Action) -> ActionPolicy:
        """The action's grants, parsed once per run; a policy that does not parse grants nothing."""
        try:
            return parse_policy(action.annotation(POLICY_ANNOTATION), action.path.namespace)
        except PlatformError:
            return ActionPolicy()

    def _activation_env(
        self, action: Action, request: InvokeRequest, activation_id: str, deadline_ms: int, policy: ActionPolicy
    ) -> dict[str, str]:
        env = {
            "__OW_NAMESPACE": request.identity.namespace,
            "__OW_ACTION_NAME": action.path.fqn,
            "__OW_ACTION_VERSION": action.version,
            "__OW_ACTIVATION_ID": activation_id,
            "__OW_TRANSACTION_ID": request.transaction_id,
            "__OW_DEADLINE": str(deadline_ms),
        }
        provide = action.annotation("provide-api-key")
        if (provide is None or is_truthy(provide)) and self._tokens is not None:
            # Never the namespace key: a token scoped to the action's own policy, expiring at
            # the activation deadline.
            env["__OW_API_KEY"] = self._tokens.issue(
                TokenClaims(
                    namespace=action.path.namespace,
                    subject=request.identity.subject,
                    action=action.path.fqn,
                    scope=policy.invoke,
                    expires_ms=deadline_ms,
                )
            )
        return env

    async def _activate(
        self,
        request: InvokeRequest,
        resolved: ResolvedAction,
        params: dict[str, JSON],
        activation_id: str,
        cause: str | None,
        caused_by: str | None,
        attempt: int = 1,
    ) -> Activation:
        """Run and record one activation with its ids bound to every log line (and a span when tracing)."""
        action = resolved.action
        with bound_contextvars(
            activation_id=activation_id, namespace=request.identity.namespace, action=action.path.relative
        ):
            if self._tracer is None:
                return await self._run_activation(request, resolved, params, activation_id, cause, caused_by, attempt)
            attributes = {"stockade.activation_id": activation_id, "stockade.action": action.path.fqn}
            with traced(self._tracer, "stockade.activation", attributes) as span:
                activation = await self._run_activation(
                    request, resolved, params, activation_id, cause, caused_by, attempt
                )
                if span is not None:
                    span.set_attribute("stockade.status", activation.response.status.value)
                return activation

    async def _run_activation(
        self,
        request: InvokeRequest,
        resolved: ResolvedAction,
        params: dict[str, JSON],
        activation_id: str,
        cause: str | None,
        caused_by: str | None,
        attempt: int = 1,
    ) -> Activation:
        action = resolved.action
        received_ms = self._clock.now_ms()
        try:
            if action.exec.is_sequence:
                run = await self._run_sequence(request, action, params, activation_id, received_ms)
            else:
                run = await self._run_atomic(request, action, params, activation_id, received_ms)
        except Exception:
            log.exception("invoke.internal_error", activation_id=activation_id)
            now = self._clock.now_ms()
            run = _Run(
                ActivationResponse.failure(ActivationStatus.INTERNAL_ERROR, "There was an internal server error."),
                [],
                received_ms,
                now,
            )
        base = (
            KeyValue("path", action.path.relative),
            KeyValue("kind", action.exec.kind),
            KeyValue("limits", action.limits.to_json()),
        )
        annotations = list(kv_merge(base, run.annotations))
        if resolved.binding_path:
            annotations.append(KeyValue("binding", resolved.binding_path))
        if caused_by:
            annotations.append(KeyValue("causedBy", caused_by))
        if attempt > 1:
            annotations.append(KeyValue("attempts", attempt))
        tags = action.annotation(TAGS_ANNOTATION)
        if tags is not None:
            annotations.append(KeyValue(TAGS_ANNOTATION, list(tags_of(tags))))
        extra: dict[str, JSON] = {}
        if run.duration_ms is not None:
            extra["duration"] = run.duration_ms
        activation = Activation(
            activation_id=activation_id,
            namespace=request.identity.namespace,
            subject=request.identity.subject,
            name=action.path.name,
            version=action.version,
            start=run.start_ms,
            end=max(run.end_ms, run.start_ms),
            response=run.response,
            logs=tuple(run.logs),
            annotations=tuple(annotations),
            cause=cause or request.cause,
            entity_path=action.path.relative,
            extra=extra,
        )
        if request.response_check is not None:
            reason = request.response_check(activation)
            if reason is not None:
                activation = replace(
                    activation, annotations=(*activation.annotations, KeyValue(RESPONSE_REFUSED, reason))
                )
        # Invariant: a blocking caller's response waits for this commit (durable before answered).
        await self._recorder.finish(activation)
        if self._monitor is not None:
            self._monitor.finished(activation, action, init_time_ms=run.init_time_ms, timed_out=run.timed_out)
        return activation

    async def _run_atomic(
        self, request: InvokeRequest, action: Action, params: dict[str, JSON], activation_id: str, received_ms: int
    ) -> _Run:
        init_env = {kv.key: env_value(await self._vault.open(kv.value)) for kv in action.parameters if kv.init}
        policy = self._policy(action)
        deadline_ms = received_ms + action.limits.timeout
        activation_env = self._activation_env(action, request, activation_id, deadline_ms, policy)
        try:
            activation_env.update(await self._secrets.for_activation(action, activation_id))
        except PlatformError as exc:
            now = self._clock.now_ms()
            return _Run(ActivationResponse.failure(ActivationStatus.DEVELOPER_ERROR, exc.message), [], received_ms, now)
        outcome = await self._runner.run_action(
            RunRequest(
                action=action,
                parameters=params,
                activation_id=activation_id,
                activation_env=activation_env,
                init_env=init_env,
                namespace=request.identity.namespace,
                deadline_ms=deadline_ms,
                policy=policy,
                at_most_once=request.blocking,
            )
        )
        annotations = [
            KeyValue("waitTime", outcome.wait_time_ms),
            KeyValue("timeout", outcome.timed_out),
        ]
        if outcome.init_time_ms is not None:
            annotations.append(KeyValue("initTime", outcome.init_time_ms))
        if outcome.findings:
            annotations.append(KeyValue("securityWarnings", list(outcome.findings)))
            log.warning("sandbox.tamper_detected", activation_id=activation_id, findings=list(outcome.findings))
            if self._monitor is not None:
                self._monitor.sandbox_findings(action, activation_id, tuple(outcome.findings), outcome.end_ms)
        return _Run(
            outcome.response,
            list(outcome.logs),
            outcome.start_ms,
            outcome.end_ms,
            annotations,
            init_time_ms=outcome.init_time_ms,
            timed_out=outcome.timed_out,
        )

    async def _run_sequence(
        self, request: InvokeRequest, action: Action, params: dict[str, JSON], activation_id: str, received_ms: int
    ) -> _Run:
        """Run components in order; the first error ends the sequence with that component's response."""
        logs: list[str] = []
        duration_ms = 0
        max_memory = 0
        # `_actions` is the sequence's own system parameter, not input for its first component.
        value: dict[str, JSON] = {k: v for k, v in params.items() if k != "_actions" or k in request.params}
        response = ActivationResponse(ActivationStatus.SUCCESS, {})
        for fqn in action.exec.components:
            try:
                resolved = await self._catalog.resolve_action(request.identity, parse_fqn(fqn, action.path.namespace))
            except (NotFoundError, ConflictError):
                response = ActivationResponse.failure(
                    ActivationStatus.APPLICATION_ERROR, "Sequence component does not exist."
                )
                break
            except PlatformError:
                response = ActivationResponse.failure(ActivationStatus.INTERNAL_ERROR, "Sequence failed.")
                break
            component_params = await self._vault.reveal(self.merge_parameters(resolved, value, seal="none"))
            child_id = new_activation_id()
            child = await self._activate(request, resolved, component_params, child_id, activation_id, "sequence")
            logs.append(child_id)
            duration_ms += child.duration
            max_memory = max(max_memory, resolved.action.limits.memory)
            response = child.response
            if not response.success:
                break
            result = response.result
            value = result if isinstance(result, dict) else {}
        annotations = [
            KeyValue("topmost", True),
            KeyValue("waitTime", 0),
            KeyValue("limits", {**action.limits.to_json(), "memory": max_memory or action.limits.memory}),
        ]
        end_ms = self._clock.now_ms()
        return _Run(response, logs, received_ms, end_ms, annotations, duration_ms)

    async def drain(self) -> None:
        """Wait for activations in flight (shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def statistics(self) -> dict[str, int]:
        """Activations in flight in this process."""
        return {"in_flight": len(self._tasks)}


def _unrecorded(exc: StoreError) -> PlatformError:
    """507 for full storage; otherwise 503: the activation could not be journalled."""
    if isinstance(exc, StorageFullError):
        return exc
    return ServiceUnavailableError("The activation could not be recorded; retry later.")


def is_truthy_json_true(value: JSON) -> bool:
    """Boolean features need a JSON ``true`` (the string "true" is ignored)."""
    return value is True
