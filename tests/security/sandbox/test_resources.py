"""Threats against shared resources: memory and CPU, from inside a Python and a Node.js action (issue 3).

"Contained" means: the attempt fails or only its own sandbox dies, the host and a neighbouring
sandbox keep working, and a new sandbox starts. Root mode enforces through cgroups; unprivileged
mode through rlimits, and the tests skip what that mode cannot enforce, with the reason.
"""

from __future__ import annotations

import time

import pytest

from stockade.sandbox.harness import ActionSandbox

from .conftest import StartAction

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]

ALIVE = {
    "python": "def main(a):\n    return {'alive': True}\n",
    "nodejs": "function main() { return { alive: true }; }\n",
}


async def _outcome(sandbox: ActionSandbox, **run: object) -> dict[str, object] | None:
    """The run's reply, or None when the sandbox died doing it."""
    try:
        return await sandbox.run(**run)  # type: ignore[arg-type]
    except EOFError:
        return None


async def test_memory_far_past_the_limit_is_contained(start_action: StartAction, family: str, is_root: bool) -> None:
    """1-2 GB against a 128 MB limit: a MemoryError / heap error, or the OOM killer ends this sandbox only."""
    if family == "nodejs" and not is_root:
        pytest.skip("unprivileged mode cannot bound Node.js Buffers (no memory cgroup; RLIMIT_AS breaks V8)")
    neighbour = await start_action(family, ALIVE[family])
    one_block = {
        "python": "def main(a):\n    b = bytearray(1 << 30)\n    return {'allocated_mb': len(b) >> 20}\n",
        "nodejs": "function main() { const b = Buffer.alloc(1 << 30, 1); return { allocated_mb: b.length >> 20 }; }\n",
    }[family]
    sandbox = await start_action(family, one_block, memory_mb=128)
    reply = await _outcome(sandbox, timeout_s=60)
    assert reply is None or not reply["ok"], reply
    if family == "python" and not is_root:
        # Without a memory cgroup, RLIMIT_AS sits a little above the limit: one huge allocation
        # fails cleanly, the runner lives. (With one, the cgroup ends the sandbox instead.)
        assert reply is not None, reply
        assert "MemoryError" in str(reply["error"]), reply
    if is_root:
        assert reply is None or "MemoryError" in str(reply["error"]), reply

    chunks = {
        "python": "def main(a):\n    keep = []\n    for _ in range(2048):\n        keep.append(b'x' * (1 << 20))\n    return {'allocated_mb': len(keep)}\n",
        "nodejs": "function main() { const keep = []; for (let i = 0; i < 2048; i++) keep.push(Buffer.alloc(1 << 20, 1)); return { allocated_mb: keep.length }; }\n",
    }[family]
    grower = await start_action(family, chunks, memory_mb=128)
    reply = await _outcome(grower, timeout_s=60)
    assert reply is None or not reply["ok"], reply
    if is_root:
        # The memory cgroup caps everything the sandbox touches and OOM-kills it at the limit.
        assert reply is None, "a gradual allocation meets the cgroup limit before RLIMIT_AS"
        assert await grower.wait_dead(5)
        stats = grower.process.statistics()  # type: ignore[attr-defined]
        assert stats.oom_kills >= 1, stats
        assert stats.memory_peak_bytes <= 128 << 20, stats
    assert (await neighbour.run())["result"] == {"alive": True}
    assert (await (await start_action(family, ALIVE[family])).run())["ok"]


async def test_javascript_heap_is_bounded_by_the_memory_limit(start_action: StartAction, family: str) -> None:
    """Node's heap limit follows memory_mb (--max-old-space-size), not V8's 4 GB default."""
    if family != "nodejs":
        pytest.skip("Python objects are bounded by RLIMIT_AS and the memory cgroup (tested above)")
    code = "function main() { return { heap_mb: require('v8').getHeapStatistics().heap_size_limit / 1048576 }; }\n"
    sandbox = await start_action(family, code, memory_mb=128)
    reply = await sandbox.run()
    assert reply["ok"], reply
    assert reply["result"]["heap_mb"] < 256, reply
    hog = await start_action(
        family, "function main() { const a = []; for (;;) a.push(new Array(1e5).fill(1.5)); }\n", memory_mb=128
    )
    assert await _outcome(hog, timeout_s=60) is None
    assert await hog.wait_dead(5)


async def test_cpu_spin_is_stopped(start_action: StartAction, family: str) -> None:
    """A spinning action is stopped by the runner's CPU budget (Python) or the RLIMIT_CPU backstop (both)."""
    spin = {"python": "def main(a):\n    while True:\n        pass\n", "nodejs": "function main() { for (;;) {} }\n"}[
        family
    ]
    neighbour = await start_action(family, ALIVE[family])
    if family == "python":
        budgeted = await start_action(family, spin)
        began = time.monotonic()
        reply = await budgeted.run(cpu_ms=300)
        assert not reply["ok"], reply
        assert "CPU time limit" in reply["error"], reply
        assert time.monotonic() - began < 5
        assert (await budgeted.run({"x": 1}, cpu_ms=300))["ok"] is False  # still serving, still bounded
    backstopped = await start_action(family, spin, cpu_backstop_s=1)
    began = time.monotonic()
    assert await _outcome(backstopped, timeout_s=30) is None, "RLIMIT_CPU must end the spinning runner"
    assert time.monotonic() - began < 15
    assert (await neighbour.run())["result"] == {"alive": True}


@pytest.mark.root
async def test_cpu_share_is_capped_by_the_cgroup_quota(start_action: StartAction, family: str, is_root: bool) -> None:
    """With cpu_percent=20, one second of spinning gets about 0.2 s of CPU (cfs quota)."""
    if not is_root:
        pytest.skip("needs root: the CPU quota is a cgroup (unprivileged mode has no CPU share limit)")
    code = {
        "python": "import time\ndef main(a):\n    end = time.time() + 1.0\n    c = time.process_time()\n    while time.time() < end:\n        pass\n    return {'cpu_s': time.process_time() - c}\n",
        "nodejs": "function main() { const end = Date.now() + 1000; const c = process.cpuUsage(); while (Date.now() < end) {} const u = process.cpuUsage(c); return { cpu_s: (u.user + u.system) / 1e6 }; }\n",
    }[family]
    sandbox = await start_action(family, code, cpu_percent=20)
    reply = await sandbox.run()
    assert reply["ok"], reply
    assert reply["result"]["cpu_s"] < 0.45, reply
