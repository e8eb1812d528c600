"""wskdeploy manifests → REST steps (parsing only; deploying is tested against a server in tests/e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stockade.cli.client import CliError
from stockade.cli.manifest import input_entries, parse_manifest

DOC = """
project:
  name: shop
  packages:
    store:
      public: true
      inputs: {region: eu}
      actions:
        hello:
          function: hello.py
          inputs:
            key: {type: string, value: k}
            fallback: {type: integer, default: 3}
            sealed: {value: "hmac-sha256:0123", encryption: AES-256-GCM}
            raw: {a: 1}
          web-export: raw
          limits: {timeout: 1000, memorySize: 128}
      sequences:
        flow:
          actions: hello, other/x, /whisk.system/utils/sort
      triggers:
        tick: {inputs: {n: 1}}
      rules:
        on-tick: {trigger: tick, action: hello}
      apis:
        shop-api:
          shop:
            orders:
              hello: {method: post, response: http}
    default:
      actions:
        root:
          code: "def main(a):\\n    return a\\n"
          runtime: python:3
"""


def test_steps_in_dependency_order(tmp_path: Path):
    (tmp_path / "hello.py").write_text("def main(a):\n    return a\n")
    manifest = parse_manifest(yaml.safe_load(DOC), tmp_path, "guest", file="manifest.yaml")
    assert manifest.project == "shop"
    order = [(s.collection, s.name) for s in manifest.steps]
    assert order == [
        ("packages", "store"),
        ("actions", "store/hello"),
        ("actions", "root"),
        ("actions", "store/flow"),
        ("triggers", "tick"),
        ("rules", "on-tick"),
        ("apis", "/shop /orders POST"),
    ]
    steps = {s.name: s for s in manifest.steps}
    hello = steps["store/hello"].body
    assert hello["exec"] == {"kind": "python:3", "code": "def main(a):\n    return a\n"}
    assert hello["limits"] == {"timeout": 1000, "memory": 128}
    assert hello["parameters"] == [
        {"key": "key", "value": "k"},
        {"key": "fallback", "value": 3},
        {"key": "sealed", "value": "hmac-sha256:0123", "encryption": "AES-256-GCM"},
        {"key": "raw", "value": {"a": 1}},
    ]
    annotations = {a["key"]: a["value"] for a in hello["annotations"]}
    assert annotations["web-export"] is True
    assert annotations["raw-http"] is True
    assert annotations["whisk-managed"]["projectName"] == "shop"
    assert steps["store/flow"].body["exec"]["components"] == [
        "/guest/store/hello",
        "/guest/other/x",
        "/whisk.system/utils/sort",
    ]
    assert steps["on-tick"].body["action"] == "/guest/store/hello"
    assert steps["/shop /orders POST"].body["action"] == "/guest/store/hello"
    assert steps["store"].body["publish"] is True
    assert steps["store/hello"].is_code
    assert not steps["store/flow"].is_code


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"project": {"name": "x"}},
        {"packages": 3},
        {"packages": {"p": {"actions": {"a": {}}}}},
        {"packages": {"p": {"actions": {"a": {"function": "missing.py"}}}}},
        {"packages": {"p": {"actions": {"a": {"code": "x"}}}}},
        {"packages": {"p": {"sequences": {"s": {"actions": ""}}}}},
        {"packages": {"p": {"triggers": {"t": {"feed": "/whisk.system/alarms/alarm"}}}}},
        {"packages": {"p": {"rules": {"r": {"trigger": "t"}}}}},
        {"packages": {"p": {"actions": {"a": {"code": "x", "runtime": "python:3", "limits": {"memorySize": "1"}}}}}},
        {"packages": {"p": {"actions": {"a": {"code": "x", "runtime": "python:3", "web-export": "maybe"}}}}},
    ],
)
def test_bad_manifests_are_usage_errors(tmp_path: Path, doc):
    with pytest.raises(CliError) as err:
        parse_manifest(doc, tmp_path, "guest")
    assert err.value.exit_code == 2
    assert err.value.message.startswith("manifest:")


def test_dict_values_that_are_not_typed_inputs_stay_values():
    assert input_entries({"cfg": {"host": "h", "port": 1}}, "inputs") == [
        {"key": "cfg", "value": {"host": "h", "port": 1}}
    ]
