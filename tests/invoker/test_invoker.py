"""Invoker end to end with InsecureProcessBackend: outcomes, warm reuse, timeouts, tamper checks."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import shutil
import textwrap
import time
import zipfile

import pytest

from stockade.config import InvokerSettings
from stockade.domain import Action, ActivationStatus, EntityPath, Exec, Limits
from stockade.invoker import (
    CHECK_FAILED,
    CODE_MODIFIED,
    ENTRY_REPLACED,
    LOG_DEVELOPER_ERROR,
    STRAY_PROCESSES,
    CodeStore,
    Invoker,
    RunRequest,
    truncation_message,
)
from stockade.sandbox import InsecureProcessBackend
from stockade.testing import FrozenClock

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def action(code, *, kind="python:3", name="a", timeout_ms=10_000, logs_mb=10, main=None, version="0.0.1"):
    return Action(
        EntityPath("guest", name),
        Exec(kind, textwrap.dedent(code) if not kind.startswith("nodejs") else code, main=main),
        version=version,
        limits=Limits(timeout=timeout_ms, logs=logs_mb),
    )


def request(act, params=None, **kw):
    return RunRequest(act, params or {}, "0" * 32, **kw)


@pytest.fixture
async def make_invoker(tmp_path):
    made = []

    async def make(clock=None, max_result_bytes=1024 * 1024, **settings):
        backend = InsecureProcessBackend()
        invoker = Invoker(
            backend,
            CodeStore(tmp_path / "code"),
            settings=InvokerSettings(sandbox_backend="insecure_process", **settings),
            max_result_bytes=max_result_bytes,
            clock=clock,
            api_host="http://127.0.0.1:3233",
        )
        made.append((invoker, backend))
        return invoker

    yield make
    for invoker, backend in made:
        await invoker.close()
        await backend.close()
        assert backend.live_count == 0


@pytest.fixture
async def invoker(make_invoker):
    return await make_invoker()


HELLO = """
    import sys
    def main(args):
        print("hello", args.get("name"))
        print("careful", file=sys.stderr)
        return {"greeting": "hi " + str(args.get("name"))}
"""


async def test_python_cold_then_warm(invoker):
    act = action(HELLO)
    cold = await invoker.run(request(act, {"name": "ada"}))
    warm = await invoker.run(request(act, {"name": "bob"}))
    assert cold.response.status is ActivationStatus.SUCCESS
    assert cold.response.result == {"greeting": "hi ada"}
    assert warm.response.result == {"greeting": "hi bob"}
    assert cold.init_time_ms is not None
    assert warm.init_time_ms is None
    assert cold.sandbox_id == warm.sandbox_id
    assert [line[31:] for line in warm.logs] == ["stdout: hello bob", "stderr: careful"]
    assert warm.logs[0][26:30] == "Z   "
    assert cold.findings == warm.findings == ()
    assert not cold.timed_out
    assert warm.start_ms <= warm.end_ms


@needs_node
async def test_nodejs_cold_then_warm(invoker):
    act = action("function main(p) { console.log('hi', p.n); return { n: p.n }; }", kind="nodejs:20", name="node")
    cold = await invoker.run(request(act, {"n": 1}))
    warm = await invoker.run(request(act, {"n": 2}))
    assert (cold.response.result, warm.response.result) == ({"n": 1}, {"n": 2})
    assert cold.init_time_ms is not None
    assert warm.init_time_ms is None
    assert cold.sandbox_id == warm.sandbox_id
    assert [line[31:] for line in warm.logs] == ["stdout: hi 2"]


async def test_list_result_is_success(invoker):
    out = await invoker.run(request(action("def main(a):\n    return [1, 2]\n")))
    assert out.response.status is ActivationStatus.SUCCESS
    assert out.response.result == [1, 2]


async def test_application_error_keeps_the_sandbox_warm(invoker):
    act = action("def main(a):\n    return {'error': {'reason': 'bad'}, 'other': 1}\n")
    first = await invoker.run(request(act))
    second = await invoker.run(request(act))
    assert first.response.status is ActivationStatus.APPLICATION_ERROR
    assert first.response.result == {"error": {"reason": "bad"}}
    assert second.sandbox_id == first.sandbox_id
    assert second.init_time_ms is None


async def test_developer_error_destroys_the_sandbox(invoker):
    act = action("def main(a):\n    if a.get('fail'):\n        raise RuntimeError('boom')\n    return {}\n")
    ok = await invoker.run(request(act))
    failed = await invoker.run(request(act, {"fail": True}))
    after = await invoker.run(request(act))
    assert failed.response.status is ActivationStatus.DEVELOPER_ERROR
    assert "RuntimeError: boom" in failed.response.result["error"]
    assert any("Traceback" in line for line in failed.logs)
    assert failed.sandbox_id == ok.sandbox_id
    assert after.sandbox_id != ok.sandbox_id
    assert after.init_time_ms is not None
    assert invoker.statistics().pool.live == 1


async def test_invalid_result_is_a_developer_error(invoker):
    out = await invoker.run(request(action("def main(a):\n    return 'plain text'\n")))
    assert out.response.status is ActivationStatus.DEVELOPER_ERROR
    assert out.response.result == {
        "error": 'The action did not produce a valid JSON or JSON Array response: "plain text"'
    }


async def test_run_timeout_kills_the_sandbox_and_the_next_run_works(invoker):
    act = action(
        """
        import time
        def main(a):
            if a.get("hang"):
                print("about to hang", flush=True)
                time.sleep(60)
            return {"fine": True}
        """,
        timeout_ms=500,
    )
    warm = await invoker.run(request(act))
    started = time.monotonic()
    out = await invoker.run(request(act, {"hang": True}))
    assert time.monotonic() - started < 5
    assert out.timed_out is True
    assert out.response.status is ActivationStatus.DEVELOPER_ERROR
    assert out.response.result == {"error": "The action exceeded its time limits of 500 milliseconds."}
    assert [line[31:] for line in out.logs] == ["stdout: about to hang", f"stderr: {LOG_DEVELOPER_ERROR}"]
    again = await invoker.run(request(act))
    assert again.response.result == {"fine": True}
    assert again.sandbox_id not in (warm.sandbox_id, None)
    assert again.init_time_ms is not None


async def test_init_timeout(invoker):
    act = action("import time\ntime.sleep(60)\ndef main(a):\n    return {}\n", timeout_ms=400)
    out = await invoker.run(request(act))
    assert out.timed_out is True
    assert out.response.result == {
        "error": "The action exceeded its time limits of 400 milliseconds during initialization."
    }
    assert out.init_time_ms is not None
    assert invoker.statistics().pool.live == 0


async def test_init_failure_is_a_developer_error(invoker):
    out = await invoker.run(request(action("def main(a)\n    return {}\n")))
    assert out.response.status is ActivationStatus.DEVELOPER_ERROR
    assert out.response.result["error"].startswith("Initialization has failed due to: SyntaxError")
    assert out.init_time_ms is not None
    assert invoker.statistics().pool.live == 0


async def test_runner_exiting_during_the_run(invoker):
    out = await invoker.run(request(action("import os\ndef main(a):\n    print('bye', flush=True)\n    os._exit(3)\n")))
    assert out.response.result == {"error": "The action did not produce a valid response and exited unexpectedly."}
    assert [line[31:] for line in out.logs] == ["stdout: bye", f"stderr: {LOG_DEVELOPER_ERROR}"]


async def test_runner_exiting_during_init(invoker):
    out = await invoker.run(request(action("import os\nos._exit(1)\n")))
    assert out.response.result == {"error": "The action did not initialize and exited unexpectedly."}


async def test_garbage_on_the_control_socket_is_a_developer_error(invoker):
    act = action(
        "import os, sys\ndef main(a):\n    os.write(int(sys.argv[-1]), b'\\xff\\xff\\xff\\xff')\n    return {}\n"
    )
    out = await invoker.run(request(act))
    assert out.response.status is ActivationStatus.DEVELOPER_ERROR
    assert out.response.result == {"error": "The action did not produce a valid response and exited unexpectedly."}
    assert invoker.statistics().pool.live == 0


async def test_oversized_result_is_an_application_error_with_the_truncated_prefix(make_invoker):
    invoker = await make_invoker(max_result_bytes=40)
    out = await invoker.run(request(action("def main(a):\n    return {'data': 'x' * 100}\n")))
    encoded = json.dumps({"data": "x" * 100}, separators=(",", ":"))
    assert out.response.status is ActivationStatus.APPLICATION_ERROR
    assert out.response.result == {
        "error": f"The action produced a response that exceeded the allowed length: {len(encoded)} > 40 bytes. "
        f"The truncated response was: {encoded[:40]}"
    }


async def test_environment_init_params_api_host_and_deadline(make_invoker):
    clock = FrozenClock()
    invoker = await make_invoker(clock=clock)
    act = action(
        """
        import os
        def main(a):
            return {k: v for k, v in os.environ.items()}
        """,
        timeout_ms=7000,
    )
    out = await invoker.run(
        request(
            act,
            init_env={"DB_PASSWORD": "s3cret"},
            activation_env={"__OW_ACTIVATION_ID": "f" * 32, "__OW_NAMESPACE": "guest"},
        )
    )
    env = out.response.result
    assert env["DB_PASSWORD"] == "s3cret"
    assert env["__OW_API_HOST"] == "http://127.0.0.1:3233"
    assert env["__OW_ACTIVATION_ID"] == "f" * 32
    assert env["__OW_DEADLINE"] == str(clock.now + 7000)
    # Nothing of the host's environment leaks in.
    assert set(env) <= {
        "PATH",
        "LANG",
        "DB_PASSWORD",
        "__OW_API_HOST",
        "__OW_ACTIVATION_ID",
        "__OW_NAMESPACE",
        "__OW_DEADLINE",
        "LC_CTYPE",
    }
    again = await invoker.run(request(act))
    assert "__OW_ACTIVATION_ID" not in again.response.result


async def test_logs_over_the_limit_are_truncated(invoker):
    out = await invoker.run(request(action("def main(a):\n    print('x' * 10)\n    return {}\n", logs_mb=0)))
    assert [line[31:] for line in out.logs] == [f"stderr: {truncation_message(0)}"]


async def test_rebinding_main_is_detected_and_the_sandbox_destroyed(invoker):
    act = action(
        """
        def main(a):
            global main
            def main(a):
                return {"owned": True}
            return {"first": True}
        """
    )
    out = await invoker.run(request(act))
    assert out.response.result == {"first": True}
    assert [f.split(":")[0] for f in out.findings] == [ENTRY_REPLACED]
    after = await invoker.run(request(act))
    assert after.response.result == {"first": True}
    assert after.sandbox_id != out.sandbox_id


async def test_writing_into_the_code_directory_is_detected_and_the_code_rebuilt(invoker):
    act = action(
        """
        import os
        def main(a):
            if a.get("plant"):
                with open(os.path.join(os.path.dirname(__file__), "backdoor.py"), "w") as f:
                    f.write("evil")
            return {"files": sorted(os.listdir(os.path.dirname(__file__)))}
        """
    )
    out = await invoker.run(request(act, {"plant": True}))
    assert [f.split(":")[0] for f in out.findings] == [CODE_MODIFIED]
    clean = await invoker.run(request(act))
    assert clean.findings == ()
    assert clean.response.result == {"files": ["__main__.py"]}
    assert clean.sandbox_id != out.sandbox_id


async def test_code_changed_between_sandboxes_is_not_run(invoker, tmp_path):
    act = action("def main(a):\n    return {}\n")
    first = await invoker.run(request(act, namespace="one"))
    code_dir = next(p for p in (tmp_path / "code").iterdir() if not p.name.startswith("."))
    os.chmod(code_dir, 0o700)
    (code_dir / "extra.py").write_text("x")
    # A new sandbox (another namespace) finds the shared directory changed: refused, rebuilt.
    out = await invoker.run(request(act, namespace="two"))
    assert out.response.status is ActivationStatus.INTERNAL_ERROR
    assert [f.split(":")[0] for f in out.findings] == [CODE_MODIFIED]
    again = await invoker.run(request(act, namespace="two"))
    assert again.response.status is ActivationStatus.SUCCESS
    assert first.findings == again.findings == ()


async def test_leftover_background_process_is_detected_and_killed(invoker):
    act = action(
        """
        import subprocess
        def main(a):
            p = subprocess.Popen(["sleep", "30"])
            return {"pid": p.pid}
        """
    )
    out = await invoker.run(request(act))
    pid = out.response.result["pid"]
    assert out.findings == (f"{STRAY_PROCESSES}: {pid}",)
    for _ in range(200):
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().split(")")[1].split()[0]
        except FileNotFoundError:
            break
        if state == "Z":
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail(f"stray process {pid} is still running")


async def test_finished_subprocess_is_not_a_finding(invoker):
    act = action("import subprocess\ndef main(a):\n    subprocess.run(['true'], check=True)\n    return {}\n")
    out = await invoker.run(request(act))
    assert out.findings == ()


async def test_warm_sandbox_is_not_shared_across_namespaces_or_versions(invoker):
    act = action("def main(a):\n    return {}\n")
    first = await invoker.run(request(act, namespace="one"))
    other_ns = await invoker.run(request(act, namespace="two"))
    other_version = await invoker.run(
        request(action("def main(a):\n    return {}\n", version="0.0.2"), namespace="one")
    )
    same = await invoker.run(request(act, namespace="one"))
    assert len({first.sandbox_id, other_ns.sandbox_id, other_version.sandbox_id}) == 3
    assert same.sandbox_id == first.sandbox_id


async def test_at_capacity_an_idle_sandbox_of_another_action_is_evicted(make_invoker):
    invoker = await make_invoker(max_sandboxes=1)
    a = action("def main(x):\n    return {'a': 1}\n", name="a")
    b = action("def main(x):\n    return {'b': 1}\n", name="b")
    first = await invoker.run(request(a))
    await invoker.run(request(b))
    again = await invoker.run(request(a))
    assert again.init_time_ms is not None
    assert again.sandbox_id != first.sandbox_id
    stats = invoker.statistics().pool
    assert (stats.live, stats.evictions) == (1, 2)


async def test_at_capacity_with_everything_busy_run_waits(make_invoker):
    invoker = await make_invoker(max_sandboxes=1)
    slow = action("import time\ndef main(x):\n    time.sleep(0.4)\n    return {'slow': 1}\n", name="slow")
    fast = action("def main(x):\n    return {'fast': 1}\n", name="fast")
    first = asyncio.ensure_future(invoker.run(request(slow)))
    await asyncio.sleep(0.1)
    second = asyncio.ensure_future(invoker.run(request(fast)))
    await asyncio.sleep(0.05)
    assert invoker.statistics().waiting == 1
    a, b = await asyncio.gather(first, second)
    assert a.response.result == {"slow": 1}
    assert b.response.result == {"fast": 1}
    assert b.wait_time_ms >= 150


async def test_cancelled_waiter_does_not_lose_capacity(make_invoker):
    invoker = await make_invoker(max_sandboxes=1)
    slow = action("import time\ndef main(x):\n    time.sleep(0.3)\n    return {}\n", name="slow")
    other = action("def main(x):\n    return {'ok': 1}\n", name="other")
    running = asyncio.ensure_future(invoker.run(request(slow)))
    await asyncio.sleep(0.1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(invoker.run(request(other)), 0.05)
    await running
    out = await asyncio.wait_for(invoker.run(request(other)), 10)
    assert out.response.result == {"ok": 1}


async def test_cancelling_a_running_activation_destroys_its_sandbox(invoker):
    act = action("import time\ndef main(x):\n    time.sleep(30)\n    return {}\n")
    task = asyncio.ensure_future(invoker.run(request(act)))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if invoker.statistics().pool.live == 0:
            break
        await asyncio.sleep(0.01)
    assert invoker.statistics().pool.live == 0


async def test_sandbox_is_recycled_after_max_runs(make_invoker):
    invoker = await make_invoker(max_runs_per_sandbox=2)
    act = action("def main(x):\n    return {}\n")
    ids = [(await invoker.run(request(act))).sandbox_id for _ in range(3)]
    assert ids[0] == ids[1] != ids[2]


async def test_idle_sandboxes_are_reaped_after_the_ttl(make_invoker):
    clock = FrozenClock()
    invoker = await make_invoker(clock=clock, idle_ttl_s=60.0)
    act = action("def main(x):\n    return {}\n")
    first = await invoker.run(request(act))
    clock.advance(59_000)
    assert await invoker.reap_idle() == 0
    clock.advance(1_000)
    assert await invoker.reap_idle() == 1
    again = await invoker.run(request(act))
    assert again.init_time_ms is not None
    assert again.sandbox_id != first.sandbox_id


async def test_dead_idle_sandbox_is_replaced(invoker):
    act = action("def main(x):\n    return {}\n")
    first = await invoker.run(request(act))
    session = invoker._pool._lru[next(iter(invoker._pool._lru))].item
    os.kill(session.process.pid, 9)
    await asyncio.sleep(0.1)
    again = await invoker.run(request(act))
    assert again.response.status is ActivationStatus.SUCCESS
    assert again.sandbox_id != first.sandbox_id


async def test_zip_action(invoker):
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr("__main__.py", "from helper import greet\ndef main(a):\n    return {'g': greet()}\n")
        zf.writestr("helper.py", "def greet():\n    return 'from zip'\n")
    act = Action(EntityPath("guest", "zipped"), Exec("python:3", base64.b64encode(data.getvalue()).decode()))
    out = await invoker.run(request(act))
    assert out.response.result == {"g": "from zip"}


async def test_unsafe_zip_is_a_developer_error_without_a_sandbox(invoker):
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr("../escape.py", "x")
    act = Action(EntityPath("guest", "bad"), Exec("python:3", base64.b64encode(data.getvalue()).decode()))
    out = await invoker.run(request(act))
    assert out.response.status is ActivationStatus.DEVELOPER_ERROR
    assert "unsafe entry name" in out.response.result["error"]
    assert out.sandbox_id is None


@needs_node
async def test_nodejs_rejection_and_throw(invoker):
    act = action(
        "function main(p) { if (p.t) throw new Error('sync'); return Promise.reject(new Error('async')); }",
        kind="nodejs:20",
    )
    rejected = await invoker.run(request(act))
    thrown = await invoker.run(request(act, {"t": True}))
    assert rejected.response.status is ActivationStatus.APPLICATION_ERROR
    assert rejected.response.result["error"]["message"] == "async"
    assert thrown.response.status is ActivationStatus.DEVELOPER_ERROR
    assert thrown.response.result == {"error": "An error has occurred: Error: sync"}
    assert thrown.sandbox_id == rejected.sandbox_id
    after = await invoker.run(request(act))
    assert after.sandbox_id != thrown.sandbox_id


@needs_node
async def test_nodejs_tamper_is_detected(invoker):
    act = action(
        "exports.main = function main() { exports.main = () => ({ owned: true }); return {}; };",
        kind="nodejs:20",
    )
    out = await invoker.run(request(act))
    assert [f.split(":")[0] for f in out.findings] == [ENTRY_REPLACED]


async def test_check_failure_is_a_finding(invoker):
    act = action(
        """
        import os, shutil
        def main(a):
            here = os.path.dirname(__file__)
            os.chmod(here, 0o755)
            os.chmod(os.path.join(here, "__main__.py"), 0o644)
            os.remove(os.path.join(here, "__main__.py"))
            os.rmdir(here)
            return {}
        """
    )
    out = await invoker.run(request(act))
    assert out.response.status is ActivationStatus.SUCCESS
    assert [f.split(":")[0] for f in out.findings] == [CHECK_FAILED]
