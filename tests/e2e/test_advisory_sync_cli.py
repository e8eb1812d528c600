"""`stockade advisories sync` through the CLI against a real `stockade up` on loopback, which
downloads OSV exports from a loopback bucket (issue 13): recorded, incremental, rescanned; the
admin route refuses other namespaces and anonymous callers."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import zipfile

import httpx
import pytest

from api.test_advisory_sync import SHARED, OsvBucket, _docs, _export
from e2e.conftest import start_server, stop_server

pytestmark = [pytest.mark.e2e]

STOCKADE = [sys.executable, "-m", "stockade.cli"]


def test_sync_through_the_cli(tmp_path, monkeypatch):
    bucket = OsvBucket()
    bucket.files["/PyPI/all.zip"] = _export(_docs(SHARED / "pypi", lambda name: "/requests/" in name))
    bucket.files["/npm/all.zip"] = _export(_docs(SHARED / "npm", lambda name: True)[:50])
    monkeypatch.setenv("STOCKADE_SCAN__ADVISORIES_URL", bucket.url)
    proc, server = start_server(tmp_path)
    env = {**os.environ, "WSK_CONFIG_FILE": str(server.wskprops)}

    def cli(*args):
        return subprocess.run([*STOCKADE, *args], env=env, capture_output=True, text=True, timeout=300)

    try:
        uuid, key = server.auth.split(":", 1)
        with httpx.Client(auth=(uuid, key), timeout=60) as client:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                archive.writestr("__main__.py", "import requests\n\ndef main(a):\n    return a\n")
                archive.writestr("requirements.txt", "requests>=2.0\n")
            code = base64.b64encode(buffer.getvalue()).decode()
            r = client.put(
                f"{server.url}/api/v1/namespaces/_/actions/app", json={"exec": {"kind": "python:3", "code": code}}
            )
            assert r.status_code == 200, r.text
            anonymous = httpx.post(f"{server.url}/api/v1/admin/advisories/sync", json={})
            assert anonymous.status_code == 401
        before = cli("advisories", "status")
        assert before.returncode == 0, before.stderr
        assert "MISSING" in before.stdout
        first = cli("advisories", "sync")
        assert first.returncode == 0, first.stderr
        assert "PyPI:" in first.stdout
        assert "newly vulnerable" in first.stdout
        assert "MISSING" not in first.stdout
        second = cli("advisories", "sync", "--ecosystem", "PyPI")
        assert "unchanged since the last sync" in second.stdout
        # The action deployed before the sync: its range now matches an advisory.
        report = cli("--json", "scan", "report", "app")
        assert "dependency.vulnerable-range" in report.stdout
        log = server.log_path.read_text()
        assert "Traceback" not in log
    finally:
        stop_server(proc)
        bucket.close()
