"""Sealing on the invoke path (the activation journal) must not turn a cache expiry into one
store read per waiting request (issue 17)."""

from __future__ import annotations

import asyncio

from stockade.security import load_keyring
from stockade.services import ParameterVault
from stockade.store import open_sqlite_store
from stockade.testing import FrozenClock


async def test_a_burst_after_the_active_key_expires_reads_the_store_once(tmp_path):
    store = open_sqlite_store(tmp_path / "db.sqlite")
    await store.open()
    clock = FrozenClock()
    vault = ParameterVault(store, load_keyring(tmp_path / "master.key"), clock, active_ttl_s=5)
    await vault.seal_json("ns", ("ns", "activations", "a", "request"), {"x": 1})
    reads = 0
    original = store.list_data_keys

    async def counting(*args, **kwargs):
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.001)
        return await original(*args, **kwargs)

    store.list_data_keys = counting
    clock.advance(6_000)
    await asyncio.gather(
        *(vault.seal_json("ns", ("ns", "activations", str(i), "request"), {"i": i}) for i in range(50))
    )
    assert reads == 1
    await store.close()
