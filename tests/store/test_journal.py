"""The durability journal over every engine: pending activations, first terminal record wins,
throttle windows, the audit outbox, and audit entries committed inside a change (issue 17)."""

from __future__ import annotations

import pytest

from stockade.domain import Activation, ActivationResponse, ActivationStatus, KeyValue
from stockade.errors import ConflictError
from stockade.store import AUDIT_INTENT, AuditIntent, AuditRecord, PendingActivation, Put, RateCount


def record(n: int, result: str = "first") -> Activation:
    return Activation(
        activation_id=f"{n:032x}",
        namespace="ns1",
        subject="alice",
        name="hello",
        version="0.0.1",
        start=1_000,
        end=1_005,
        response=ActivationResponse(ActivationStatus.SUCCESS, {"r": result}),
        annotations=(KeyValue("tags", ["t1"]),),
        entity_path="ns1/hello",
    )


def pending(n: int, *, blocking: bool = False) -> PendingActivation:
    return PendingActivation(f"{n:032x}", "ns1", 1_000 + n, blocking, 1, {"params": {"sealed": "box"}})


async def test_an_accepted_activation_stays_pending_until_its_terminal_record_commits(store):
    await store.commit_journal([pending(1), pending(2, blocking=True)], [])
    assert [(p.activation_id, p.blocking) for p in await store.list_pending_activations()] == [
        (f"{1:032x}", False),
        (f"{2:032x}", True),
    ]
    await store.commit_journal([], [record(1)])
    left = await store.list_pending_activations()
    assert [p.activation_id for p in left] == [f"{2:032x}"]
    assert (await store.get_activation("ns1", f"{1:032x}")).response.result == {"r": "first"}


async def test_the_first_terminal_record_wins(store):
    await store.commit_journal([pending(3)], [record(3, "first")])
    await store.commit_journal([], [record(3, "second")])  # a re-run's late record: ignored
    assert (await store.get_activation("ns1", f"{3:032x}")).response.result == {"r": "first"}
    assert await store.list_pending_activations() == []


async def test_attempts_are_counted_before_a_rerun(store):
    await store.commit_journal([pending(4)], [])
    await store.set_pending_attempts(f"{4:032x}", 2)
    assert (await store.list_pending_activations())[0].attempts == 2


async def test_throttle_windows_add_up_and_are_pruned(store):
    await store.commit_journal([], [], [RateCount("ns1", "invoke", 100, 3), RateCount("ns1", "invoke", 101, 1)])
    await store.commit_journal([], [], [RateCount("ns1", "invoke", 100, 2)])
    got = sorted((r.second, r.accepted) for r in await store.load_rate_windows(100))
    assert got == [(100, 5), (101, 1)]
    await store.commit_journal([], [], [], prune_rates_before=101)
    assert [(r.second, r.accepted) for r in await store.load_rate_windows(0)] == [(101, 1)]


async def test_an_audit_intent_commits_with_the_first_change_only(store):
    calls = []

    def make():
        calls.append(1)
        return "ns1", 5, {"action": "PUT actions", "outcome": "200"}, "mac"

    intent = AuditIntent(make)
    token = AUDIT_INTENT.set(intent)
    try:
        await store.put_code("d" * 64, b"code")  # not a change table: no entry
        assert await store.list_audit_outbox() == []
        await store.apply([Put("ns1", "a", "actions", {"x": 1}, 1)])
        await store.apply([Put("ns1", "b", "actions", {"x": 1}, 1)])  # same request: still one entry
    finally:
        AUDIT_INTENT.reset(token)
    outbox = await store.list_audit_outbox()
    assert [(o.chain, o.entry["action"]) for o in outbox] == [("ns1", "PUT actions")]
    assert intent.committed
    assert len(calls) == 1


async def test_a_rolled_back_change_rolls_back_its_audit_entry(store):
    await store.apply([Put("ns1", "a", "actions", {"x": 1}, 1)])
    intent = AuditIntent(lambda: ("ns1", 5, {"action": "PUT actions"}, "mac"))
    token = AUDIT_INTENT.set(intent)
    try:
        with pytest.raises(ConflictError):
            await store.apply([Put("ns1", "a", "actions", {"x": 2}, 2)])  # lost the race: no change
    finally:
        AUDIT_INTENT.reset(token)
    assert await store.list_audit_outbox() == []
    assert not intent.committed


async def test_chaining_the_outbox_moves_each_entry_once(store):
    intent = AuditIntent(lambda: ("ns1", 5, {"action": "PUT actions"}, "mac"))
    token = AUDIT_INTENT.set(intent)
    try:
        await store.apply([Put("ns1", "a", "actions", {"x": 1}, 1)])
    finally:
        AUDIT_INTENT.reset(token)
    (row,) = await store.list_audit_outbox()
    chained = AuditRecord("ns1", 1, row.at, row.entry, "m1")
    await store.chain_audit_outbox([chained], [row.id])
    with pytest.raises(ConflictError):  # a second writer chaining the same row loses
        await store.chain_audit_outbox([AuditRecord("ns1", 2, row.at, row.entry, "m2")], [row.id])
    assert [r.seq for r in await store.list_audit("ns1")] == [1]
    assert await store.list_audit_outbox() == []
