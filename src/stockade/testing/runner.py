"""InProcessRunner: runs plain-text Python actions in the test process (no isolation at all).

For API-level tests that need action results quickly; everything that is about running code
safely is tested against the real invoker and sandbox instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from dataclasses import dataclass, field
from typing import Any

from stockade.domain import JSON, ActivationResponse, ActivationStatus, RunOutcome, RunRequest, SystemClock

__all__ = ["InProcessRunner", "RunOutcomeRecord"]


# The outcome record every runner reports (kept under its old name for tests).
RunOutcomeRecord = RunOutcome


@dataclass(slots=True)
class InProcessRunner:
    """Executes ``python:3`` code with ``exec``; records every call for assertions."""

    calls: list[tuple[str, dict[str, JSON], dict[str, str]]] = field(default_factory=list)
    requests: list[RunRequest] = field(default_factory=list)
    _warm: set[tuple[str, str]] = field(default_factory=set)

    async def run_action(self, request: RunRequest) -> RunOutcome:
        """Run ``main(params)`` of the action's code."""
        action, params = request.action, dict(request.parameters)
        init_env, activation_env = request.init_env, request.activation_env
        self.requests.append(request)
        clock = SystemClock()
        start = clock.now_ms()
        self.calls.append((action.path.fqn, dict(params), {**init_env, **activation_env}))
        key = (action.path.fqn, action.version)
        cold = key not in self._warm
        self._warm.add(key)
        scope: dict[str, Any] = {"__name__": "__action__"}
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(action.exec.code, "<action>", "exec"), scope)  # noqa: S102 - test double, trusted code
                result = scope[action.exec.main or "main"](dict(params))
                if asyncio.iscoroutine(result):
                    result = await result
        except Exception as exc:
            response = ActivationResponse.failure(ActivationStatus.DEVELOPER_ERROR, f"An error has occurred: {exc}")
        else:
            if isinstance(result, dict) and "error" in result:
                response = ActivationResponse.failure(ActivationStatus.APPLICATION_ERROR, result["error"])
            elif isinstance(result, dict | list):
                response = ActivationResponse(ActivationStatus.SUCCESS, result)
            else:
                response = ActivationResponse.failure(
                    ActivationStatus.DEVELOPER_ERROR,
                    "The action did not produce a valid JSON or JSON Array response",
                )
        end = clock.now_ms()
        logs = [f"2026-01-01T00:00:00.000000Z  stdout: {line}" for line in out.getvalue().splitlines()]
        return RunOutcome(response, logs, start, end, 0, 1 if cold else None, False)
