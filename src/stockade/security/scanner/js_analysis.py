"""JavaScript static analysis: ESLint (with eslint-plugin-security) in a Node.js worker.

The worker (``js/analyse.mjs``) parses code handed to it over a pipe; the code is never run and
no file of the action is read by Node. One worker per process is kept warm (loading ESLint
costs ~0.3 s) and replaced after a timeout or a crash. The npm packages come from
``js/package-lock.json``, installed by ``scripts/install``; when Node.js or the packages are
missing the scan reports ``analysis.unavailable`` instead of failing.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import select
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from stockade.security.scanner.bundle import SourceFile
from stockade.security.scanner.findings import Finding, Severity
from stockade.security.scanner.rules import RuleBook

__all__ = ["JS_DIR", "JsAnalyser", "analyse_javascript", "default_js_analyser"]

JS_DIR = Path(__file__).resolve().parent / "js"
JS_SUFFIXES = (".js", ".mjs", ".cjs")
_READ_CHUNK = 1 << 16


class _WorkerError(Exception):
    """The worker failed, timed out or answered nonsense."""


class JsAnalyser:
    """A Node.js worker running ``analyse.mjs``; thread-safe, one request at a time."""

    def __init__(self, script_dir: Path = JS_DIR, node: str | None = None) -> None:
        self._dir = script_dir
        self._node = node
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._next_id = 0

    def unavailable_reason(self) -> str | None:
        """Why the analyser cannot run here, or None when it can."""
        if self._node_path() is None:
            return "Node.js is not installed"
        if not (self._dir / "node_modules" / "eslint").is_dir():
            return f"the analyser's npm packages are not installed (run npm ci in {self._dir})"
        return None

    def _node_path(self) -> str | None:
        return self._node or shutil.which("node")

    def _start(self, heap_mb: int) -> subprocess.Popen[bytes]:
        node = self._node_path()
        assert node is not None
        # An empty environment: the analyser needs nothing from the platform's.
        return subprocess.Popen(  # noqa: S603 - fixed argv: the node binary and our own script
            [node, f"--max-old-space-size={heap_mb}", "analyse.mjs"],
            cwd=self._dir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={},
            close_fds=True,
        )

    def close(self) -> None:
        """Stop the worker."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def request(self, config: dict[str, Any], files: list[dict[str, str]], *, timeout_ms: int, heap_mb: int) -> Any:
        """Send one request and return the decoded response; raises _WorkerError."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._stop()
                self._proc = self._start(heap_mb)
            self._next_id += 1
            payload = json.dumps({"id": self._next_id, "config": config, "files": files}) + "\n"
            try:
                line = self._exchange(self._proc, payload.encode(), time.monotonic() + timeout_ms / 1000)
                response = json.loads(line)
            except (_WorkerError, OSError, ValueError) as exc:
                self._stop()  # a wedged or dead worker is replaced on the next request
                raise _WorkerError(str(exc) or exc.__class__.__name__) from None
            if not isinstance(response, dict) or response.get("id") != self._next_id:
                self._stop()
                raise _WorkerError("the analyser answered out of turn")
            if "error" in response:
                raise _WorkerError(str(response["error"]))
            return response

    @staticmethod
    def _exchange(proc: subprocess.Popen[bytes], payload: bytes, deadline: float) -> bytes:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(payload)
        proc.stdin.flush()
        fd = proc.stdout.fileno()
        buffer = bytearray()
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _WorkerError("the analyser timed out")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, _READ_CHUNK)
            if not chunk:
                raise _WorkerError("the analyser exited")
            buffer += chunk
        return bytes(buffer[: buffer.index(b"\n")])


_DEFAULT: JsAnalyser | None = None
_DEFAULT_LOCK = threading.Lock()


def default_js_analyser() -> JsAnalyser:
    """The process-wide analyser (stopped at interpreter exit)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = JsAnalyser()
            atexit.register(_DEFAULT.close)
        return _DEFAULT


def _config(rules: RuleBook) -> dict[str, Any]:
    js = rules.javascript
    return {"eslint": list(js.eslint), "calls": list(js.calls), "selectors": list(js.selectors)}


def _map_message(rules: RuleBook, path: str, message: dict[str, Any]) -> Finding | None:
    rule_id = message.get("ruleId")
    text = str(message.get("message", ""))
    line = message.get("line") if isinstance(message.get("line"), int) else None
    js = rules.javascript
    severity: Severity | None = None
    if rule_id == "stockade/dangerous-call":
        _, index, callee = [*text.split(":", 2), "", ""][:3]
        entry = js.calls[int(index)]
        return rules.finding(
            entry["rule"], f"{callee}() with a non-constant argument: {entry['reason']}", file=path, line=line,
            source="eslint:stockade/dangerous-call",
        )  # fmt: skip
    if rule_id == "no-restricted-syntax" and text.startswith("selector:"):
        entry = js.selectors[int(text.split(":", 1)[1])]
        return rules.finding(entry["rule"], entry["reason"], file=path, line=line, source="eslint:no-restricted-syntax")
    for entry in js.eslint:
        if entry["eslint_rule"] == rule_id:
            pattern = entry.get("message_pattern")
            if pattern is not None and not re.search(pattern, text):
                return None
            if "severity" in entry:
                severity = Severity(entry["severity"])
            return rules.finding(
                entry["rule"],
                f"{text} ({rule_id})",
                severity=severity,
                file=path,
                line=line,
                source=f"eslint:{rule_id}",
            )
    return None  # ESLint's own notices (e.g. ignored inline directives)


def analyse_javascript(
    files: list[SourceFile], rules: RuleBook, analyser: JsAnalyser | None = None
) -> tuple[list[Finding], int]:
    """Findings for the JavaScript files among ``files``, and how many were analysed."""
    sources = [f for f in files if f.path.endswith(JS_SUFFIXES)]
    if not sources:
        return [], 0
    analyser = analyser or default_js_analyser()
    reason = analyser.unavailable_reason()
    if reason is not None:
        return [rules.finding("analysis.unavailable", f"JavaScript was not analysed: {reason}")], 0
    limits = rules.limits
    try:
        response = analyser.request(
            _config(rules),
            [{"path": f.path, "code": f.text()} for f in sources],
            timeout_ms=limits.js_timeout_ms,
            heap_mb=limits.js_max_old_space_mb,
        )
    except _WorkerError as exc:
        return [rules.finding("analysis.unavailable", f"JavaScript was not analysed: {exc}")], 0
    findings: list[Finding] = []
    seen: set[tuple[str, str, int | None]] = set()
    for result in response.get("results") or []:
        path = str(result.get("path", ""))
        if result.get("fatal"):
            findings.append(
                rules.finding("code.unparsable", f"{path} does not parse as JavaScript: {result['fatal']}", file=path)
            )
            continue
        for message in result.get("messages") or []:
            finding = _map_message(rules, path, message)
            if finding is None:
                continue
            key = (finding.rule_id, path, finding.line)
            if key not in seen:  # several analysers often report the same call
                seen.add(key)
                findings.append(finding)
    return findings, len(sources)
