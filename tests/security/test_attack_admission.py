"""Attacks on admission (issue 16) as pure bookkeeping: one tenant against another for a full pool.

The live version of the starvation attack is in ``test_attack_warm_path.py``; here the same attack
is replayed step by step, and random interleavings of several namespaces check that the fairness
rule loses no grant and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from stockade.domain import SystemClock
from stockade.invoker.admission import Admission, Grant
from stockade.invoker.pool import PoolKey, WarmPool

pytestmark = pytest.mark.asyncio


class Box:
    def __init__(self, key: PoolKey) -> None:
        self.key = key
        self.runs = 0


def _release(pool: WarmPool[Box], admission: Admission[Box], box: Box) -> None:
    # What Invoker._release does.
    if admission.hand_over(box.key, box):
        return
    admission.not_busy(box.key)
    pool.put(box.key, box, box.runs)
    admission.pump()


async def test_a_backlog_of_one_action_does_not_keep_a_full_pool_from_another_namespace() -> None:
    """Mallory's two sandboxes fill the pool and four more of her runs wait; the guest's run waits too.
    The first sandbox Mallory releases goes to the guest (evicted for its start), not to her backlog."""
    pool: WarmPool[Box] = WarmPool(clock=SystemClock(), max_sandboxes=2, idle_ttl_ms=60_000, max_runs=100)
    admission: Admission[Box] = Admission(pool, max_starts=2, warm_wait_s=0.0)
    slow = PoolKey("mallory", "/mallory/slow", "0.0.1")
    quick = PoolKey("guest", "/guest/quick", "0.0.1")
    boxes = []
    for _ in range(2):
        grant = admission.try_now(slow, prefer_warm=False)
        assert grant is not None
        assert grant.session is None
        boxes.append(Box(slow))
        admission.start_done(slow)
    backlog = [admission.enqueue(slow, prefer_warm=False) for _ in range(4)]
    guest = admission.enqueue(quick, prefer_warm=False)
    await asyncio.sleep(0)
    _release(pool, admission, boxes[0])
    await asyncio.sleep(0)
    assert guest.future.done(), "the guest's run is still behind Mallory's whole backlog"
    granted: Grant[Box] = guest.future.result()
    assert granted.session is None
    assert granted.evicted == (boxes[0],)  # Mallory's released sandbox made room for the guest's start
    assert not any(waiter.future.done() for waiter in backlog)
    # Mallory's backlog still runs, one at a time beside the guest's sandbox.
    _release(pool, admission, boxes[1])
    await asyncio.sleep(0)
    assert backlog[0].future.done()


async def _simulate(seed: int, *, runs: int, namespaces: int, max_sandboxes: int, max_starts: int) -> None:
    rng = random.Random(seed)
    pool: WarmPool[Box] = WarmPool(clock=SystemClock(), max_sandboxes=max_sandboxes, idle_ttl_ms=60_000, max_runs=7)
    admission: Admission[Box] = Admission(pool, max_starts=max_starts, warm_wait_s=0.002)

    def destroy(box: Box) -> None:
        pool.discard()
        admission.not_busy(box.key)
        admission.pump()

    def release(box: Box) -> None:
        if box.runs >= pool.max_runs:
            pool.put(box.key, box, box.runs)
            destroy(box)
            return
        _release(pool, admission, box)

    async def one(n: int) -> None:
        namespace = f"ns{n % namespaces}"
        # One namespace floods one action; the others spread over a few.
        key = PoolKey(namespace, f"/{namespace}/a{0 if n % namespaces == 0 else n % 3}", "0.0.1")
        await asyncio.sleep(rng.random() * 0.01)
        prefer = admission.prefers_warm(key, "python:3") or rng.random() < 0.3
        grant: Grant[Box] | None = admission.try_now(key, prefer_warm=prefer)
        if grant is None:
            waiter = admission.enqueue(key, prefer_warm=prefer)
            if rng.random() < 0.05:
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
            await asyncio.sleep(rng.random() * 0.004)
            box = Box(key)
            admission.start_done(key)
        assert box.key == key  # never another key's (or namespace's) sandbox
        await asyncio.sleep(rng.random() * 0.002)
        box.runs += 1
        admission.learn(key, "python:3", 0.001, 0.004)
        release(box)

    await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(runs))), timeout=120)
    assert admission.waiting == 0
    assert not admission.busy
    assert admission.starting == 0
    assert pool.live == pool.idle <= max_sandboxes


@pytest.mark.parametrize("seed", range(8))
async def test_several_namespaces_on_a_small_pool_lose_no_grant(seed: int) -> None:
    """Random interleavings of 2-4 namespaces on a 1-4 sandbox pool: every run is served (a lost
    wake-up would hang here), nothing is left busy or waiting, no sandbox crosses keys."""
    await _simulate(seed, runs=300, namespaces=2 + seed % 3, max_sandboxes=1 + seed % 4, max_starts=1 + seed % 2)
