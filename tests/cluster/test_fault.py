"""Fault injection on the local cluster (issue 15, "Must show").

Non-blocking and blocking invokes of a 2-second action, and entity writes, through two
controllers; mid-run one invoker and one controller are SIGKILLed (the controller is then started
again, as its supervisor would). Afterwards: every accepted activation id has exactly one terminal
record and no journal row is left; blocking callers were answered within the blocking wait plus a
bounded grace (or lost their connection with the killed controller); every acknowledged entity
write is there. The counts are scaled down for the suite; STOCKADE_TEST_FAULT_NONBLOCKING=500
STOCKADE_TEST_FAULT_BLOCKING=100 runs the full figure.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import httpx
import pytest

from stockade.cluster.wire import INVOKER_LOST

from .test_scale_out import ACT, A, put

NONBLOCKING = int(os.environ.get("STOCKADE_TEST_FAULT_NONBLOCKING", "60"))
BLOCKING = int(os.environ.get("STOCKADE_TEST_FAULT_BLOCKING", "20"))
WRITES = 40
BLOCKING_WAIT_S = 60
GRACE_S = 20
TWO_SECONDS = "import time\n\ndef main(a):\n    time.sleep(2)\n    return {'n': a.get('n')}\n"


@pytest.mark.timeout(1200)
def test_nothing_accepted_is_lost_when_an_invoker_and_a_controller_are_killed(start_cluster):
    cluster = start_cluster(
        "--invocations-per-minute", "100000", "--concurrent-invocations", "100000", "--invokers", "2"
    )
    with cluster.client(0) as c0:
        put(c0, "two", TWO_SECONDS, limits={"timeout": 10_000})
    time.sleep(2.5)
    accepted: list[str] = []
    blocking_answers: list[tuple[str, float, str | None]] = []  # (outcome, seconds, activation id)
    writes_acked: list[str] = []
    lock = threading.Lock()
    submitted = threading.Event()
    half = threading.Event()
    counter = [0]

    def nonblocking(i: int) -> None:
        with httpx.Client(base_url=cluster.urls[i % 2], auth=cluster.auth, timeout=30) as c:
            try:
                r = c.post(f"{A}/two", json={"n": i})
            except httpx.HTTPError:
                return  # not acknowledged: nothing promised
            if r.status_code == 202:
                with lock:
                    accepted.append(r.json()["activationId"])
        with lock:
            counter[0] += 1
            if counter[0] >= (NONBLOCKING + BLOCKING) // 2:
                half.set()

    def blocking(i: int) -> None:
        start = time.monotonic()
        with httpx.Client(base_url=cluster.urls[i % 2], auth=cluster.auth, timeout=BLOCKING_WAIT_S + GRACE_S) as c:
            try:
                r = c.post(f"{A}/two?blocking=true", json={"n": -i})
            except httpx.HTTPError as exc:
                with lock:
                    blocking_answers.append((f"connection:{type(exc).__name__}", time.monotonic() - start, None))
                return
        body = r.json()
        activation_id = body.get("activationId")
        outcome = str(r.status_code)
        if r.status_code == 500 and body.get("response", {}).get("result") == {"error": INVOKER_LOST}:
            outcome = "500:invoker-lost"  # at most once: its invoker died mid-run
        with lock:
            blocking_answers.append((outcome, time.monotonic() - start, activation_id))
            if activation_id:
                accepted.append(activation_id)
            counter[0] += 1
            if counter[0] >= (NONBLOCKING + BLOCKING) // 2:
                half.set()

    def writer() -> None:
        for k in range(WRITES):
            if submitted.is_set() and k > WRITES // 2:
                break
            url = cluster.urls[k % 2]
            try:
                with httpx.Client(base_url=url, auth=cluster.auth, timeout=30) as c:
                    body = {"exec": {"kind": "python:3", "code": "def main(a):\n    return {}\n"}}
                    r = c.put(f"{A}/w{k}", json=body)
            except httpx.HTTPError:
                continue
            if r.status_code == 200:
                with lock:
                    writes_acked.append(f"w{k}")
            time.sleep(0.05)

    def killer() -> None:
        half.wait(120)
        cluster.kill("i0")
        cluster.kill("c1")
        time.sleep(3)
        cluster.restart_controller("c1")

    with ThreadPoolExecutor(max_workers=64) as pool:
        kill_thread = threading.Thread(target=killer)
        kill_thread.start()
        write_thread = threading.Thread(target=writer)
        write_thread.start()
        # Interleaved, so that the kills land among both kinds of callers.
        every = max(1, (NONBLOCKING + BLOCKING) // max(1, BLOCKING))
        futures, b, n = [], 0, 0
        while b < BLOCKING or n < NONBLOCKING:
            if b < BLOCKING and (n % every == 0 or n >= NONBLOCKING):
                futures.append(pool.submit(blocking, b))
                b += 1
            if n < NONBLOCKING:
                futures.append(pool.submit(nonblocking, n))
                n += 1
        for f in futures:
            f.result()
        submitted.set()
        kill_thread.join()
        write_thread.join()

    # Every accepted activation ends in exactly one terminal record; no journal row is left.
    deadline = time.monotonic() + 120
    missing = set(accepted)
    with cluster.client(0) as c0:
        while missing and time.monotonic() < deadline:
            for activation_id in list(missing):
                if c0.get(f"{ACT}/{activation_id}").status_code == 200:
                    missing.discard(activation_id)
            if missing:
                time.sleep(1)
        for name in writes_acked:
            assert c0.get(f"{A}/{name}").status_code == 200, f"acknowledged write {name} is missing"
    pending, duplicates = asyncio.run(_journal_left(cluster.info["store"]))
    statuses: dict[str, int] = {}
    for outcome, _s, _id in blocking_answers:
        statuses[outcome] = statuses.get(outcome, 0) + 1
    print(
        f"\nfault: accepted {len(accepted)} (of {NONBLOCKING} non-blocking + {BLOCKING} blocking), "
        f"missing records {len(missing)}, journal rows left {pending}, duplicate ids {duplicates}, "
        f"blocking answers {statuses}, slowest blocking answer {max((s for _o, s, _i in blocking_answers), default=0):.1f} s, "
        f"writes acknowledged {len(writes_acked)} (all present)"
    )
    assert not missing, f"{len(missing)} accepted activations have no record"
    assert pending == 0
    assert duplicates == 0
    assert len(blocking_answers) == BLOCKING
    for outcome, seconds, _id in blocking_answers:
        assert seconds <= BLOCKING_WAIT_S + GRACE_S, (outcome, seconds)
        assert outcome in {"200", "202", "500:invoker-lost"} or outcome.startswith("connection:"), outcome


async def _journal_left(url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(url)
    try:
        pending = await conn.fetchval("SELECT count(*) FROM activations_pending")
        duplicates = await conn.fetchval(
            "SELECT count(*) FROM (SELECT activation_id FROM activations GROUP BY 1 HAVING count(*) > 1) d"
        )
        return int(pending), int(duplicates)
    finally:
        await conn.close()
