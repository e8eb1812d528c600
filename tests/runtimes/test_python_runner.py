"""The Python runner, driven over its control socket like the invoker does."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from stockade.invoker.code import extract_zip, tree_digest

from .conftest import PYTHON_RUNNER


def write(code_dir: Path, source: str, name: str = "__main__.py") -> None:
    path = code_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


def test_success_returns_result_and_logs_before_sentinels(start_runner, code_dir):
    write(
        code_dir,
        """
        import sys
        print("loading")
        def main(args):
            print("hello", args["name"])
            print("warn", file=sys.stderr)
            return {"greeting": "hi " + args["name"]}
        """,
    )
    runner = start_runner("python")
    assert runner.init() == {"ok": True}
    assert runner.logs() == (["loading"], [])
    assert runner.run({"name": "ada"}) == {"ok": True, "result": {"greeting": "hi ada"}}
    assert runner.logs() == (["hello ada"], ["warn"])


def test_list_result_is_returned(start_runner, code_dir):
    write(code_dir, "def main(args):\n    return [1, 2]\n")
    runner = start_runner("python")
    runner.init()
    assert runner.run() == {"ok": True, "result": [1, 2]}


def test_application_error_is_not_classified_by_runner(start_runner, code_dir):
    write(code_dir, "def main(args):\n    return {'error': 'bad input'}\n")
    runner = start_runner("python")
    runner.init()
    assert runner.run() == {"ok": True, "result": {"error": "bad input"}}


def test_raise_is_a_developer_error_with_traceback_in_logs(start_runner, code_dir):
    write(code_dir, "def main(args):\n    raise ValueError('boom')\n")
    runner = start_runner("python")
    runner.init()
    runner.logs()
    reply = runner.run()
    assert reply["ok"] is False
    assert "ValueError: boom" in reply["error"]
    _, stderr = runner.logs()
    assert any("Traceback" in line for line in stderr)


@pytest.mark.parametrize(
    ("body", "shown"),
    [("return 'text'", '"text"'), ("return 42", "42"), ("return None", "null"), ("return {1, 2}", "{1, 2}")],
)
def test_non_json_object_result_is_a_developer_error(start_runner, code_dir, body, shown):
    write(code_dir, f"def main(args):\n    {body}\n")
    runner = start_runner("python")
    runner.init()
    reply = runner.run()
    assert reply == {
        "ok": False,
        "error": f"The action did not produce a valid JSON or JSON Array response: {shown}",
    }


def test_unserialisable_values_inside_result_are_a_developer_error(start_runner, code_dir):
    write(code_dir, "def main(args):\n    return {'x': float('nan'), 'y': object()}\n")
    runner = start_runner("python")
    runner.init()
    reply = runner.run()
    assert reply["ok"] is False
    assert reply["error"].startswith("The action did not produce a valid JSON or JSON Array response")


def test_custom_main_name(start_runner, code_dir):
    write(code_dir, "def handler(args):\n    return {'via': 'handler'}\n")
    runner = start_runner("python")
    assert runner.init(main="handler") == {"ok": True}
    assert runner.run() == {"ok": True, "result": {"via": "handler"}}


def test_missing_main_fails_init(start_runner, code_dir):
    write(code_dir, "def other(args):\n    return {}\n")
    runner = start_runner("python")
    reply = runner.init()
    assert reply["ok"] is False
    assert "function 'main' not found" in reply["error"]
    assert runner.logs() == ([], [])


def test_syntax_error_fails_init_with_traceback(start_runner, code_dir):
    write(code_dir, "def main(args)\n    return {}\n")
    runner = start_runner("python")
    reply = runner.init()
    assert reply["ok"] is False
    assert "SyntaxError" in reply["error"]
    _, stderr = runner.logs()
    assert any("SyntaxError" in line for line in stderr)


def test_second_init_is_refused(start_runner, code_dir):
    write(code_dir, "def main(args):\n    return {}\n")
    runner = start_runner("python")
    assert runner.init() == {"ok": True}
    assert runner.init() == {"ok": False, "error": "Internal error: runner already initialized"}
    runner.logs()
    runner.logs()
    assert runner.run() == {"ok": True, "result": {}}


def test_run_before_init_is_refused(start_runner, code_dir):
    runner = start_runner("python")
    reply = runner.run()
    assert reply == {"ok": False, "error": "Internal error: runner not initialized"}


def test_init_env_persists_and_run_env_is_removed_after_the_run(start_runner, code_dir):
    write(
        code_dir,
        """
        import os
        AT_LOAD = os.environ.get("SECRET_PARAM")
        def main(args):
            return {
                "at_load": AT_LOAD,
                "init": os.environ.get("SECRET_PARAM"),
                "activation": os.environ.get("__OW_ACTIVATION_ID"),
            }
        """,
    )
    runner = start_runner("python")
    runner.init(env={"SECRET_PARAM": "s3"})
    first = runner.run(env={"__OW_ACTIVATION_ID": "a" * 32})
    assert first["result"] == {"at_load": "s3", "init": "s3", "activation": "a" * 32}
    second = runner.run()
    assert second["result"]["activation"] is None


def test_partial_line_is_flushed_before_the_sentinel(start_runner, code_dir):
    write(code_dir, "def main(args):\n    print('no newline', end='')\n    return {}\n")
    runner = start_runner("python")
    runner.init()
    runner.logs()
    runner.run()
    stdout, _ = runner.logs()
    # The host sees "no newline<SENTINEL>" and splits it; here the raw stream ends with the text.
    assert stdout == ["no newline"]


def test_cpu_budget_fails_the_run_even_when_the_action_catches_exceptions(start_runner, code_dir):
    write(
        code_dir,
        """
        def main(args):
            try:
                while True:
                    pass
            except Exception:
                return {"caught": True}
        """,
    )
    runner = start_runner("python")
    runner.init()
    runner.logs()
    reply = runner.run(cpu_ms=200)
    assert reply == {"ok": False, "error": "The action exceeded its CPU time limit of 200 milliseconds."}
    _, stderr = runner.logs()
    assert "The action exceeded its CPU time limit of 200 milliseconds." in stderr


def test_cpu_timer_is_disarmed_after_a_quick_run(start_runner, code_dir):
    write(
        code_dir,
        """
        import time
        def main(args):
            if args.get("spin"):
                end = time.process_time() + 0.3
                while time.process_time() < end:
                    pass
            return {"ok": True}
        """,
    )
    runner = start_runner("python")
    runner.init()
    assert runner.run(cpu_ms=200)["ok"] is True
    # A fresh budget per run: 300 ms of CPU under a 1 s budget is fine even after earlier runs.
    assert runner.run({"spin": True}, cpu_ms=1000)["ok"] is True


def test_zip_with_modules_and_virtualenv(start_runner, code_dir):
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr(
            "__main__.py", "import helper, vendored\ndef main(args):\n    return {'v': helper.V + vendored.W}\n"
        )
        zf.writestr("helper.py", "V = 'helper+'\n")
        zf.writestr("virtualenv/lib/python3.11/site-packages/vendored.py", "W = 'vendored'\n")
    extract_zip(data.getvalue(), code_dir, max_unpacked_bytes=1 << 20, max_files=10)
    runner = start_runner("python")
    assert runner.init(binary=True) == {"ok": True}
    assert runner.run() == {"ok": True, "result": {"v": "helper+vendored"}}


def test_zip_without_main_module_fails_init(start_runner, code_dir):
    write(code_dir, "X = 1\n", name="other.py")
    runner = start_runner("python")
    reply = runner.init(binary=True)
    assert reply["ok"] is False
    assert "__main__.py" in reply["error"]


def test_check_reports_digest_equal_to_host_digest_and_a_stable_entry(start_runner, code_dir):
    write(code_dir, "def main(args):\n    return {}\n")
    write(code_dir, "x = 1\n", name="pkg/mod.py")
    runner = start_runner("python")
    runner.init()
    first = runner.request({"op": "check"})
    assert first["ok"] is True
    assert first["digest"] == tree_digest(code_dir)
    runner.run()
    assert runner.request({"op": "check"}) == first


def test_check_detects_rebound_main(start_runner, code_dir):
    write(
        code_dir,
        """
        def main(args):
            global main
            def main(args):
                return {"evil": True}
            return {}
        """,
    )
    runner = start_runner("python")
    runner.init()
    before = runner.request({"op": "check"})
    runner.run()
    after = runner.request({"op": "check"})
    assert after["digest"] == before["digest"]
    assert after["entry"] != before["entry"]


def test_check_detects_swapped_code_object(start_runner, code_dir):
    write(
        code_dir,
        """
        def other(args):
            return {"evil": True}
        def main(args):
            main.__code__ = other.__code__
            return {}
        """,
    )
    runner = start_runner("python")
    runner.init()
    before = runner.request({"op": "check"})["entry"]
    runner.run()
    assert runner.request({"op": "check"})["entry"] != before


def test_check_detects_written_file(start_runner, code_dir):
    write(
        code_dir,
        "import os\ndef main(args):\n    open(os.path.join(os.path.dirname(__file__), 'x'), 'w').write('y')\n    return {}\n",
    )
    runner = start_runner("python")
    runner.init()
    before = runner.request({"op": "check"})["digest"]
    runner.run()
    after = runner.request({"op": "check"})["digest"]
    assert after != before
    assert after == tree_digest(code_dir)


def test_unwaited_children_are_reaped_after_the_run(start_runner, code_dir):
    write(
        code_dir,
        """
        import os
        def main(args):
            if os.fork() == 0:
                os._exit(0)
            return {}
        """,
    )
    runner = start_runner("python")
    runner.init()
    runner.run()
    runner.logs()
    time.sleep(0.2)  # the child exits after the run's own reap; the next op reaps it
    runner.request({"op": "check"})
    pid = runner.proc.pid
    children = b"".join(
        Path(f"/proc/{pid}/task/{tid}/children").read_bytes() for tid in os.listdir(f"/proc/{pid}/task")
    )
    assert children.split() == []


def test_oversized_frame_makes_the_runner_exit(start_runner, code_dir):
    runner = start_runner("python")
    runner.send_raw((64 * 1024 * 1024 + 1).to_bytes(4, "big"))
    assert runner.proc.wait(timeout=10) == 0
    assert runner.proc.stderr is not None
    assert b"protocol error" in runner.proc.stderr.read()


def test_eof_ends_serve():
    script = (
        "import socket, sys\n"
        f"sys.path.insert(0, {str(PYTHON_RUNNER.parent)!r})\n"
        "import runner\n"
        "a, b = socket.socketpair()\n"
        "a.close()\n"
        "runner.serve(b.fileno())\n"
        "print('returned')\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout == "returned\n"


def test_import_has_no_side_effects():
    script = (
        "import signal, sys, os\n"
        f"sys.path.insert(0, {str(PYTHON_RUNNER.parent)!r})\n"
        "before = dict(os.environ)\n"
        "import runner\n"
        "assert signal.getsignal(signal.SIGPROF) == signal.SIG_DFL\n"
        "assert dict(os.environ) == before\n"
        "assert not sys.dont_write_bytecode or True\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
