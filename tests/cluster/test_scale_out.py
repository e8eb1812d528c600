"""Scale-out on a real loopback cluster (issue 15): two controllers, two invokers, PostgreSQL, JetStream.

Every test drives real processes started by scripts/cluster; the attacks (a forged run message, a
look at what crosses the queue) go through a real NATS server.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time

import nats

from stockade.cluster.ring import HashRing
from stockade.cluster.wire import INVOKER_LOST

A = "/api/v1/namespaces/_/actions"
ACT = "/api/v1/namespaces/_/activations"
ECHO = "def main(a):\n    return {'echo': a.get('v'), 'bound': a.get('bound')}\n"
SLOW = "import time\n\ndef main(a):\n    time.sleep(a.get('s', 6))\n    return {'slept': a.get('s', 6)}\n"


def put(client, name, code, **extra):
    body = {"exec": {"kind": "python:3", "code": code}, **extra}
    r = client.put(f"{A}/{name}?overwrite=true", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def record(client, activation_id, wait_s=60.0):
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        r = client.get(f"{ACT}/{activation_id}")
        if r.status_code == 200:
            return r.json()
        time.sleep(0.2)
    raise AssertionError(f"no record for {activation_id}")


def test_blocking_and_non_blocking_invokes_run_on_invokers_through_either_controller(cluster):
    with cluster.client(0) as c0, cluster.client(1) as c1:
        put(c0, "echo", ECHO, parameters=[{"key": "bound", "value": "from-the-action"}])
        time.sleep(2.5)  # the other controller's action cache (2 s TTL)
        r = c1.post(f"{A}/echo?blocking=true&result=true", json={"v": 1})
        assert r.status_code == 200, r.text
        assert r.json() == {"echo": 1, "bound": "from-the-action"}
        accepted = c0.post(f"{A}/echo", json={"v": 2})
        assert accepted.status_code == 202
        rec = record(c1, accepted.json()["activationId"])
        assert rec["response"]["result"] == {"echo": 2, "bound": "from-the-action"}
        assert rec["response"]["status"] == "success"


def test_no_plaintext_parameter_or_token_crosses_the_queue(cluster):
    canary = f"canary-{secrets.token_hex(8)}"
    bound = f"bound-{secrets.token_hex(8)}"
    seen: list[bytes] = []

    async def watch(ready: threading.Event, done: threading.Event) -> None:
        nc = await nats.connect(cluster.info["nats"])

        async def keep(msg) -> None:
            seen.append(msg.data)

        await nc.subscribe("stockade.invoke.>", cb=keep)
        await nc.flush()
        ready.set()
        while not done.is_set():
            await asyncio.sleep(0.05)
        await nc.close()

    ready, done = threading.Event(), threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(watch(ready, done)))
    thread.start()
    ready.wait(10)
    try:
        with cluster.client(0) as c0:
            put(c0, "quiet", ECHO, parameters=[{"key": "bound", "value": bound}])
            r = c0.post(f"{A}/quiet?blocking=true&result=true", json={"v": canary})
            assert r.json() == {"echo": canary, "bound": bound}
    finally:
        time.sleep(0.3)
        done.set()
        thread.join(10)
    assert seen, "the run message was not seen on stockade.invoke.>"
    for data in seen:
        assert canary.encode() not in data
        assert bound.encode() not in data
        assert json.loads(data)["sealed"]  # one sealed envelope
        assert b"__OW_API_KEY" not in data
        assert b"activation_env" not in data


def test_a_forged_run_message_is_refused_and_never_runs(cluster):
    """An attacker who can publish on NATS but has no data key: the envelope does not open."""
    with cluster.client(0) as c0:
        action = put(c0, "forged", "def main(a):\n    print('RAN-FORGED')\n    return {}\n")
    home = HashRing({"i0", "i1"}).candidates("guest/forged")[0]

    async def forge() -> bytes:
        nc = await nats.connect(cluster.info["nats"])
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        body = {
            "id": secrets.token_hex(16),
            "ns": "guest",
            "action": ["guest", "forged"],
            "version": action["version"],
            "updated": action["updated"],
            "deadline": None,
            "policy": {"invoke": ["*"], "egress": ["*"]},
            "atMostOnce": True,
            "sealed": {"v": "1", "kid": "x", "nonce": "AAAA", "ct": "AAAA"},
        }
        js = nc.jetstream()
        await js.publish(f"stockade.invoke.{home}", json.dumps(body).encode(), headers={"Stockade-Reply": inbox})
        msg = await sub.next_msg(timeout=30)
        while "Stockade-Claimed" in (msg.headers or {}):  # the invoker's notice that it took the run
            msg = await sub.next_msg(timeout=30)
        await nc.close()
        return msg.data

    reply = json.loads(asyncio.run(forge()))
    assert reply["status"] == "whisk internal error"
    assert all("RAN-FORGED" not in line for line in reply["logs"])


def test_limits_hold_across_two_controllers(start_cluster):
    limit = 40
    cluster = start_cluster("--invocations-per-minute", str(limit), "--controllers", "2", "--invokers", "1")
    with cluster.client(0) as c0, cluster.client(1) as c1:
        put(c0, "counted", ECHO)
        time.sleep(2.5)
        statuses: list[int] = []
        lock = threading.Lock()

        def fire(client, n):
            for _ in range(n):
                code = client.post(f"{A}/counted", json={}).status_code
                with lock:
                    statuses.append(code)

        threads = [threading.Thread(target=fire, args=(c, limit)) for c in (c0, c1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    accepted = statuses.count(202)
    assert statuses.count(202) + statuses.count(429) == 2 * limit
    assert abs(accepted - limit) <= limit * 0.05, f"accepted {accepted} of {2 * limit} at a limit of {limit}"


def test_a_dead_invoker_ends_blocking_runs_as_internal_errors_and_reruns_non_blocking_ones(start_cluster):
    cluster = start_cluster("--concurrent-invocations", "100")
    with cluster.client(0, timeout=120) as c0:
        put(c0, "slow", SLOW, limits={"timeout": 20_000})
        later = c0.post(f"{A}/slow", json={"s": 6})
        assert later.status_code == 202
        later_id = later.json()["activationId"]
        answer: dict = {}

        def call() -> None:
            r = c0.post(f"{A}/slow?blocking=true", json={"s": 6})
            answer.update(status=r.status_code, body=r.json())

        caller = threading.Thread(target=call)
        caller.start()
        # Kill the invoker that runs the blocking activation (the one whose run is not `later`).
        victim = None
        end = time.monotonic() + 30
        while victim is None and time.monotonic() < end:
            for name in ("i0", "i1"):
                runs = [line for line in cluster.log(name).splitlines() if '"invoker.run"' in line]
                if any(later_id not in line for line in runs):
                    victim = name
            time.sleep(0.1)
        assert victim is not None, "the blocking run never started"
        time.sleep(1.0)
        cluster.kill(victim)
        killed_at = time.monotonic()
        caller.join(60)
        assert answer, "the blocking caller got no answer"
        body = answer["body"]
        assert answer["status"] == 500
        assert body["response"]["status"] == "whisk internal error"
        assert body["response"]["result"] == {"error": INVOKER_LOST}
        # Answered once the invoker's key expired (dead_after_s = 4 s), long before the 20 s timeout.
        assert time.monotonic() - killed_at < 15
        # The non-blocking one ran (again elsewhere, if it was on the victim) under its own id: a success.
        rec = record(c0, later_id, wait_s=60)
        assert rec["response"]["status"] == "success", rec["response"]
        # The blocking one's record is the internal error the caller saw.
        assert record(c0, body["activationId"])["response"]["status"] == "whisk internal error"
