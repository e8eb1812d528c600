"""Memory limits as OpenWhisk users meet them (issue 14): ordinary threaded programs run under the
default 256 MB, and an action the memory cgroup kills reports OpenWhisk's message."""

from __future__ import annotations

import textwrap

import pytest

from stockade.config import InvokerSettings
from stockade.domain import Action, EntityPath, Exec, Limits
from stockade.invoker import CodeStore, Invoker, RunRequest
from stockade.invoker.outcomes import MEMORY_EXHAUSTED
from stockade.sandbox.linux import LinuxSandboxBackend

pytestmark = pytest.mark.sandbox


def _action(code: str, memory: int = 256) -> Action:
    return Action(
        EntityPath("guest", "memory"),
        Exec("python:3", textwrap.dedent(code)),
        limits=Limits(timeout=30_000, memory=memory),
    )


@pytest.fixture
async def invoker(tmp_path):
    backend = LinuxSandboxBackend()
    facts = backend.facts()
    if facts.unavailable_reason:
        pytest.skip(f"Linux sandbox unavailable on this host: {facts.unavailable_reason}")
    if facts.mode != "root" or facts.cgroup_layout is None:
        pytest.skip("needs root mode with a memory cgroup (unprivileged mode bounds memory with RLIMIT_AS)")
    invoker = Invoker(backend, CodeStore(tmp_path / "code"), settings=InvokerSettings())
    yield invoker
    await invoker.close()
    await backend.close()


# Every worker is alive at once (the barrier), each with its stack and malloc arena in use.
THREADS = """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    def main(args):
        workers = args.get('workers', 16)
        barrier = threading.Barrier(workers)

        def work(i):
            held = [bytearray(100_000) for _ in range(10)]
            barrier.wait(timeout=10)
            return len(held)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            out = list(pool.map(work, range(workers)))
        return {'done': len(out)}
"""


async def test_thread_pool_of_16_runs_under_the_default_memory(invoker):
    outcome = await invoker.run(RunRequest(_action(THREADS), {"workers": 16}, "0" * 32))
    assert outcome.response.success, outcome.response
    assert outcome.response.result == {"done": 16}
    outcome = await invoker.run(RunRequest(_action(THREADS), {"workers": 32}, "1" * 32))
    assert outcome.response.result == {"done": 32}, outcome.response


async def test_memory_still_bounded_without_an_address_space_limit(invoker):
    """Dropping RLIMIT_AS does not unbound memory: the cgroup kills the sandbox at its limit."""
    grower = """
        def main(args):
            keep = []
            for _ in range(2048):
                keep.append(b'x' * (1 << 20))
            return {'allocated_mb': len(keep)}
    """
    outcome = await invoker.run(RunRequest(_action(grower, memory=128), {}, "2" * 32))
    assert not outcome.response.success
    assert outcome.response.result == {"error": MEMORY_EXHAUSTED}
    assert MEMORY_EXHAUSTED == "The action exhausted its memory and was aborted."
    # The next activation gets a new sandbox and runs.
    fine = await invoker.run(RunRequest(_action("def main(a):\n    return {'ok': True}\n", memory=128), {}, "3" * 32))
    assert fine.response.result == {"ok": True}


async def test_one_huge_allocation_is_memory_exhaustion_too(invoker):
    huge = "def main(a):\n    b = bytearray(1 << 30)\n    return {'n': len(b)}\n"
    outcome = await invoker.run(RunRequest(_action(huge, memory=128), {}, "4" * 32))
    assert not outcome.response.success
    assert outcome.response.result == {"error": MEMORY_EXHAUSTED}


async def test_memory_exhausted_during_initialisation(invoker):
    at_import = "keep = [b'x' * (1 << 20) for _ in range(2048)]\ndef main(a):\n    return {}\n"
    outcome = await invoker.run(RunRequest(_action(at_import, memory=128), {}, "5" * 32))
    assert outcome.response.result == {"error": MEMORY_EXHAUSTED}


async def test_a_crash_that_is_not_memory_keeps_its_message(invoker):
    crash = "import os\ndef main(a):\n    os._exit(3)\n"
    outcome = await invoker.run(RunRequest(_action(crash), {}, "6" * 32))
    assert outcome.response.result == {"error": "The action did not produce a valid response and exited unexpectedly."}
