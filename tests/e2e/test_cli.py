"""The `stockade` CLI against a real server on loopback."""

import base64
import io
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

STOCKADE = [sys.executable, "-m", "stockade.cli"]


def cli(server, *args, check=True):
    env = {**os.environ, "WSK_CONFIG_FILE": str(server.wskprops)}
    proc = subprocess.run([*STOCKADE, *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_action_lifecycle_through_the_cli(server, tmp_path: Path):
    code = tmp_path / "greet.py"
    code.write_text("def main(args):\n    print('greeting', args.get('name'))\n    return {'hi': args.get('name')}\n")
    assert "ok: created action greet" in cli(server, "action", "create", "greet", str(code)).stdout
    out = cli(server, "--json", "action", "invoke", "greet", "-p", "name", "cli", "--result").stdout
    assert json.loads(out) == {"hi": "cli"}
    listed = cli(server, "action", "list").stdout
    assert "greet" in listed
    got = json.loads(cli(server, "--json", "action", "get", "greet").stdout)
    assert got["exec"]["kind"] == "python:3"
    logs = cli(server, "activation", "logs", "--last").stdout
    assert "greeting cli" in logs
    result = json.loads(cli(server, "--json", "activation", "result", "--last").stdout)
    assert result["success"] is True
    code.write_text("def main(args):\n    return {'version': 2}\n")
    cli(server, "action", "update", "greet", str(code))
    assert json.loads(cli(server, "--json", "action", "invoke", "greet", "-r").stdout) == {"version": 2}
    cli(server, "action", "delete", "greet")
    missing = cli(server, "action", "get", "greet", check=False)
    assert missing.returncode == 4
    assert "The requested resource does not exist." in missing.stderr


def test_node_zip_action_and_failed_invoke_exit_code(server, tmp_path: Path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("package.json", json.dumps({"main": "lib.js"}))
        z.writestr("lib.js", "exports.main = (p) => ({ doubled: p.n * 2 });")
    archive = tmp_path / "fn.zip"
    archive.write_bytes(buf.getvalue())
    cli(server, "action", "create", "zipped", str(archive), "--kind", "nodejs:20")
    out = cli(server, "--json", "action", "invoke", "zipped", "-p", "n", "21", "-r").stdout
    assert json.loads(out) == {"doubled": 42}
    bad = tmp_path / "bad.py"
    bad.write_text("def main(args):\n    return {'error': 'nope'}\n")
    cli(server, "action", "create", "bad", str(bad))
    failed = cli(server, "action", "invoke", "bad", "-r", check=False)
    assert failed.returncode == 1
    assert "nope" in failed.stdout + failed.stderr


def test_packages_triggers_rules_through_the_cli(server, tmp_path: Path):
    code = tmp_path / "echo.py"
    code.write_text("def main(args):\n    return args\n")
    cli(server, "package", "create", "tools", "-p", "region", "eu")
    cli(server, "action", "create", "tools/echo", str(code))
    out = json.loads(cli(server, "--json", "action", "invoke", "tools/echo", "-r").stdout)
    assert out == {"region": "eu"}
    cli(server, "trigger", "create", "tick")
    cli(server, "rule", "create", "on-tick", "tick", "tools/echo")
    fired = cli(server, "trigger", "fire", "tick", "-p", "n", "1").stdout
    match = re.search(r"ok: triggered /guest/tick with id ([0-9a-f]{32})", fired)
    assert match, fired
    record = {}
    for _ in range(100):
        proc = cli(server, "--json", "activation", "get", match.group(1), check=False)
        if proc.returncode == 0:
            record = json.loads(proc.stdout)
            break
        time.sleep(0.05)
    entry = json.loads(record["logs"][0])
    assert entry["success"] is True
    cli(server, "rule", "disable", "on-tick")
    rule = json.loads(cli(server, "--json", "rule", "get", "on-tick").stdout)
    assert rule["status"] == "inactive"
    cli(server, "rule", "delete", "on-tick")
    cli(server, "trigger", "delete", "tick")
    cli(server, "action", "delete", "tools/echo")
    cli(server, "package", "delete", "tools")
    assert "guest" in cli(server, "namespace", "list").stdout


def test_cli_reports_bad_credentials(server, tmp_path: Path):
    props = tmp_path / "props"
    uuid = server.auth.split(":")[0]
    props.write_text(f"APIHOST={server.url}\nAUTH={uuid}:{'0' * 64}\n")
    env = {**os.environ, "WSK_CONFIG_FILE": str(props)}
    proc = subprocess.run([*STOCKADE, "action", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert "The supplied authentication is invalid" in proc.stderr
    assert base64.b64encode(b"x")  # the key itself is never printed
    assert "0" * 64 not in proc.stderr + proc.stdout
