"""The invoker on stem cells (linux backend): first runs take a pre-started sandbox, and every check still holds."""

from __future__ import annotations

import asyncio
import os
import shutil
import textwrap

import pytest

from stockade.config import InvokerSettings
from stockade.domain import Action, ActivationStatus, EntityPath, Exec, Limits
from stockade.invoker import CODE_MODIFIED, CodeStore, Invoker, RunRequest
from stockade.sandbox.linux import LinuxSandboxBackend


def make_action(code, *, kind="python:3", name="stem"):
    # Default limits (256 MB, 60 s) and no egress: what a stem cell is started for.
    body = textwrap.dedent(code) if kind.startswith("python") else code
    return Action(EntityPath("guest", name), Exec(kind, body), limits=Limits())


def request(act, params=None, **kw):
    return RunRequest(act, params or {}, "0" * 32, **kw)


@pytest.fixture
async def stem_invoker(tmp_path):
    backend = LinuxSandboxBackend(stem_cells=1, prepared_slots=1)
    reason = backend.facts().unavailable_reason
    if reason:
        pytest.skip(f"Linux sandbox unavailable on this host: {reason}")
    await backend.prepare()
    invoker = Invoker(backend, CodeStore(tmp_path / "code"), settings=InvokerSettings())
    yield invoker, backend
    await invoker.close()
    await backend.close()


async def _stem_ready(backend, family):
    for _ in range(1000):  # waiting for the background refill, not a timed assertion
        if backend.stem_statistics().ready[family]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {family} stem cell")


async def test_a_first_run_takes_a_stem_cell_and_sees_its_parameters(stem_invoker):
    invoker, backend = stem_invoker
    act = make_action(
        """
        import os
        def main(args):
            return {'init': os.environ.get('INIT_P'), 'host': os.environ.get('__OW_API_HOST'),
                    'ns': os.environ.get('__OW_NAMESPACE'), 'name': args.get('name')}
        """
    )
    await _stem_ready(backend, "python")
    hits = backend.stem_statistics().hits
    out = await invoker.run(request(act, {"name": "x"}, init_env={"INIT_P": "p"}))
    assert backend.stem_statistics().hits == hits + 1
    assert out.response.status is ActivationStatus.SUCCESS, out.response
    assert out.response.result["init"] == "p"
    assert out.response.result["name"] == "x"
    assert out.findings == ()


async def test_code_changed_before_a_stem_cell_takes_it_is_not_run(stem_invoker, tmp_path):
    """The integrity check (digest of /fn after init) still catches a changed code directory on a stem cell."""
    invoker, backend = stem_invoker
    act = make_action("def main(a):\n    return {}\n")
    await _stem_ready(backend, "python")
    first = await invoker.run(request(act, namespace="one"))
    assert first.findings == ()
    code_dir = next(p for p in (tmp_path / "code").iterdir() if not p.name.startswith("."))
    os.chmod(code_dir, 0o755)  # noqa: S103 - the code store's own directory, for this test's edit
    (code_dir / "extra.py").write_text("x")
    os.chmod(code_dir, 0o555)  # noqa: S103 - back to the code store's mode
    await _stem_ready(backend, "python")
    hits = backend.stem_statistics().hits
    out = await invoker.run(request(act, namespace="two"))
    assert backend.stem_statistics().hits == hits + 1  # the changed code went into a stem cell
    assert out.response.status is ActivationStatus.INTERNAL_ERROR
    assert [f.split(":")[0] for f in out.findings] == [CODE_MODIFIED]
    again = await invoker.run(request(act, namespace="two"))
    assert again.response.status is ActivationStatus.SUCCESS
    assert again.findings == ()


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_a_node_stem_cell_runs_the_action_and_keeps_to_its_namespace(stem_invoker):
    invoker, backend = stem_invoker
    act = make_action("function main(a) { return { cwd: process.cwd(), who: a.who }; }\n", kind="nodejs:20")
    await _stem_ready(backend, "nodejs")
    hits = backend.stem_statistics().hits
    one = await invoker.run(request(act, {"who": "one"}, namespace="one"))
    assert backend.stem_statistics().hits == hits + 1
    await _stem_ready(backend, "nodejs")
    two = await invoker.run(request(act, {"who": "two"}, namespace="two"))
    assert one.response.result == {"cwd": "/fn", "who": "one"}
    assert two.response.result == {"cwd": "/fn", "who": "two"}
    assert one.sandbox_id != two.sandbox_id  # never shared across namespaces
    warm = await invoker.run(request(act, {"who": "again"}, namespace="one"))
    assert warm.sandbox_id == one.sandbox_id
    assert warm.init_time_ms is None
