"""Attacks on admission (issue 16) as pure bookkeeping: one tenant against another for a full pool.

The live version of the starvation attack is in ``test_attack_warm_path.py``; here the same attack
is replayed step by step. Random interleavings of several namespaces, checking that the fairness
rule loses no grant and leaves nothing behind, are in ``tests/invoker/test_admission.py``.
"""

from __future__ import annotations

import asyncio

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
