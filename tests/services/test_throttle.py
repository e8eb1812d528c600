"""Per-namespace throttles mean what they say: no 60-second window ever accepts more than the
limit, whatever the arrival pattern; an overload still gets (almost) the whole limit; every 429
says when to retry; a restart does not reset the window (issue 17)."""

from __future__ import annotations

import asyncio
import random

import pytest

from stockade.errors import ThrottledError
from stockade.services import Throttle
from stockade.services.lockout import LoginGuard
from stockade.store import open_sqlite_store
from stockade.testing import FrozenClock

LIMIT = 120


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000_000_000

    def __call__(self) -> int:
        return self.ms


def drive(arrivals_ms: list[int], limit: int = LIMIT) -> list[int]:
    """Feed arrival times (ms offsets) to a throttle; the accepted ones."""
    clock = Clock()
    start = clock.ms
    throttle = Throttle(clock, limit, 10**9, limit)
    accepted: list[int] = []
    refusals: list[int] = []
    for offset in sorted(arrivals_ms):
        clock.ms = start + offset
        try:
            throttle.check_invoke("ns")
        except ThrottledError as exc:
            refusals.append(exc.retry_after_s)
            continue
        accepted.append(offset)
    assert all(wait >= 1 for wait in refusals)
    return accepted


def max_in_any_window(accepted: list[int], window_ms: int = 60_000) -> int:
    best, lo = 0, 0
    for hi, t in enumerate(accepted):
        while accepted[lo] <= t - window_ms:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def steady(rate_per_min: float, minutes: int) -> list[int]:
    gap = 60_000 / rate_per_min
    return [int(i * gap) for i in range(int(rate_per_min * minutes))]


def edge_bursts(minutes: int) -> list[int]:
    """The whole limit just before each minute boundary, and again just after it."""
    out = []
    for m in range(1, minutes + 1):
        out += [m * 60_000 - 50 + i % 50 for i in range(LIMIT)]
        out += [m * 60_000 + i % 50 for i in range(LIMIT)]
    return out


def poisson(rate_per_min: float, minutes: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    t, out = 0.0, []
    while t < minutes * 60_000:
        t += rng.expovariate(rate_per_min / 60_000)
        out.append(int(t))
    return out


def bursty(minutes: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    out = []
    for _ in range(minutes * 6):
        at = rng.randrange(minutes * 60_000)
        out += [at + rng.randrange(300) for _ in range(rng.randrange(1, LIMIT))]
    return out


@pytest.mark.parametrize(
    ("name", "arrivals"),
    [
        ("steady 2x", steady(2 * LIMIT, 5)),
        ("steady 10x", steady(10 * LIMIT, 3)),
        ("edge bursts", edge_bursts(4)),
        ("poisson 2x", poisson(2 * LIMIT, 5, 1)),
        ("bursty", bursty(5, 2)),
    ],
)
def test_no_sixty_second_window_accepts_more_than_the_limit(name, arrivals):
    accepted = drive(arrivals)
    assert max_in_any_window(accepted) <= LIMIT, name


@pytest.mark.parametrize("factor", [2, 5])
def test_an_overloaded_namespace_still_gets_within_five_percent_of_its_limit(factor):
    accepted = drive(steady(factor * LIMIT, 6))
    # Every full minute after the first: accepted count within 5% of the limit.
    for minute in range(1, 6):
        got = sum(1 for t in accepted if minute * 60_000 <= t < (minute + 1) * 60_000)
        assert 0.95 * LIMIT <= got <= LIMIT, (minute, got)


def test_retry_after_is_when_a_retry_succeeds():
    clock = Clock()
    throttle = Throttle(clock, 3, 100, 3)
    for _ in range(3):
        throttle.check_invoke("ns")
        clock.ms += 10_000
    with pytest.raises(ThrottledError) as refused:
        throttle.check_invoke("ns")
    wait_s = refused.value.retry_after_s
    clock.ms += (wait_s - 1) * 1000
    with pytest.raises(ThrottledError):
        throttle.check_invoke("ns")
    clock.ms += 1000
    throttle.check_invoke("ns")


def test_the_window_survives_a_restart(tmp_path):
    async def scenario():
        store = open_sqlite_store(tmp_path / "db.sqlite")
        await store.open()
        clock = Clock()
        first = Throttle(clock, 5, 100, 5)
        for _ in range(5):
            first.check_invoke("ns")
        await store.commit_journal([], [], first.drain_counts())
        clock.ms += 30_000
        second = Throttle(clock, 5, 100, 5)  # a new process
        await second.restore(store)
        with pytest.raises(ThrottledError):
            second.check_invoke("ns")
        second.check_invoke("other")  # other namespaces are untouched
        clock.ms += 31_000
        second.check_invoke("ns")  # the old window has passed
        await store.close()

    asyncio.run(scenario())


def test_every_rest_429_carries_retry_after(api_factory, make_settings):
    api = api_factory(make_settings(invocations_per_minute=2, concurrent_invocations=100))
    code = "def main(args):\n    return {}\n"
    assert (
        api.put("/api/v1/namespaces/_/actions/a", json={"exec": {"kind": "python:3", "code": code}}).status_code == 200
    )
    statuses = [api.post("/api/v1/namespaces/_/actions/a").status_code for _ in range(3)]
    assert statuses == [202, 202, 429]
    r = api.post("/api/v1/namespaces/_/actions/a?blocking=true")
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 61
    assert r.json()["error"].startswith("Too many requests in the last minute")


def test_a_locked_out_source_gets_retry_after(tmp_path):
    async def scenario():
        clock = FrozenClock()
        store = open_sqlite_store(tmp_path / "db.sqlite")
        await store.open()
        try:
            guard = LoginGuard(store, clock, refresh_s=0, pair_lock_after=3, lock_s=300)
            for _ in range(3):
                await guard.failed("someone", "10.0.0.1")
            with pytest.raises(ThrottledError) as refused:
                await guard.check("someone", "10.0.0.1")
            assert refused.value.retry_after_s == 300
        finally:
            await store.close()

    asyncio.run(scenario())
