"""Admission (bounded starts, warm hand-over) as pure bookkeeping: random interleavings of many
runs of a few keys never lose a grant, never exceed the start bound or the pool's cap, and leave
no busy count or waiter behind."""

from __future__ import annotations

import asyncio
import random

import pytest

from stockade.domain import SystemClock
from stockade.invoker.admission import Admission, Grant
from stockade.invoker.pool import PoolKey, WarmPool


class Box:
    def __init__(self, key: PoolKey) -> None:
        self.key = key
        self.runs = 0


async def simulate(
    seed: int,
    *,
    runs: int,
    keys: int,
    max_sandboxes: int,
    max_starts: int,
    namespaces: int = 1,
    failure_rate: float = 0.05,
) -> dict[str, int]:
    """Random interleavings of ``runs`` runs; with several ``namespaces`` the first one floods a
    single action while the others spread over ``keys`` actions. ``failure_rate``: the share of
    failed starts and of sandboxes destroyed after their run."""
    rng = random.Random(seed)
    pool: WarmPool[Box] = WarmPool(clock=SystemClock(), max_sandboxes=max_sandboxes, idle_ttl_ms=60_000, max_runs=7)
    admission: Admission[Box] = Admission(pool, max_starts=max_starts, warm_wait_s=0.002)
    most_starting = 0
    starts = 0

    def release(box: Box) -> None:
        if box.runs >= pool.max_runs:
            pool.put(box.key, box, box.runs)
            destroy(box)
            return
        if admission.hand_over(box.key, box):
            return
        admission.not_busy(box.key)
        pool.put(box.key, box, box.runs)
        admission.pump()

    def destroy(box: Box) -> None:
        pool.discard()
        admission.not_busy(box.key)
        admission.pump()

    async def one(n: int) -> None:
        nonlocal most_starting, starts
        namespace = f"ns{n % namespaces}"
        action = 0 if namespaces > 1 and n % namespaces == 0 else n % keys
        key = PoolKey(namespace, f"/{namespace}/a{action}", "0.0.1")
        await asyncio.sleep(rng.random() * 0.01)
        prefer = admission.prefers_warm(key, "python:3") or rng.random() < 0.3
        grant: Grant[Box] | None = admission.try_now(key, prefer_warm=prefer)
        if grant is None:
            waiter = admission.enqueue(key, prefer_warm=prefer)
            if rng.random() < 0.05:
                # Some runs give up while waiting: whatever they were granted goes back.
                task = asyncio.ensure_future(waiter.future)
                await asyncio.sleep(rng.random() * 0.003)
                task.cancel()
                granted = admission.abandon(waiter)
                if granted is not None:
                    if granted.session is not None:
                        release(granted.session)
                    else:
                        pool.discard()
                        admission.not_busy(key)
                        admission.start_done(key)
                return
            grant = await waiter.future
        box = grant.session
        if box is None:
            starts += 1
            most_starting = max(most_starting, admission.starting)
            await asyncio.sleep(rng.random() * 0.004)  # the start
            if rng.random() < failure_rate:
                pool.discard()
                admission.not_busy(key)
                admission.start_done(key)
                return  # a failed start
            box = Box(key)
            admission.start_done(key)
        assert box.key == key  # never another key's (or namespace's) sandbox
        await asyncio.sleep(rng.random() * 0.002)  # the run
        box.runs += 1
        admission.learn(key, "python:3", 0.001, 0.004)
        if rng.random() < failure_rate:
            destroy(box)
        else:
            release(box)

    await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(runs))), timeout=120)
    assert admission.waiting == 0
    assert not admission.busy
    assert admission.starting == 0
    assert pool.live == pool.idle <= max_sandboxes
    return {"most_starting": most_starting, "starts": starts}


@pytest.mark.parametrize("seed", range(8))
async def test_random_interleavings_lose_no_grant(seed: int) -> None:
    figures = await simulate(seed, runs=400, keys=1 + seed % 5, max_sandboxes=2 + seed % 4, max_starts=1 + seed % 3)
    assert figures["most_starting"] <= 1 + seed % 3
    assert figures["starts"] >= 1


@pytest.mark.parametrize("seed", range(8))
async def test_several_namespaces_on_a_small_pool_lose_no_grant(seed: int) -> None:
    """Random interleavings of 2-4 namespaces on a 1-4 sandbox pool (the fairness rule of the attack
    pass, tests/security/test_attack_admission.py): every run is served (a lost wake-up would hang
    here), nothing is left busy or waiting, no sandbox crosses keys."""
    await simulate(
        seed,
        runs=300,
        keys=3,
        namespaces=2 + seed % 3,
        max_sandboxes=1 + seed % 4,
        max_starts=1 + seed % 2,
        failure_rate=0.0,
    )


async def test_a_closed_admission_fails_its_waiters() -> None:
    pool: WarmPool[Box] = WarmPool(clock=SystemClock(), max_sandboxes=1, idle_ttl_ms=1000, max_runs=10)
    admission: Admission[Box] = Admission(pool, max_starts=1, warm_wait_s=0.0)
    key = PoolKey("ns", "/ns/a", "1")
    assert admission.try_now(key, prefer_warm=False) is not None  # takes the only slot
    waiter = admission.enqueue(key, prefer_warm=False)
    admission.close()
    with pytest.raises(RuntimeError, match="closed"):
        await waiter.future
    with pytest.raises(RuntimeError, match="closed"):
        admission.try_now(key, prefer_warm=False)


def test_max_starts_must_be_positive() -> None:
    pool: WarmPool[Box] = WarmPool(clock=SystemClock(), max_sandboxes=1, idle_ttl_ms=1000, max_runs=10)
    with pytest.raises(ValueError):
        Admission(pool, max_starts=0, warm_wait_s=0.0)
