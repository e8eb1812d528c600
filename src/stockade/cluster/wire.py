"""What crosses JetStream between a controller and an invoker (docs/design/scale-out.md §3).

A run message names the action by path, version and ``updated`` (the invoker loads and verifies it
from the store, never from the message) and carries the parameters, init values and environment
(secrets and the action token among them) as ONE sealed envelope, bound to the activation id: no
plaintext parameter, secret or token is ever stored in the stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, final

from stockade.domain import JSON, ActionPolicy, ActivationResponse, ActivationStatus, RunOutcome

__all__ = [
    "ANY_SUBJECT",
    "CONTROLLERS_BUCKET",
    "INVOKERS_BUCKET",
    "INVOKER_LOST",
    "INVOKE_PREFIX",
    "RESULT_PREFIX",
    "RUN_STREAM",
    "RunMessage",
    "envelope_context",
    "internal_error",
    "invoke_subject",
    "lost_outcome",
    "outcome_from_json",
    "outcome_to_json",
]

RUN_STREAM: Final = "STOCKADE_INVOKE"
INVOKE_PREFIX: Final = "stockade.invoke"
ANY_SUBJECT: Final = "stockade.invoke.any"
RESULT_PREFIX: Final = "stockade.result"
INVOKERS_BUCKET: Final = "stockade-invokers"
CONTROLLERS_BUCKET: Final = "stockade-controllers"
# The record a run lost with its invoker leaves (a whisk internal error, never silence).
INVOKER_LOST: Final = "The invoker running the activation was lost; the activation did not complete."


def invoke_subject(invoker_id: str) -> str:
    """The subject only that invoker's consumer reads."""
    return f"{INVOKE_PREFIX}.{invoker_id}"


def envelope_context(namespace: str, activation_id: str) -> tuple[str, str, str, str]:
    """Where a run envelope is bound: it opens for this activation only."""
    return (namespace, "dispatch", activation_id, "run")


@final
@dataclass(frozen=True, slots=True)
class RunMessage:
    """One run as it travels: references in clear, values sealed."""

    activation_id: str
    namespace: str  # the invoking namespace (pool key, envelope key)
    action_namespace: str
    action_name: str  # package/action
    version: str
    updated: int
    deadline_ms: int | None
    policy: ActionPolicy
    at_most_once: bool
    sealed: dict[str, str]  # {"parameters", "activation_env", "init_env"} under the namespace's data key

    def to_bytes(self) -> bytes:
        """The message body."""
        body = {
            "id": self.activation_id,
            "ns": self.namespace,
            "action": [self.action_namespace, self.action_name],
            "version": self.version,
            "updated": self.updated,
            "deadline": self.deadline_ms,
            "policy": {"invoke": list(self.policy.invoke), "egress": list(self.policy.egress)},
            "policySecrets": list(self.policy.secrets),
            "atMostOnce": self.at_most_once,
            "sealed": self.sealed,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> RunMessage:
        """Decode; ValueError when malformed."""
        try:
            body: dict[str, Any] = json.loads(data)
            namespace, name = body["action"]
            policy = body["policy"]
            deadline = body["deadline"]
            return cls(
                activation_id=str(body["id"]),
                namespace=str(body["ns"]),
                action_namespace=str(namespace),
                action_name=str(name),
                version=str(body["version"]),
                updated=int(body["updated"]),
                deadline_ms=None if deadline is None else int(deadline),
                policy=ActionPolicy(
                    invoke=tuple(str(p) for p in policy["invoke"]),
                    egress=tuple(str(p) for p in policy["egress"]),
                    secrets=tuple(str(p) for p in body.get("policySecrets", [])),
                ),
                at_most_once=body["atMostOnce"] is True,
                sealed={str(k): str(v) for k, v in dict(body["sealed"]).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed run message: {exc}") from None


def outcome_to_json(outcome: RunOutcome) -> dict[str, JSON]:
    """An outcome for the reply subject."""
    return {
        "status": outcome.response.status.value,
        "result": outcome.response.result,
        "logs": list(outcome.logs),
        "start": outcome.start_ms,
        "end": outcome.end_ms,
        "wait": outcome.wait_time_ms,
        "init": outcome.init_time_ms,
        "timedOut": outcome.timed_out,
        "findings": list(outcome.findings),
    }


def outcome_from_json(body: Any) -> RunOutcome:
    """Decode a reply; ValueError when malformed."""
    try:
        init = body["init"]
        return RunOutcome(
            response=ActivationResponse(ActivationStatus(body["status"]), body["result"]),
            logs=[str(line) for line in body["logs"]],
            start_ms=int(body["start"]),
            end_ms=int(body["end"]),
            wait_time_ms=int(body["wait"]),
            init_time_ms=None if init is None else int(init),
            timed_out=body["timedOut"] is True,
            findings=tuple(str(f) for f in body["findings"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed outcome: {exc}") from None


def lost_outcome(now_ms: int) -> RunOutcome:
    """What a run lost with its invoker reports: a whisk internal error."""
    return internal_error(INVOKER_LOST, now_ms)


def internal_error(message: str, now_ms: int) -> RunOutcome:
    """A run that ended (or never started) as a whisk internal error with ``message``."""
    return RunOutcome(
        response=ActivationResponse.failure(ActivationStatus.INTERNAL_ERROR, message),
        logs=[],
        start_ms=now_ms,
        end_ms=now_ms,
        wait_time_ms=0,
    )
