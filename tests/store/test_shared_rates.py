"""Shared per-minute limits (issue 15): acceptances taken in the store hold across processes."""

from __future__ import annotations

import asyncio

from stockade.store import RateCount


async def test_two_stores_over_one_database_never_accept_more_than_the_limit(make_store):
    first, second = await make_store(), await make_store()
    limit = 25
    # Both "controllers" race for the same namespace window, twice the limit in total.
    results = await asyncio.gather(
        *[(first if i % 2 else second).take_rate("ns1", "invoke", 1_000 + i % 3, limit) for i in range(2 * limit)]
    )
    assert sum(results) == limit
    windows = await first.load_rate_windows(0)
    assert sum(c.accepted for c in windows if c.namespace == "ns1" and c.kind == "invoke") == limit


async def test_the_window_slides_and_other_namespaces_and_kinds_are_apart(store):
    await store.commit_journal([], [], rates=[RateCount("ns1", "invoke", 100, 5)])
    assert not await store.take_rate("ns1", "invoke", 160, 5)  # 100 is inside 100..160
    assert await store.take_rate("ns1", "invoke", 161, 5)  # 100 has left the window
    assert await store.take_rate("ns2", "invoke", 160, 5)
    assert await store.take_rate("ns1", "fire", 160, 5)


async def test_a_signature_nonce_is_accepted_once_across_processes(make_store):
    first, second = await make_store(), await make_store()
    assert await first.claim_nonce("n-1", 1_000_000, 600_000)
    assert not await second.claim_nonce("n-1", 1_000_001, 600_000)  # a replay to another controller
    assert await second.claim_nonce("n-2", 1_000_001, 600_000)
    # Past the window the nonce is forgotten (the timestamp check refuses such requests anyway).
    assert await first.claim_nonce("n-1", 1_700_000, 600_000)
