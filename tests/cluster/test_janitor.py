"""The controller's journal janitor recovers only controllers it knows are gone (issue 15)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import structlog.testing

from stockade.roles import controller


class _Dispatcher:
    controller_id = "c-self"

    def __init__(self, answers):
        self.answers = list(answers)

    async def live_controllers(self):
        answer = self.answers.pop(0) if self.answers else frozenset({"c-self", "c-other"})
        if isinstance(answer, Exception):
            raise answer
        return answer


class _Invoke:
    def __init__(self):
        self.calls: list[frozenset[str]] = []

    async def recover(self, live_owners):
        self.calls.append(live_owners)
        return {"rerun": 0, "closed": 0}


def _run(monkeypatch, answers, rounds, logs=None):
    monkeypatch.setattr(controller, "JANITOR_PERIOD_S", 0.001)
    invoke = _Invoke()

    async def scenario():
        task = asyncio.create_task(controller._janitor(SimpleNamespace(invoke=invoke), _Dispatcher(answers)))
        while len(invoke.calls) < rounds:
            await asyncio.sleep(0.001)
        task.cancel()

    with structlog.testing.capture_logs() as captured:
        asyncio.run(asyncio.wait_for(scenario(), timeout=10))
    if logs is not None:
        logs.extend(captured)
    return invoke.calls


def test_an_unreadable_membership_recovers_nothing_that_round(monkeypatch):
    # Before: a failed read was taken as "no controller alive", and every other controller's
    # running activations were re-run or closed.
    logs: list[dict] = []
    calls = _run(monkeypatch, [TimeoutError(), TimeoutError(), frozenset({"c-self", "c-other"})], rounds=1, logs=logs)
    assert calls[0] == frozenset({"c-other"})  # the first round that ran; this controller's earlier life is recovered
    # An outage of NATS is an expected condition: a warning, not an unhandled-error entry.
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["controller.membership_unavailable"] * 2
    assert not [e for e in logs if e["log_level"] in {"error", "critical", "exception"}]


def test_the_first_round_recovers_this_controllers_earlier_life_and_later_rounds_keep_it(monkeypatch):
    calls = _run(monkeypatch, [frozenset({"c-self"}), frozenset()], rounds=2)
    assert calls[0] == frozenset()
    assert calls[1] == frozenset({"c-self"})
