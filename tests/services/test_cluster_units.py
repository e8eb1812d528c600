"""Pure parts of the scale-out (issue 15): placement ring and the wire format."""

from __future__ import annotations

import pytest

from stockade.cluster.ring import HashRing
from stockade.cluster.wire import RunMessage, outcome_from_json, outcome_to_json
from stockade.domain import ActionPolicy, ActivationResponse, ActivationStatus, RunOutcome

KEYS = [f"ns{i}/action{j}" for i in range(20) for j in range(50)]


def test_the_ring_moves_only_the_keys_of_an_invoker_that_left():
    before = HashRing([f"i{n}" for n in range(8)])
    after = HashRing([f"i{n}" for n in range(8) if n != 3])
    moved = [k for k in KEYS if before.candidates(k, 1) != after.candidates(k, 1)]
    assert moved
    assert all(before.candidates(k, 1) == ["i3"] for k in moved)


def test_the_ring_spreads_keys_and_gives_distinct_successors():
    ring = HashRing([f"i{n}" for n in range(4)])
    homes = [ring.candidates(k, 1)[0] for k in KEYS]
    for member in ring.members:
        assert homes.count(member) > len(KEYS) / 8  # no member starves (64 virtual nodes each)
    three = ring.candidates("ns1/a", 3)
    assert len(set(three)) == 3
    assert HashRing([]).candidates("x") == []


def test_run_messages_round_trip_and_malformed_ones_are_refused():
    message = RunMessage(
        activation_id="a" * 32,
        namespace="guest",
        action_namespace="guest",
        action_name="pkg/act",
        version="0.0.2",
        updated=17,
        deadline_ms=1234,
        policy=ActionPolicy(invoke=("/guest/x",), egress=("example.com:443",), secrets=("db",)),
        at_most_once=True,
        sealed={"v": "1", "ct": "xx"},
    )
    assert RunMessage.from_bytes(message.to_bytes()) == message
    for bad in (b"", b"[]", b'{"id": 1}', b"\xff"):
        with pytest.raises(ValueError, match="malformed"):
            RunMessage.from_bytes(bad)


def test_outcomes_round_trip():
    outcome = RunOutcome(
        ActivationResponse(ActivationStatus.APPLICATION_ERROR, {"error": "no"}), ["l1"], 1, 5, 2, 3, True, ("f",)
    )
    assert outcome_from_json(outcome_to_json(outcome)) == outcome
    with pytest.raises(ValueError, match="malformed"):
        outcome_from_json({"status": "nope"})
