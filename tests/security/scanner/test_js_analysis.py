"""JavaScript analysis with ESLint in a Node.js worker: the seed's word count and its relatives."""

import os
from dataclasses import replace

import pytest

from stockade.security.scanner.bundle import SourceFile
from stockade.security.scanner.js_analysis import JS_DIR, JsAnalyser, analyse_javascript, default_js_analyser

from .conftest import WORD_COUNT_JS


def analyse(rules, code, path="index.js", analyser=None):
    return analyse_javascript([SourceFile(path, code.encode())], rules, analyser)


def test_the_analyser_is_installed():
    """scripts/install runs npm ci in the analyser's folder; without it JS goes unanalysed."""
    assert default_js_analyser().unavailable_reason() is None, f"run npm ci in {JS_DIR}"


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        (WORD_COUNT_JS, "js.command-injection"),
        ("const cp = require('child_process');\ncp.execSync('ls ' + params.dir);\n", "js.command-injection"),
        ("import { exec } from 'node:child_process';\nexec(`rm ${p.f}`);\n", "js.command-injection"),
        (
            "const cp = require('child_process');\ncp.spawn('sh', [params.x], { shell: true });\n",
            "js.command-injection",
        ),
        ("function main(p) { return eval(p.expr); }\n", "js.code-injection"),
        ("function main(p) { return new Function(p.body)(); }\n", "js.code-injection"),
        ("const vm = require('vm');\nvm.runInNewContext(params.code);\n", "js.code-injection"),
        ("db.query('SELECT * FROM users WHERE id = ' + params.id);\n", "js.sql-injection"),
        ("pool.query(`DELETE FROM t WHERE id = ${params.id}`);\n", "js.sql-injection"),
        ("const s = require('node-serialize');\ns.unserialize(params.blob);\n", "js.unsafe-deserialisation"),
        ("https.request({ host: h, rejectUnauthorized: false });\n", "js.tls-verification-disabled"),
        ("process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';\n", "js.tls-verification-disabled"),
        ("process.env['NODE_TLS_REJECT_UNAUTHORIZED'] = 0;\n", "js.tls-verification-disabled"),
    ],
)
def test_dangerous_javascript_is_reported(rules, code, rule):
    findings, count = analyse(rules, code)
    assert count == 1
    assert rule in {f.rule_id for f in findings}, findings


def test_safe_patterns_are_not_reported(rules):
    code = (
        "const { execFile } = require('child_process');\n"
        "execFile('wc', ['-w'], () => {});\n"
        "db.query('SELECT * FROM users WHERE id = ?', [params.id]);\n"
        "const re = /a+/; re.exec(params.s);\n"
        "module.exports.main = (p) => ({ ok: true });\n"
    )
    findings, _ = analyse(rules, code)
    assert findings == []


def test_inline_eslint_directives_do_not_silence_the_gate(rules):
    findings, _ = analyse(rules, "/* eslint-disable */\neval(params.x); // eslint-disable-line\n")
    assert "js.code-injection" in {f.rule_id for f in findings}


def test_modules_parse_and_parse_errors_are_findings(rules):
    findings, _ = analyse(rules, "export const main = (p) => eval(p.x);\n", path="action.mjs")
    assert "js.code-injection" in {f.rule_id for f in findings}
    findings, _ = analyse(rules, "function (\n")
    assert [f.rule_id for f in findings] == ["code.unparsable"]


def test_no_javascript_means_no_worker(rules):
    assert analyse_javascript([SourceFile("a.py", b"x")], rules, JsAnalyser(node="/nonexistent")) == ([], 0)


def test_missing_node_or_packages_is_reported_as_unanalysed(rules, tmp_path):
    findings, count = analyse(rules, "eval(x)", analyser=JsAnalyser(script_dir=tmp_path))
    assert count == 0
    assert [f.rule_id for f in findings] == ["analysis.unavailable"]
    assert "npm packages" in findings[0].message
    no_node = JsAnalyser(node=None)
    no_node._node_path = lambda: None
    assert "Node.js" in no_node.unavailable_reason()


def _fake_node(tmp_path, script):
    (tmp_path / "node_modules" / "eslint").mkdir(parents=True)
    node = tmp_path / "fake-node"
    node.write_text("#!/bin/sh\n" + script)
    node.chmod(0o755)
    return JsAnalyser(script_dir=tmp_path, node=str(node))


def test_a_hanging_analyser_is_killed_and_replaced(rules, small_limits, tmp_path):
    analyser = _fake_node(tmp_path, "exec sleep 30\n")
    quick = small_limits(js_timeout_ms=300)
    findings, _ = analyse(quick, "eval(x)", analyser=analyser)
    assert [f.rule_id for f in findings] == ["analysis.unavailable"]
    assert "timed out" in findings[0].message
    assert analyser._proc is None
    analyser.close()


def test_a_crashing_or_confused_analyser_is_reported(rules, tmp_path):
    crashing = _fake_node(tmp_path, "exit 3\n")
    findings, _ = analyse(rules, "eval(x)", analyser=crashing)
    assert "exited" in findings[0].message or "Broken pipe" in findings[0].message
    crashing.close()
    liar = _fake_node(tmp_path / "liar", 'read line; echo \'{"id": 999, "results": []}\'; sleep 5\n')
    findings, _ = analyse(rules, "eval(x)", analyser=liar)
    assert "out of turn" in findings[0].message
    liar.close()
    erring = _fake_node(tmp_path / "err", 'while read line; do echo \'{"id": 1, "error": "boom"}\'; done\n')
    findings, _ = analyse(rules, "eval(x)", analyser=erring)
    assert "boom" in findings[0].message
    erring.close()


def test_the_worker_is_reused_between_scans(rules):
    analyser = JsAnalyser()
    try:
        analyse(rules, "eval(a)", analyser=analyser)
        first = analyser._proc.pid
        analyse(rules, "eval(b)", analyser=analyser)
        assert analyser._proc.pid == first
    finally:
        analyser.close()
    assert analyser._proc is None
    assert os.path.isdir(JS_DIR)


def test_severity_overrides_apply(rules):
    findings, _ = analyse(rules, "require(params.name);\n")
    (finding,) = findings
    assert finding.rule_id == "js.insecure-code"
    assert finding.severity.value == "low"
    assert replace(finding, line=None).line is None
