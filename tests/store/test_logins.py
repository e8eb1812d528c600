"""The login-failure half of the Store contract (both engines): atomic counting across stores
over one database, fixed windows, lockouts that survive a restart, pruning."""

from __future__ import annotations

import asyncio

INJECTION = "source:x'); DROP TABLE login_failures;--"


async def test_counts_in_a_window_then_start_over(store):
    assert await store.count_login_failure("source:a", 1_000, 60_000) == 1
    assert await store.count_login_failure("source:a", 2_000, 60_000) == 2
    assert await store.count_login_failure("source:b", 2_000, 60_000) == 1
    assert await store.count_login_failure("source:a", 61_000, 60_000) == 1  # the window is over
    assert await store.count_login_failure(INJECTION, 61_000, 60_000) == 1
    assert await store.count_login_failure("source:a", 62_000, 60_000) == 2


async def test_concurrent_failures_from_two_processes_all_count(make_store):
    first, second = await make_store(), await make_store()
    await asyncio.gather(*(s.count_login_failure("pair:u 1.2.3.4", 5_000, 60_000) for s in (first, second) * 10))
    assert await first.count_login_failure("pair:u 1.2.3.4", 5_000, 60_000) == 21


async def test_lockouts_survive_a_restart_and_are_pruned_when_over(make_store):
    store = await make_store()
    await store.count_login_failure("source:a", 1_000, 60_000)
    await store.count_login_failure("source:b", 1_000, 60_000)
    await store.lock_login("source:a", 301_000)
    await store.lock_login("source:a", 200_000)  # never shortens a lockout
    await store.close()
    restarted = await make_store()
    assert await restarted.login_locks(2_000) == {"source:a": 301_000}
    assert await restarted.login_locks(301_000) == {}
    assert await restarted.prune_login_failures(100_000) == 1  # b's window is over; a is still locked
    assert await restarted.prune_login_failures(400_000) == 1
