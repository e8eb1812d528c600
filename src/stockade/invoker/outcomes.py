"""What an activation run produces: the request and outcome records and OpenWhisk's result rules.

Messages are OpenWhisk's exact strings (reference/openwhisk-compat.md §6), so clients that match
on them keep working.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, final

from stockade.domain import JSON, ActivationResponse, ActivationStatus
from stockade.domain.runs import RunOutcome, RunRequest
from stockade.invoker.pool import PoolStatistics

__all__ = [
    "CHECK_FAILED",
    "CODE_MODIFIED",
    "ENTRY_REPLACED",
    "STRAY_PROCESSES",
    "InvokerStatistics",
    "RunOutcome",
    "RunRequest",
    "classify_result",
    "developer_error",
]

INIT_TIMEOUT: Final = "The action exceeded its time limits of {ms} milliseconds during initialization."
RUN_TIMEOUT: Final = "The action exceeded its time limits of {ms} milliseconds."
INIT_EXITED: Final = "The action did not initialize and exited unexpectedly."
RUN_EXITED: Final = "The action did not produce a valid response and exited unexpectedly."
MEMORY_EXHAUSTED: Final = "The action exhausted its memory and was aborted."
INIT_FAILED: Final = "The action failed during initialization: {body}"
INVALID_RESPONSE: Final = "The action did not produce a valid JSON or JSON Array response: {body}"
TRUNCATED_RESPONSE: Final = (
    "The action produced a response that exceeded the allowed length: {size} > {limit} bytes. "
    "The truncated response was: {prefix}"
)
START_FAILED: Final = "Failed to start a sandbox for the action."
INTEGRITY_FAILED: Final = "The action's code failed its integrity check before the run."
# Finding prefixes in RunOutcome.findings.
CODE_MODIFIED: Final = "code_modified"
ENTRY_REPLACED: Final = "entry_replaced"
STRAY_PROCESSES: Final = "stray_processes"
CHECK_FAILED: Final = "integrity_check_failed"


@final
@dataclass(frozen=True, slots=True)
class InvokerStatistics:
    """Pool counters plus activations waiting for capacity."""

    pool: PoolStatistics
    waiting: int


def developer_error(message: str) -> ActivationResponse:
    """A developer-error response carrying ``message``."""
    return ActivationResponse.failure(ActivationStatus.DEVELOPER_ERROR, message)


def compact_json(value: Any) -> str:
    """Compact UTF-8 JSON text, as results are measured."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def classify_result(result: JSON, *, frame_bytes: int, max_result_bytes: int) -> ActivationResponse:
    """OpenWhisk's rules for a runner's ``ok`` result; ``frame_bytes`` bounds its encoded size."""
    if not isinstance(result, dict | list):
        return developer_error(INVALID_RESPONSE.format(body=compact_json(result)))
    # Fast path: the reply frame holds the result, so a small frame needs no re-encoding.
    if frame_bytes > max_result_bytes:
        encoded = compact_json(result).encode()
        if len(encoded) > max_result_bytes:
            prefix = encoded[:max_result_bytes].decode("utf-8", "ignore")
            message = TRUNCATED_RESPONSE.format(size=len(encoded), limit=max_result_bytes, prefix=prefix)
            return ActivationResponse.failure(ActivationStatus.APPLICATION_ERROR, message)
    if isinstance(result, dict) and "error" in result:
        return ActivationResponse.failure(ActivationStatus.APPLICATION_ERROR, result["error"])
    return ActivationResponse(ActivationStatus.SUCCESS, result)
