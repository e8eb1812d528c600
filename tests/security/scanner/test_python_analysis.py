"""Python analysis with bandit in-process: the guides' injections and their relatives are caught."""

import pytest

from stockade.security.scanner.bundle import SourceFile
from stockade.security.scanner.python_analysis import analyse_python

from .conftest import WORD_COUNT_PY


def analyse(rules, code, path="__main__.py"):
    findings, count = analyse_python([SourceFile(path, code.encode())], rules)
    return findings, count


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        (WORD_COUNT_PY, "py.command-injection"),
        ("import os\ndef main(a):\n    os.system('echo ' + a['x'])\n", "py.command-injection"),
        ("def main(a):\n    return eval(a['expr'])\n", "py.code-injection"),
        ("def main(a):\n    exec(a['code'])\n", "py.code-injection"),
        ("def main(a, cur):\n    cur.execute(f\"SELECT * FROM t WHERE id = {a['id']}\")\n", "py.sql-injection"),
        ("def main(a, cur):\n    cur.execute('SELECT * FROM t WHERE id = ' + a['id'])\n", "py.sql-injection"),
        ("import pickle\ndef main(a):\n    return pickle.loads(a['blob'])\n", "py.unsafe-deserialisation"),
        ("import yaml\ndef main(a):\n    return yaml.load(a['doc'])\n", "py.unsafe-deserialisation"),
        (
            "import requests\ndef main(a):\n    return requests.get(a['url'], verify=False, timeout=5)\n",
            "py.tls-verification-disabled",
        ),
        ("import ssl\nctx = ssl._create_unverified_context()\n", "py.tls-verification-disabled"),
    ],
)
def test_dangerous_python_is_reported(rules, code, rule):
    findings, count = analyse(rules, code)
    assert count == 1
    assert rule in {f.rule_id for f in findings}
    hit = next(f for f in findings if f.rule_id == rule)
    assert hit.file == "__main__.py"
    assert hit.line
    assert hit.source.startswith("bandit:B")


def test_nosec_comments_in_scanned_code_do_not_silence_the_gate(rules):
    findings, _ = analyse(rules, "def main(a):\n    return eval(a['x'])  # nosec\n")
    assert "py.code-injection" in {f.rule_id for f in findings}


def test_literal_shell_commands_are_low_and_ignored_tests_are_dropped(rules):
    findings, _ = analyse(rules, "import subprocess\nassert True\nsubprocess.call('ls -l', shell=True)\n")
    assert {f.rule_id for f in findings} == {"py.subprocess"}


def test_unmapped_bandit_tests_use_the_translated_severity(rules):
    findings, _ = analyse(rules, "import hashlib\nhashlib.md5(b'x')\n")
    (finding,) = findings
    assert finding.rule_id == "py.insecure-code"
    assert finding.severity.value == "medium"  # bandit HIGH → medium per bandit.json


def test_syntax_errors_and_deep_nesting_are_findings_not_crashes(rules):
    findings, _ = analyse(rules, "def (:\n")
    assert [f.rule_id for f in findings] == ["code.unparsable"]
    findings, _ = analyse(rules, "x = " + "(" * 5000 + ")" * 5000 + "\n")
    assert [f.rule_id for f in findings] == ["code.unparsable"]


def test_only_python_files_are_analysed(rules):
    findings, count = analyse_python([SourceFile("index.js", b"eval(x)")], rules)
    assert (findings, count) == ([], 0)


def test_a_failing_bandit_plugin_is_reported(rules, monkeypatch):
    from stockade.security.scanner import python_analysis

    def boom(path, data):
        raise KeyError("plugin bug")

    monkeypatch.setattr(python_analysis, "_run_bandit", boom)
    findings, _ = analyse(rules, "x = 1\n")
    assert [f.rule_id for f in findings] == ["analysis.unavailable"]
