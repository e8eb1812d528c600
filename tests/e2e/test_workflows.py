"""Ordinary OpenWhisk workflows through the `stockade` CLI against a real server (issue 14): every
update flag on objects that have parameters, copies, catalog sequences and rules, manifests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

pytestmark = pytest.mark.e2e

STOCKADE = [sys.executable, "-m", "stockade.cli"]
ECHO = "def main(args):\n    return args\n"


def cli(server, *args, check=True, auth=None):
    env = {**os.environ, "WSK_CONFIG_FILE": str(server.wskprops)}
    extra = ["--auth", auth] if auth else []
    proc = subprocess.run([*STOCKADE, *extra, *args], env=env, capture_output=True, text=True, timeout=180)
    if check:
        assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def result(server, name, *params, auth=None):
    flat = [x for pair in params for x in ("-p", *pair)]
    return json.loads(cli(server, "--json", "action", "invoke", name, *flat, "-r", auth=auth).stdout)


def get(server, kind, name):
    return json.loads(cli(server, "--json", kind, "get", name).stdout)


def annotations(entity):
    return {a["key"]: a["value"] for a in entity["annotations"]}


@pytest.fixture
def unique():
    return "w" + uuid.uuid4().hex[:8]


def test_every_action_update_flag_keeps_parameters(server, tmp_path: Path, unique):
    code = tmp_path / "echo.py"
    code.write_text(ECHO)
    name = f"{unique}-a"
    cli(server, "action", "create", name, str(code), "-p", "token", "s3cret", "-p", "n", "1", "-a", "owner", "me")
    cli(server, "action", "update", name, "--web", "true")  # was a 500 for every action with a parameter
    assert annotations(get(server, "action", name))["web-export"] is True
    web = httpx.get(f"{server.url}/api/v1/web/guest/default/{name}.json", timeout=30)
    assert web.status_code == 200, web.text
    assert web.json()["token"] == "s3cret"
    cli(server, "action", "update", name, "-t", "5000", "-m", "128", "-l", "5")
    cli(server, "action", "update", name, "-a", "color", "blue")
    cli(server, "action", "update", name, "--web", "false")
    action = get(server, "action", name)
    assert action["limits"]["timeout"] == 5000
    assert action["limits"]["memory"] == 128
    assert annotations(action)["color"] == "blue"
    assert annotations(action)["web-export"] is False
    assert result(server, name) == {"token": "s3cret", "n": 1}
    code.write_text("def main(args):\n    return {'v': 2, **args}\n")
    cli(server, "action", "update", name, str(code))  # new code, parameters kept
    assert result(server, name) == {"v": 2, "token": "s3cret", "n": 1}
    versioned = f"python:{sys.version_info.major}.{sys.version_info.minor}"
    code.write_text("def handler(args):\n    return {'v': 3, **args}\n")
    cli(server, "action", "update", name, str(code), "--kind", versioned, "--main", "handler")
    assert get(server, "action", name)["exec"]["kind"] == versioned
    assert result(server, name) == {"v": 3, "token": "s3cret", "n": 1}
    secret = subprocess.run(
        [*STOCKADE, "secret", "set", f"{unique}-pw"],
        input="hunter2",
        env={**os.environ, "WSK_CONFIG_FILE": str(server.wskprops)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert secret.returncode == 0, secret.stderr
    cli(server, "action", "update", name, "--secret", f"PW={unique}-pw")
    cli(server, "action", "update", name, "--web", "raw")
    assert annotations(get(server, "action", name))["raw-http"] is True
    assert result(server, name) == {"v": 3, "token": "s3cret", "n": 1}
    cli(server, "action", "update", name, "-p", "n", "2")  # -p replaces the parameters, as in wsk
    assert result(server, name) == {"v": 3, "n": 2}


def test_package_and_trigger_updates_keep_parameters(server, tmp_path: Path, unique):
    code = tmp_path / "echo.py"
    code.write_text(ECHO)
    pkg = f"{unique}-p"
    cli(server, "package", "create", pkg, "-p", "region", "eu")
    cli(server, "action", "create", f"{pkg}/echo", str(code))
    cli(server, "package", "update", pkg, "--shared", "yes")
    cli(server, "package", "update", pkg, "-a", "team", "core")
    assert get(server, "package", pkg)["publish"] is True
    assert result(server, f"{pkg}/echo") == {"region": "eu"}
    trigger = f"{unique}-t"
    cli(server, "trigger", "create", trigger, "-p", "source", "cron")
    cli(server, "trigger", "update", trigger, "-a", "team", "core")
    params = get(server, "trigger", trigger)["parameters"]
    assert params[0]["key"] == "source"
    assert params[0]["encryption"] == "AES-256-GCM"


def test_copy_keeps_parameter_values_without_revealing_them(server, tmp_path: Path, unique):
    code = tmp_path / "echo.py"
    code.write_text(ECHO)
    original, copy = f"{unique}-orig", f"{unique}-copy"
    cli(server, "action", "create", original, str(code), "-p", "apikey", "abc123", "-t", "7000")
    out = cli(server, "--json", "action", "create", copy, "--copy", original).stdout
    assert "abc123" not in out
    assert result(server, copy) == {"apikey": "abc123"}
    assert get(server, "action", copy)["limits"]["timeout"] == 7000
    # Overrides on top of the copy.
    cli(server, "action", "create", f"{copy}2", "--copy", original, "-p", "extra", "1")
    assert result(server, f"{copy}2") == {"apikey": "abc123", "extra": 1}  # -p adds to the copied ones
    packaged = f"{unique}-pk"
    cli(server, "package", "create", packaged)
    cli(server, "action", "create", f"{packaged}/c", "--copy", original)
    assert result(server, f"{packaged}/c") == {"apikey": "abc123"}


def test_sequences_over_packaged_and_catalog_actions(server, tmp_path: Path, unique):
    code = tmp_path / "up.py"
    code.write_text("def main(args):\n    return {'lines': [l.upper() for l in args['lines']]}\n")
    pkg = f"{unique}-s"
    cli(server, "package", "create", pkg)
    cli(server, "action", "create", f"{pkg}/upper", str(code))
    seq = f"{unique}-seq"
    cli(
        server,
        "action",
        "create",
        seq,
        "--sequence",
        f"/whisk.system/utils/split,{pkg}/upper,/whisk.system/utils/sort",
    )
    assert result(server, seq, ("payload", "b\na\nc")) == {"lines": ["A", "B", "C"], "length": 3}
    assert result(server, "/whisk.system/utils/namespace") == {"namespace": "guest"}


def test_rule_on_a_catalog_action(server, unique):
    trigger, rule = f"{unique}-tr", f"{unique}-r"
    cli(server, "trigger", "create", trigger)
    cli(server, "rule", "create", rule, trigger, "/whisk.system/utils/echo")
    cli(server, "trigger", "fire", trigger, "-p", "marker", unique)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = json.loads(cli(server, "--json", "activation", "list", "--limit", "20").stdout)
        for item in listed:
            if item.get("name") == "echo":
                record = json.loads(cli(server, "--json", "activation", "get", item["activationId"]).stdout)
                if record["response"]["result"].get("marker") == unique:
                    return
        time.sleep(0.2)
    raise AssertionError("the rule did not run /whisk.system/utils/echo")


def test_tenants_cannot_change_the_catalog(server, tmp_path: Path):
    code = tmp_path / "evil.py"
    code.write_text("def main(a):\n    return {'owned': True}\n")
    denied = cli(server, "action", "update", "/whisk.system/utils/echo", str(code), check=False)
    assert denied.returncode == 3, denied.stderr
    assert result(server, "/whisk.system/utils/echo", ("x", "1")) == {"x": 1}


MANIFEST = """
project:
  name: {project}
  packages:
    {pkg}:
      public: true
      inputs:
        region: eu
      actions:
        hello:
          function: src/hello.py
          runtime: python:3
          inputs:
            apikey:
              type: string
              value: k-123
            greeting: hi
          web-export: true
          limits:
            timeout: 9000
        risky:
          function: src/risky.py
      sequences:
        pipeline:
          actions: hello, /whisk.system/utils/echo
      triggers:
        {trigger}:
          inputs:
            from: manifest
      rules:
        {rule}:
          trigger: {trigger}
          action: /whisk.system/utils/echo
"""


def _write_project(tmp_path: Path, unique: str) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "hello.py").write_text(ECHO)
    (tmp_path / "src" / "risky.py").write_text(
        "import subprocess\ndef main(a):\n    return {'out': subprocess.run(a['cmd'], shell=True).returncode}\n"
    )
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(MANIFEST.format(project=unique, pkg=f"{unique}-m", trigger=f"{unique}-mt", rule=f"{unique}-mr"))
    return manifest


def test_deploy_export_redeploy_undeploy(server, tmp_path: Path, unique):
    manifest = _write_project(tmp_path, unique)
    pkg = f"{unique}-m"
    blocked = cli(server, "deploy", "-m", str(manifest), check=False)
    if blocked.returncode != 0:
        # The gate blocks shell=True with input: the output names the action and the finding.
        assert f"{pkg}/risky" in blocked.stderr, blocked.stderr
        out = cli(server, "deploy", "-m", str(manifest), "--accept-risk", "test fixture").stdout
    else:
        out = blocked.stdout
    assert f"action {pkg}/hello: deployed (gate" in out
    assert f"action {pkg}/risky: deployed (gate" in out
    assert result(server, f"{pkg}/hello") == {"region": "eu", "apikey": "k-123", "greeting": "hi"}
    assert result(server, f"{pkg}/pipeline")["apikey"] == "k-123"
    hello = get(server, "action", f"{pkg}/hello")
    assert annotations(hello)["web-export"] is True
    assert annotations(hello)["whisk-managed"]["projectName"] == unique
    assert hello["limits"]["timeout"] == 9000

    # Export: code files and fingerprints, never the values.
    exported_dir = tmp_path / "exported"
    exported_dir.mkdir()
    exported = exported_dir / "manifest.yaml"
    cli(server, "export", "-m", str(exported), "--project", unique)
    text = exported.read_text()
    assert "k-123" not in text
    assert "hmac-sha256:" in text
    doc = yaml.safe_load(text)
    assert doc["project"]["name"] == unique
    assert (exported_dir / pkg / "hello.py").read_text() == ECHO
    assert set(doc["project"]["packages"][pkg]["actions"]["hello"]["inputs"]) == {"apikey", "greeting"}
    assert set(doc["project"]["packages"][pkg]["inputs"]) == {"region"}

    # Redeploy the export under another package name: the values come along, still unrevealed.
    copy_pkg = f"{unique}-c"
    doc["project"]["packages"][copy_pkg] = doc["project"]["packages"].pop(pkg)
    doc["project"]["packages"][copy_pkg]["sequences"]["pipeline"]["actions"] = "hello, /whisk.system/utils/echo"
    doc["project"]["packages"].pop("default", None)
    exported.write_text(yaml.safe_dump(doc))
    cli(server, "deploy", "-m", str(exported), "--accept-risk", "test fixture")
    assert result(server, f"{copy_pkg}/hello") == {"region": "eu", "apikey": "k-123", "greeting": "hi"}
    assert result(server, f"{copy_pkg}/pipeline")["apikey"] == "k-123"
    # ...and over itself (an unchanged redeploy keeps everything).
    cli(server, "deploy", "-m", str(exported), "--accept-risk", "test fixture")
    assert result(server, f"{copy_pkg}/hello")["apikey"] == "k-123"

    undeployed = cli(server, "undeploy", "-m", str(manifest)).stdout
    assert f"action {pkg}/hello: deleted" in undeployed
    assert cli(server, "action", "get", f"{pkg}/hello", check=False).returncode == 4
    assert cli(server, "rule", "get", f"{unique}-mr", check=False).returncode == 4
    cli(server, "undeploy", "-m", str(exported))
    assert cli(server, "package", "get", copy_pkg, check=False).returncode == 4

    # Nothing in the namespace holds the values now: the export's transfer tokens bring them back.
    assert "sealed" in text
    cli(server, "deploy", "-m", str(exported), "--accept-risk", "test fixture")
    assert result(server, f"{copy_pkg}/hello") == {"region": "eu", "apikey": "k-123", "greeting": "hi"}
    cli(server, "undeploy", "-m", str(exported))


def test_bad_manifests_are_refused_before_anything_is_written(server, tmp_path: Path, unique):
    bad = tmp_path / "bad.yaml"
    for text in ("project: [1, 2", "!!python/object/apply:os.system ['true']", "packages: 3", "project:\n  name: x\n"):
        bad.write_text(text)
        proc = cli(server, "deploy", "-m", str(bad), check=False)
        assert proc.returncode == 2, (text, proc.stderr)
        assert "manifest" in proc.stderr
    bad.write_text(f"packages:\n  {unique}:\n    actions:\n      a:\n        function: ../../../etc/passwd\n")
    proc = cli(server, "deploy", "-m", str(bad), check=False)
    assert proc.returncode == 2, proc.stderr
    assert cli(server, "package", "get", unique, check=False).returncode == 4


def test_no_unhandled_errors_in_the_server_log(server):
    """Runs last in this module: nothing above left an unhandled error (a 500) in the log."""
    assert "api.unhandled_error" not in server.log()
    assert "Traceback" not in server.log()
