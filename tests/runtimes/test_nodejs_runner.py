"""The Node.js runner, driven over its control socket like the invoker does."""

from __future__ import annotations

import io
import json
import textwrap
import zipfile
from pathlib import Path

import pytest

from stockade.invoker.code import extract_zip, tree_digest


def write(code_dir: Path, source: str, name: str = "index.js") -> None:
    path = code_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


@pytest.fixture
def node(start_runner):
    return lambda: start_runner("nodejs")


def test_plain_script_with_top_level_main(node, code_dir):
    write(
        code_dir,
        """
        console.log("loading");
        function main(params) {
          console.log("hello", params.name);
          console.error("warn");
          return { greeting: "hi " + params.name };
        }
        """,
    )
    runner = node()
    assert runner.init() == {"ok": True}
    assert runner.logs() == (["loading"], [])
    assert runner.run({"name": "ada"}) == {"ok": True, "result": {"greeting": "hi ada"}}
    assert runner.logs() == (["hello ada"], ["warn"])


def test_exports_main(node, code_dir):
    write(code_dir, "exports.main = (p) => ({ via: 'exports', n: p.n });\n")
    runner = node()
    runner.init()
    assert runner.run({"n": 1}) == {"ok": True, "result": {"via": "exports", "n": 1}}


def test_custom_main_name_and_shebang(node, code_dir):
    write(code_dir, "#!/usr/bin/env node\nfunction handler(p) { return { via: 'handler' }; }\n")
    runner = node()
    assert runner.init(main="handler") == {"ok": True}
    assert runner.run() == {"ok": True, "result": {"via": "handler"}}


def test_missing_main_fails_init(node, code_dir):
    write(code_dir, "function other() { return {}; }\n")
    runner = node()
    reply = runner.init()
    assert reply["ok"] is False
    assert "function 'main' not found" in reply["error"]


def test_invalid_main_name_fails_init(node, code_dir):
    write(code_dir, "function main() { return {}; }\n")
    runner = node()
    reply = runner.init(main="main; process.exit(3)")
    assert reply["ok"] is False
    assert "not a valid function name" in reply["error"]


def test_syntax_error_fails_init(node, code_dir):
    write(code_dir, "function main( { return {}; }\n")
    runner = node()
    reply = runner.init()
    assert reply["ok"] is False
    assert "SyntaxError" in reply["error"]


def test_promise_is_awaited(node, code_dir):
    write(code_dir, "async function main(p) { await new Promise(r => setTimeout(r, 10)); return { late: true }; }\n")
    runner = node()
    runner.init()
    assert runner.run() == {"ok": True, "result": {"late": True}}


def test_undefined_becomes_empty_object(node, code_dir):
    write(code_dir, "function main() { return; }\n")
    runner = node()
    runner.init()
    assert runner.run() == {"ok": True, "result": {}}


def test_rejected_promise_is_an_application_error_result(node, code_dir):
    write(code_dir, "function main() { return Promise.reject(new TypeError('nope')); }\n")
    runner = node()
    runner.init()
    reply = runner.run()
    assert reply["ok"] is True
    error = reply["result"]["error"]
    assert error["name"] == "TypeError"
    assert error["message"] == "nope"
    assert "stack" in error


def test_rejection_with_plain_value_and_without_reason(node, code_dir):
    write(code_dir, "function main(p) { return p.plain ? Promise.reject({ code: 7 }) : Promise.reject(); }\n")
    runner = node()
    runner.init()
    assert runner.run({"plain": True}) == {"ok": True, "result": {"error": {"code": 7}}}
    assert runner.run({}) == {"ok": True, "result": {"error": {}}}


def test_sync_throw_is_a_developer_error(node, code_dir):
    write(code_dir, "function main() { throw new Error('boom'); }\n")
    runner = node()
    runner.init()
    runner.logs()
    reply = runner.run()
    assert reply == {"ok": False, "error": "An error has occurred: Error: boom"}
    _, stderr = runner.logs()
    assert any("Error: boom" in line for line in stderr)


@pytest.mark.parametrize(("body", "shown"), [("return 42", "42"), ("return 'x'", '"x"'), ("return null", "null")])
def test_non_object_result_is_a_developer_error(node, code_dir, body, shown):
    write(code_dir, f"function main() {{ {body}; }}\n")
    runner = node()
    runner.init()
    assert runner.run() == {
        "ok": False,
        "error": f"The action did not produce a valid JSON or JSON Array response: {shown}",
    }


def test_unserialisable_result_is_a_developer_error(node, code_dir):
    write(code_dir, "function main() { return { big: 10n }; }\n")
    runner = node()
    runner.init()
    reply = runner.run()
    assert reply["ok"] is False
    assert reply["error"].startswith("The action did not produce a valid JSON or JSON Array response")


def test_array_result(node, code_dir):
    write(code_dir, "function main() { return [1, 'two']; }\n")
    runner = node()
    runner.init()
    assert runner.run() == {"ok": True, "result": [1, "two"]}


def test_env_init_persists_and_run_env_is_removed(node, code_dir):
    write(
        code_dir,
        """
        const atLoad = process.env.SECRET_PARAM;
        function main() {
          return { atLoad, init: process.env.SECRET_PARAM, id: process.env.__OW_ACTIVATION_ID || null };
        }
        """,
    )
    runner = node()
    runner.init(env={"SECRET_PARAM": "s3"})
    assert runner.run(env={"__OW_ACTIVATION_ID": "b" * 32})["result"] == {"atLoad": "s3", "init": "s3", "id": "b" * 32}
    assert runner.run()["result"]["id"] is None


def test_second_init_is_refused(node, code_dir):
    write(code_dir, "function main() { return {}; }\n")
    runner = node()
    runner.init()
    assert runner.init() == {"ok": False, "error": "Internal error: runner already initialized"}


def test_sentinels_follow_async_output(node, code_dir):
    write(
        code_dir,
        """
        async function main() {
          process.stdout.write("partial");
          for (let i = 0; i < 2000; i++) console.log("line " + i);
          return {};
        }
        """,
    )
    runner = node()
    runner.init()
    runner.logs()
    runner.run()
    stdout, _ = runner.logs()
    assert stdout[0] == "partialline 0"
    assert stdout[-1] == "line 1999"
    assert len(stdout) == 2000


def zip_into(code_dir: Path, files: dict[str, str]) -> None:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    extract_zip(data.getvalue(), code_dir, max_unpacked_bytes=1 << 20, max_files=100)


def test_zip_with_package_json_main_and_node_modules(node, code_dir):
    zip_into(
        code_dir,
        {
            "package.json": json.dumps({"name": "a", "main": "lib/entry.js"}),
            "lib/entry.js": "const h = require('./helper'); const dep = require('dep');\n"
            "exports.main = () => ({ v: h.v + dep.w });\n",
            "lib/helper.js": "exports.v = 'helper+';\n",
            "node_modules/dep/index.js": "exports.w = 'dep';\n",
        },
    )
    runner = node()
    assert runner.init(binary=True) == {"ok": True}
    assert runner.run() == {"ok": True, "result": {"v": "helper+dep"}}


def test_zip_with_index_js_only(node, code_dir):
    zip_into(code_dir, {"index.js": "function main() { return { index: true }; }\n"})
    runner = node()
    runner.init(binary=True)
    assert runner.run() == {"ok": True, "result": {"index": True}}


def test_zip_without_entry_fails_init(node, code_dir):
    zip_into(code_dir, {"other.js": "exports.main = () => ({});\n"})
    runner = node()
    reply = runner.init(binary=True)
    assert reply["ok"] is False
    assert "index.js" in reply["error"]


def test_check_digest_matches_host_and_detects_changes(node, code_dir):
    write(
        code_dir,
        """
        const fs = require('fs');
        function main(p) {
          if (p.write) fs.writeFileSync(__dirname + '/planted.js', 'x');
          return {};
        }
        """,
    )
    write(code_dir, "x", name="sub/data.txt")
    runner = node()
    runner.init()
    first = runner.request({"op": "check"})
    assert first["ok"] is True
    assert first["digest"] == tree_digest(code_dir)
    runner.run()
    assert runner.request({"op": "check"}) == first
    runner.run({"write": True})
    after = runner.request({"op": "check"})
    assert after["digest"] != first["digest"]
    assert after["digest"] == tree_digest(code_dir)


@pytest.mark.parametrize(
    "source",
    [
        "function main() { main = function () { return { evil: true }; }; return {}; }\n",
        "exports.main = function main() { exports.main = () => ({ evil: true }); return {}; };\n",
    ],
)
def test_check_detects_replaced_main(node, code_dir, source):
    write(code_dir, source)
    runner = node()
    runner.init()
    before = runner.request({"op": "check"})["entry"]
    runner.run()
    assert runner.request({"op": "check"})["entry"] != before


def test_oversized_frame_makes_the_runner_exit(node, code_dir):
    runner = node()
    runner.send_raw((64 * 1024 * 1024 + 1).to_bytes(4, "big"))
    assert runner.proc.wait(timeout=10) == 1
