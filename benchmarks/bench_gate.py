"""Deploy gate cost: one action with 30 dependencies and 1,000 lines of code, all advisories loaded.

Runs the gate in-process (DeployGate over a SQLite store, as the API does) after importing the
real PyPA advisory snapshot from shared/ through the same import path as the API. Reports the
advisory import rate, then gate time (cold: first scan in the process; warm: p50/p99 of later
scans) for a Python and a Node.js action. Target (issue 6): gate under 1 s.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import os
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import structlog

from stockade.config import ScanSettings
from stockade.domain import Action, EntityPath, Exec, Identity, SystemClock
from stockade.errors import DeployBlockedError
from stockade.security.scanner import AdvisoryError, iter_osv_documents
from stockade.services.scans import DeployGate
from stockade.store import open_sqlite_store

from common import REPO, pct

ADVISORIES = REPO.parent / "shared" / "data" / "advisories" / "pypi"
RUNS = int(os.environ.get("BENCH_N", "20"))
BATCH = 500
# 30 real packages from the snapshot, pinned to current releases (the gate still looks each up).
PY_DEPS = [
    "aiohttp==3.10.10", "ansible==10.5.0", "apache-airflow==2.10.2", "asyncpg==0.30.0", "authlib==1.3.2",
    "bleach==6.1.0", "celery==5.4.0", "cryptography==43.0.1", "django==5.1.2", "fastapi==0.115.2",
    "flask==3.0.3", "gunicorn==23.0.0", "httpx==0.27.2", "idna==3.10", "jinja2==3.1.4", "lxml==5.3.0",
    "markdown==3.7", "mistune==3.0.2", "numpy==2.1.2", "paramiko==3.5.0", "pillow==11.0.0", "pyjwt==2.9.0",
    "pymongo==4.10.1", "pyyaml==6.0.2", "requests==2.32.3", "sqlalchemy==2.0.36", "tornado==6.4.1",
    "urllib3==2.2.3", "werkzeug==3.0.4", "zipp==3.20.2",
]  # fmt: skip
NPM_DEPS = {f"dep-{i}": f"1.{i}.0" for i in range(25)} | {
    "lodash": "4.17.21",
    "express": "4.21.1",
    "axios": "1.7.7",
    "minimist": "1.2.8",
    "qs": "6.13.0",
}


def _python_code(lines: int) -> str:
    body = ["import json", "import os", ""]
    i = 0
    while len(body) < lines:
        body += [
            f"def handler_{i}(args):",
            f"    value = args.get('k{i}', {i})",
            f"    return {{'v': value * 2, 'n': {i}}}",
            "",
        ]
        i += 1
    body += ["def main(args):", "    return handler_0(args)"]
    return "\n".join(body[:lines]) + "\n"


def _js_code(lines: int) -> str:
    body = ["'use strict';", ""]
    i = 0
    while len(body) < lines:
        body += [
            f"function handler{i}(args) {{",
            f"  const v = args.k{i} || {i};",
            f"  return {{ v: v * 2, n: {i} }};",
            "}",
        ]
        i += 1
    body += ["exports.main = (args) => handler0(args);"]
    return "\n".join(body[:lines]) + "\n"


def _zip(files: dict[str, str]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return base64.b64encode(buffer.getvalue()).decode()


def _python_action() -> Action:
    modules = {f"lib/m{i}.py": _python_code(200) for i in range(4)}
    code = _zip({"__main__.py": _python_code(200), **modules, "requirements.txt": "\n".join(PY_DEPS) + "\n"})
    return Action(path=EntityPath("guest", "bench-py"), exec=Exec(kind="python:3", code=code))


def _node_action() -> Action:
    lock = {"lockfileVersion": 3, "packages": {f"node_modules/{k}": {"version": v} for k, v in NPM_DEPS.items()}}
    files = {
        "index.js": _js_code(500),
        "lib/util.js": _js_code(500),
        "package.json": json.dumps({"dependencies": NPM_DEPS}),
        "package-lock.json": json.dumps(lock),
    }
    return Action(path=EntityPath("guest", "bench-js"), exec=Exec(kind="nodejs:20", code=_zip(files)))


async def _gate_times(gate: DeployGate, identity: Identity, action: Action) -> tuple[float, list[float]]:
    async def once() -> float:
        started = time.perf_counter()
        with contextlib.suppress(DeployBlockedError):  # blocked or not, the cost is the same
            await gate.check(identity, action, None)
        return (time.perf_counter() - started) * 1000

    cold = await once()
    return cold, [await once() for _ in range(RUNS)]


async def main() -> None:
    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    data = Path(tempfile.mkdtemp(prefix="stockade-bench-gate-"))
    store = open_sqlite_store(data / "db.sqlite")
    await store.open()
    try:
        gate = DeployGate(store, SystemClock(), ScanSettings(), admin_namespace="guest")
        admin = Identity("bench", "guest", "key")
        started = time.perf_counter()
        docs = [doc for _, doc in iter_osv_documents(ADVISORIES) if not isinstance(doc, AdvisoryError)]
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(0, len(docs), BATCH):
            await gate.import_advisories(admin, docs[i : i + BATCH])
        import_s = time.perf_counter() - started
        count = await store.count_advisories()
        print(f"advisories: {count} from {ADVISORIES.name}/ (OSV YAML)")
        print(
            f"advisory import: read+parse {read_s:.2f} s ({len(docs) / read_s:.0f}/s), "
            f"store+rescan {import_s:.2f} s ({len(docs) / import_s:.0f}/s), "
            f"total {len(docs) / (read_s + import_s):.0f} advisories/s"
        )
        for label, action in (("python:3", _python_action()), ("nodejs:20", _node_action())):
            cold, warm = await _gate_times(gate, admin, action)
            p50 = statistics.median(warm)
            print(
                f"gate {label} (30 deps, 1,000 lines, all advisories loaded): cold {cold:.0f} ms, "
                f"warm p50 {p50:.0f} ms, p99 {pct(warm, 0.99):.0f} ms over {RUNS} runs "
                f"(target < 1000 ms: {'met' if max(cold, p50) < 1000 else 'NOT met'})"
            )
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
