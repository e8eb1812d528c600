"""Reuse rules: use-once sandboxes, /tmp wiped between runs, recycling at a memory watermark."""

from __future__ import annotations

import os
import textwrap

import pytest

from stockade.config import InvokerSettings
from stockade.domain import Action, EntityPath, Exec, KeyValue, Limits
from stockade.invoker import CodeStore, Invoker, RunRequest
from stockade.invoker.invoker import USE_ONCE_ANNOTATION, WIPE_TMP_ANNOTATION
from stockade.sandbox.insecure_process import InsecureProcessBackend
from stockade.sandbox.linux import LinuxSandboxBackend

TMP_PROBE = """
    import os
    def main(args):
        seen = os.path.exists('/tmp/left-behind')
        with open('/tmp/left-behind', 'w') as f:
            f.write('x')
        return {'seen': seen}
"""


def make_action(code, annotations=()):
    return Action(
        EntityPath("guest", "reuse"),
        Exec("python:3", textwrap.dedent(code)),
        annotations=tuple(KeyValue(k, v) for k, v in annotations),
        limits=Limits(timeout=10_000, memory=128),
    )


def request(act):
    return RunRequest(act, {}, "0" * 32)


@pytest.fixture
async def linux_invoker(tmp_path):
    backend = LinuxSandboxBackend()
    reason = backend.facts().unavailable_reason
    if reason:
        pytest.skip(f"Linux sandbox unavailable on this host: {reason}")
    invoker = Invoker(backend, CodeStore(tmp_path / "code"), settings=InvokerSettings())
    yield invoker
    await invoker.close()
    await backend.close()


async def test_tmp_persists_between_warm_runs_by_default(linux_invoker):
    act = make_action(TMP_PROBE)
    first = await linux_invoker.run(request(act))
    second = await linux_invoker.run(request(act))
    assert first.response.result == {"seen": False}
    assert second.response.result == {"seen": True}
    assert first.sandbox_id == second.sandbox_id


async def test_wipe_tmp_annotation_empties_tmp_between_runs(linux_invoker):
    act = make_action(TMP_PROBE, [(WIPE_TMP_ANNOTATION, True)])
    first = await linux_invoker.run(request(act))
    second = await linux_invoker.run(request(act))
    assert first.response.result == {"seen": False}
    assert second.response.result == {"seen": False}
    assert first.sandbox_id == second.sandbox_id  # same warm sandbox, clean /tmp


async def test_use_once_annotation_never_reuses(linux_invoker):
    act = make_action("def main(a):\n    return {}\n", [(USE_ONCE_ANNOTATION, True)])
    ids = {(await linux_invoker.run(request(act))).sandbox_id for _ in range(3)}
    assert len(ids) == 3
    assert linux_invoker.statistics().pool.idle == 0


async def test_memory_watermark_recycles(linux_invoker):
    if os.geteuid() != 0:
        pytest.skip("memory peaks are measured by the memory cgroup, which needs root")
    hog = """
        def main(args):
            blob = bytearray(120 * 1024 * 1024)
            return {'n': len(blob)}
    """
    act = make_action(hog)
    first = await linux_invoker.run(request(act))
    second = await linux_invoker.run(request(act))
    assert first.response.success, first.response
    assert first.sandbox_id != second.sandbox_id  # the first crossed 90% of 128 MB and was recycled


async def test_modes_without_private_tmp_do_not_reuse_when_wiping_is_asked(tmp_path):
    backend = InsecureProcessBackend()
    invoker = Invoker(
        backend, CodeStore(tmp_path / "code"), settings=InvokerSettings(sandbox_backend="insecure_process")
    )
    try:
        act = make_action("def main(a):\n    return {}\n", [(WIPE_TMP_ANNOTATION, True)])
        a = await invoker.run(request(act))
        b = await invoker.run(request(act))
        assert a.sandbox_id != b.sandbox_id
    finally:
        await invoker.close()
        await backend.close()
