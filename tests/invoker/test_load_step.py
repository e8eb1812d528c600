"""Under a load step the invoker bounds concurrent sandbox starts and waits for a busy warm
sandbox of the same key when that is sooner than a cold start (issue 16).

On the starting commit every run without an idle sandbox started a new one at once: a burst of
N runs meant N concurrent starts competing with the API for the CPU.
"""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from stockade.config import InvokerSettings, Settings, SettingsError, load_settings
from stockade.domain import Action, ActivationStatus, EntityPath, Exec, KeyValue, Limits
from stockade.invoker import CodeStore, Invoker, RunRequest
from stockade.invoker.invoker import USE_ONCE_ANNOTATION
from stockade.sandbox import InsecureProcessBackend

QUICK = "def main(args):\n    return {'n': args.get('n')}\n"
SLOW = "import time\ndef main(args):\n    time.sleep(0.3)\n    return {'n': args.get('n')}\n"


class CountingBackend:
    """The real insecure-process backend, counting starts and the most in flight at once."""

    def __init__(self) -> None:
        self.inner = InsecureProcessBackend()
        self.starts = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.start_delay_s = 0.0

    async def start(self, spec):  # type: ignore[no-untyped-def]
        if self.start_delay_s:
            await asyncio.sleep(self.start_delay_s)
        self.starts += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self.inner.start(spec)
        finally:
            self.in_flight -= 1

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


def action(code: str, name: str = "a", *, namespace: str = "guest", use_once: bool = False) -> Action:
    return Action(
        EntityPath(namespace, name),
        Exec("python:3", textwrap.dedent(code)),
        version="0.0.1",
        limits=Limits(),
        annotations=(KeyValue(USE_ONCE_ANNOTATION, True),) if use_once else (),
    )


def request(act: Action, n: int) -> RunRequest:
    return RunRequest(act, {"n": n}, f"{n:032x}")


@pytest.fixture
async def make(tmp_path):
    made = []

    def build(**settings):  # type: ignore[no-untyped-def]
        backend = CountingBackend()
        invoker = Invoker(
            backend,  # type: ignore[arg-type]
            CodeStore(tmp_path / "code"),
            settings=InvokerSettings(sandbox_backend="insecure_process", **settings),
        )
        made.append((invoker, backend))
        return invoker, backend

    yield build
    for invoker, backend in made:
        await invoker.close()
        await backend.inner.close()
        assert backend.inner.live_count == 0


async def test_a_burst_of_cold_runs_starts_at_most_max_concurrent_starts_at_once(make):
    invoker, backend = make(max_concurrent_starts=2)
    # Slow runs: every run needs its own sandbox (nothing is handed over in time).
    act = action(SLOW)
    outcomes = await asyncio.gather(*(invoker.run(request(act, n)) for n in range(8)))
    assert [o.response.status for o in outcomes] == [ActivationStatus.SUCCESS] * 8
    assert [o.response.result for o in outcomes] == [{"n": n} for n in range(8)]
    assert backend.most_in_flight <= 2
    assert invoker.statistics().pool.busy == 0


async def test_a_run_waits_for_the_busy_warm_sandbox_instead_of_starting_one(make):
    invoker, backend = make()
    act = action(QUICK)
    await invoker.run(request(act, 0))  # cold: learns the cold-start cost
    await invoker.run(request(act, 1))  # warm: learns the run time
    assert backend.starts == 1
    outcomes = await asyncio.gather(invoker.run(request(act, 2)), invoker.run(request(act, 3)))
    assert [o.response.result for o in outcomes] == [{"n": 2}, {"n": 3}]
    # A warm run is far shorter than a cold start: the second run is handed the warm sandbox
    # (the starting commit started a second sandbox here).
    assert backend.starts == 1
    assert outcomes[0].sandbox_id == outcomes[1].sandbox_id
    assert outcomes[1].init_time_ms is None
    assert invoker.statistics().pool.busy == 0


async def test_a_burst_beyond_the_busy_sandboxes_grows_the_pool_within_the_start_bound(make):
    invoker, backend = make(max_concurrent_starts=2)
    act = action(QUICK)
    await invoker.run(request(act, 0))
    await invoker.run(request(act, 1))
    outcomes = await asyncio.gather(*(invoker.run(request(act, n)) for n in range(2, 12)))
    assert [o.response.result for o in outcomes] == [{"n": n} for n in range(2, 12)]
    assert backend.most_in_flight <= 2
    assert invoker.statistics().pool.busy == 0


async def test_a_warm_sandbox_is_never_handed_to_another_action(make):
    invoker, backend = make()
    a, b = action(QUICK, "a"), action(QUICK, "b")
    await invoker.run(request(a, 0))
    await invoker.run(request(a, 1))
    outcomes = await asyncio.gather(invoker.run(request(a, 2)), invoker.run(request(b, 3)))
    assert outcomes[0].sandbox_id != outcomes[1].sandbox_id
    assert outcomes[1].init_time_ms is not None  # b started its own sandbox
    assert backend.starts == 2


async def test_a_cancelled_warm_waiter_loses_no_sandbox_and_no_start_slot(make):
    invoker, _backend = make(max_concurrent_starts=1)
    act = action(SLOW)
    await invoker.run(request(act, 0))
    await invoker.run(request(act, 1))
    running = asyncio.ensure_future(invoker.run(request(act, 2)))
    await asyncio.sleep(0.05)
    waiters = [asyncio.ensure_future(invoker.run(request(act, n))) for n in (3, 4)]
    await asyncio.sleep(0.01)
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert (await running).response.result == {"n": 2}
    after = await invoker.run(request(act, 5))
    assert after.response.result == {"n": 5}
    stats = invoker.statistics().pool
    assert stats.busy == 0
    assert stats.idle == stats.live >= 1


def test_settings_refuse_zero_concurrent_starts():
    with pytest.raises(SettingsError):
        load_settings(env={"STOCKADE_INVOKER__MAX_CONCURRENT_STARTS": "0"})
    assert Settings().invoker.max_concurrent_starts >= 1


async def test_a_use_once_sandbox_is_never_handed_to_a_waiting_run(make):
    invoker, backend = make(max_concurrent_starts=1)
    act = action(QUICK, "once", use_once=True)
    outcomes = await asyncio.gather(*(invoker.run(request(act, n)) for n in range(4)))
    assert [o.response.result for o in outcomes] == [{"n": n} for n in range(4)]
    assert len({o.sandbox_id for o in outcomes}) == 4
    assert all(o.init_time_ms is not None for o in outcomes)
    assert backend.starts == 4


async def test_waiters_leave_no_trace_after_hand_overs(make):
    invoker, _backend = make()
    act = action(QUICK)
    await invoker.run(request(act, 0))
    await invoker.run(request(act, 1))
    for round_ in range(20):
        await asyncio.gather(invoker.run(request(act, 2 * round_)), invoker.run(request(act, 2 * round_ + 1)))
    # Handed-over waiters were left in the start queue by the first version of this change.
    assert invoker.statistics().waiting == 0
    assert not invoker._admission._queue
    assert invoker._admission._by_key == {}
    assert not invoker._admission.busy


async def test_a_warm_sandbox_is_never_handed_to_another_invoking_namespace(make):
    # Attacker checklist: tenant B invokes tenant A's shared action while A's sandbox is busy;
    # B must get its own sandbox, never A's (the pool key holds the invoking namespace).
    invoker, backend = make()
    act = action(QUICK)
    await invoker.run(request(act, 0))
    await invoker.run(request(act, 1))
    as_a = invoker.run(request(act, 2))
    as_b = invoker.run(RunRequest(act, {"n": 3}, "3" * 32, namespace="tenant-b"))
    outcome_a, outcome_b = await asyncio.gather(as_a, as_b)
    assert outcome_a.sandbox_id != outcome_b.sandbox_id
    assert outcome_b.init_time_ms is not None
    assert backend.starts == 2


class GatedCodeStore(CodeStore):
    """The real code store; materialising action ``slow`` waits until the test opens the gate."""

    def __init__(self, root, gate: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
        super().__init__(root)
        self.gate = gate
        self.slow_entered = asyncio.Event()

    async def materialize(self, exec_):  # type: ignore[no-untyped-def]
        if "slow" in exec_.code:
            self.slow_entered.set()
            await self.gate.wait()
        return await super().materialize(exec_)


async def test_materialising_one_tenants_code_does_not_hold_a_start_slot(tmp_path):
    # Attacker checklist (limits aimed at others): a tenant whose code takes long to materialise
    # (a large archive) must not hold the start slots every other tenant's cold start needs.
    gate = asyncio.Event()
    code_store = GatedCodeStore(tmp_path / "code", gate)
    backend = InsecureProcessBackend()
    invoker = Invoker(
        backend, code_store, settings=InvokerSettings(sandbox_backend="insecure_process", max_concurrent_starts=1)
    )
    try:
        slow = asyncio.ensure_future(invoker.run(request(action("# slow\n" + QUICK, "a"), 1)))
        await code_store.slow_entered.wait()
        other = action(QUICK, "b", namespace="tenant-b")
        # With materialisation inside the start slot (this change's first version) this run
        # queued behind the gate forever; the timeout only turns that hang into a failure.
        outcome = await asyncio.wait_for(invoker.run(request(other, 2)), timeout=30)
        assert outcome.response.result == {"n": 2}
        gate.set()
        assert (await slow).response.result == {"n": 1}
    finally:
        gate.set()
        await invoker.close()
        await backend.close()


@pytest.mark.parametrize("max_sandboxes", [3, 64])
async def test_a_burst_of_200_runs_of_one_action_is_all_served(make, max_sandboxes):
    # `make reliability`'s burst: 200 concurrent runs of one action, arriving before any sandbox
    # exists. The first version of this change lost wake-ups here (a run woken for a start slot
    # took an idle sandbox instead, and the runs still waiting for a slot were never woken again).
    invoker, backend = make(max_concurrent_starts=4, max_sandboxes=max_sandboxes)
    act = action(QUICK)
    runs = asyncio.gather(*(invoker.run(request(act, n)) for n in range(200)))
    # The timeout only turns a hang into a failure.
    outcomes = await asyncio.wait_for(runs, timeout=120)
    assert [o.response.result for o in outcomes] == [{"n": n} for n in range(200)]
    assert backend.most_in_flight <= 4
    assert backend.starts <= max_sandboxes
    stats = invoker.statistics()
    assert stats.waiting == 0
    assert stats.pool.busy == 0
    assert not invoker._admission.busy


async def test_runs_of_many_actions_at_a_full_pool_are_all_served(make):
    # Capacity and start slots together: 6 actions, 3 sandboxes, bursts of each at once; runs
    # must evict idle sandboxes of other actions and never wait forever.
    invoker, _backend = make(max_concurrent_starts=2, max_sandboxes=3)
    acts = [action(QUICK, f"a{i}") for i in range(6)]
    runs = asyncio.gather(*(invoker.run(request(acts[n % 6], n)) for n in range(120)))
    outcomes = await asyncio.wait_for(runs, timeout=120)
    assert [o.response.result for o in outcomes] == [{"n": n} for n in range(120)]
    stats = invoker.statistics()
    assert stats.waiting == 0
    assert stats.pool.busy == 0
    assert stats.pool.live <= 3


async def test_one_tenants_flood_of_cold_starts_does_not_starve_another_tenant(make):
    # Attacker checklist (limits aimed at others): tenant A floods cold starts (a use-once action,
    # every run a new sandbox); tenant B's one run arrives after all of them. With one arrival-
    # ordered line B would wait for all 30 of A's starts; one start slot is kept for others.
    invoker, backend = make(max_concurrent_starts=2)
    backend.start_delay_s = 0.05  # starts as slow as a loaded host's, so A's line is long
    flood = action(QUICK, "once", namespace="tenant-a", use_once=True)
    other = action(QUICK, "b", namespace="tenant-b")
    finished: list[str] = []

    async def run(act: Action, n: int, who: str) -> None:
        outcome = await invoker.run(RunRequest(act, {"n": n}, f"{n:032x}", namespace=act.path.namespace))
        assert outcome.response.result == {"n": n}
        finished.append(who)

    floods = [asyncio.ensure_future(run(flood, n, "a")) for n in range(30)]
    while invoker.statistics().waiting < 28:  # every one of A's runs is in line first
        await asyncio.sleep(0.001)
    await asyncio.wait_for(asyncio.gather(*floods, run(other, 99, "b")), timeout=120)
    assert finished.index("b") < 6, finished
