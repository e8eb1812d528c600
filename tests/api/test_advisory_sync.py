"""`stockade advisories sync` over the API (issue 13), against a local HTTP server serving OSV's
export format ({ecosystem}/all.zip of JSON documents), built from the real advisory snapshots in
shared/: verified, incremental (ETag → 304; unchanged documents not rewritten), last sync
recorded per ecosystem, deployed actions rescanned; missing advisories are a gate finding
(a warning, blocking where the namespace's policy says so)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import zipfile
import zlib
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from stockade.config import Settings
from stockade.security.scanner import iter_osv_documents

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "advisories"
A = "/api/v1/namespaces/_/actions"
SYNC = "/api/v1/admin/advisories/sync"
APP = "import requests\n\ndef main(args):\n    return {'ok': True}\n"


def _docs(folder: Path, keep) -> list[dict]:
    return [doc for name, doc in iter_osv_documents(folder) if isinstance(doc, dict) and keep(name)]


def _export(docs: list[dict]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for doc in docs:
            archive.writestr(f"{doc['id']}.json", json.dumps(doc))
    return buffer.getvalue()


class OsvBucket:
    """A loopback HTTP server serving /{ecosystem}/all.zip with ETags."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        bucket = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                data = bucket.files.get(self.path)
                if data is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
                if self.headers.get("If-None-Match") == etag:
                    bucket.requests.append((self.path, "304"))
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                bucket.requests.append((self.path, "200"))
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def pypi_docs():
    # A slice of the real PyPA snapshot: every requests advisory and a few hundred others.
    return _docs(SHARED / "pypi", lambda name: "/requests/" in name or zlib.crc32(name.encode()) % 8 == 0)


@pytest.fixture(scope="module")
def npm_docs():
    return _docs(SHARED / "npm", lambda name: True)[:300]


@pytest.fixture
def bucket():
    made = OsvBucket()
    yield made
    made.close()


@pytest.fixture
def api(api_factory, tmp_path, bucket):
    base = Settings(data_dir=tmp_path)
    return api_factory(replace(base, scan=replace(base.scan, advisories_url=bucket.url)))


def deploy(api, name, requirements, **query):
    files = {"__main__.py": APP, "requirements.txt": requirements}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    code = base64.b64encode(buffer.getvalue()).decode()
    return api.put(f"{A}/{name}", json={"exec": {"kind": "python:3", "code": code}}, params=query)


def rules(api, name):
    report = api.get(f"/api/v1/namespaces/_/scans/{name}").json()
    return {f["rule"] for f in report["report"]["findings"]}


def test_sync_imports_verifies_records_and_rescans(api, bucket, pypi_docs, npm_docs):
    bucket.files["/PyPI/all.zip"] = _export(pypi_docs)
    smuggled = {**pypi_docs[0], "id": "SMUGGLED-1"}  # a PyPI advisory inside the npm export
    bucket.files["/npm/all.zip"] = _export([*npm_docs, smuggled])

    status = api.get(SYNC).json()["ecosystems"]
    assert status["PyPI"]["state"] == "missing"
    assert status["npm"]["state"] == "missing"
    # Before any advisories: the deploy warns that its dependency check did not run.
    assert deploy(api, "old", "requests==2.30.0\n").status_code == 200
    assert "advisories.unavailable" in rules(api, "old")
    assert "dependency.vulnerable" not in rules(api, "old")

    r = api.post(SYNC, json={})
    assert r.status_code == 200, r.text
    synced = {s["ecosystem"]: s for s in r.json()["synced"]}
    assert synced["PyPI"]["created"] == len(pypi_docs)
    assert synced["npm"]["created"] == len(npm_docs)
    assert synced["npm"]["rejected"] == 1
    assert synced["PyPI"]["newlyVulnerable"] >= 1
    status = r.json()["ecosystems"]
    assert status["PyPI"]["state"] == "current"
    assert status["PyPI"]["lastSync"] is not None
    # The action deployed before the sync was rescanned.
    assert "dependency.vulnerable" in rules(api, "old")
    # A new deploy is checked for real now.
    assert deploy(api, "new", "requests==2.30.0\n").status_code == 400

    # Incremental: the same export is not downloaded again (ETag → 304).
    r = api.post(SYNC, json={"ecosystems": ["PyPI"]})
    assert r.json()["synced"][0]["status"] == "not-modified"
    assert bucket.requests[-1] == ("/PyPI/all.zip", "304")
    # One advisory changes: one is updated, the others are left alone.
    changed = [dict(d) for d in pypi_docs]
    changed[0] = {**changed[0], "modified": "2099-01-01T00:00:00Z", "summary": "updated"}
    bucket.files["/PyPI/all.zip"] = _export(changed)
    outcome = api.post(SYNC, json={"ecosystems": ["PyPI"]}).json()["synced"][0]
    assert (outcome["created"], outcome["updated"], outcome["unchanged"]) == (0, 1, len(pypi_docs) - 1)


def test_only_the_admin_namespace_syncs_and_bad_exports_are_refused(api, bucket):
    assert api.post(SYNC, json={}, ns="other").status_code == 403
    assert api.get(SYNC, ns="other").status_code == 403
    bucket.files["/PyPI/all.zip"] = b"this is not a zip"
    r = api.post(SYNC, json={"ecosystems": ["PyPI"]})
    assert r.status_code == 400
    assert set(r.json()) == {"error", "code"}
    r = api.post(SYNC, json={"ecosystems": ["RubyGems"]})
    assert r.status_code == 400
    r = api.post(SYNC, json={"ecosystems": ["npm"]})  # 404 from the bucket
    assert r.status_code == 503
    assert api.get(SYNC).json()["ecosystems"]["PyPI"]["state"] == "missing"


def test_missing_advisories_block_where_the_namespace_policy_says_so(api):
    policy = {"block": ["critical", "high"], "warn": ["medium", "low"], "advisories": "block"}
    assert api.put("/api/v1/namespaces/guest/scanpolicy", json=policy).status_code == 200
    assert api.get("/api/v1/namespaces/guest/scanpolicy").json()["advisories"] == "block"
    r = deploy(api, "strict", "requests==2.30.0\n")
    assert r.status_code == 400
    assert "advisories.unavailable" in r.json()["error"]
    assert deploy(api, "strict", "requests==2.30.0\n", acceptRisk="advisory sync runs nightly").status_code == 200
    # Code without dependencies needs no advisories.
    assert (
        api.put(f"{A}/nodeps", json={"exec": {"kind": "python:3", "code": "def main(a):\n    return a\n"}}).status_code
        == 200
    )


def test_stale_advisories_are_reported(api, bucket, pypi_docs):
    bucket.files["/PyPI/all.zip"] = _export(pypi_docs[:20])
    api.post(SYNC, json={"ecosystems": ["PyPI"]})
    syncer = api.client.app.state.services.advisory_sync
    later = api.client.portal.call(syncer.status, 10**13 * 2)
    assert later["PyPI"]["state"] == "stale"


def test_advisories_keep_themselves_current_in_the_background(api_factory, tmp_path, bucket, pypi_docs):
    import time

    bucket.files["/PyPI/all.zip"] = _export(pypi_docs[:10])
    bucket.files["/npm/all.zip"] = _export([])
    base = Settings(data_dir=tmp_path)
    api = api_factory(
        replace(base, scan=replace(base.scan, advisories_url=bucket.url, advisories_sync_interval_h=0.5 / 3600))
    )
    deadline = time.monotonic() + 60
    while api.get(SYNC).json()["ecosystems"]["PyPI"]["advisories"] < 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    status = api.get(SYNC).json()["ecosystems"]
    assert status["PyPI"]["advisories"] == 10
    assert status["PyPI"]["state"] == "current"
    # It keeps asking: later syncs are conditional (304) while nothing changed.
    while ("/PyPI/all.zip", "304") not in bucket.requests and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ("/PyPI/all.zip", "304") in bucket.requests


def test_hostile_exports_are_refused_or_filtered(pypi_docs):
    """Archive attacks on the export: traversal and non-JSON members are skipped, a declared
    bomb and junk are refused, another ecosystem's documents are never imported."""
    import stat as stat_module

    from stockade.errors import BadRequestError
    from stockade.services.advisory_sync import _verify_export

    doc = pypi_docs[0]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ok.json", json.dumps(doc))
        archive.writestr("../escape.json", json.dumps({**doc, "id": "ESCAPE"}))
        archive.writestr("/abs.json", json.dumps({**doc, "id": "ABS"}))
        link = zipfile.ZipInfo("link.json")
        link.external_attr = (stat_module.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr("notes.txt", "hello")
        archive.writestr("bad.json", "{")
        archive.writestr("npm.json", json.dumps({"id": "NPM-1", "modified": "2024-01-01T00:00:00Z", "affected": [
            {"package": {"ecosystem": "npm", "name": "x"}, "versions": ["1.0.0"]}]}))  # fmt: skip
    advisories, rejected = _verify_export(buffer.getvalue(), "PyPI", 10**9)
    assert [a.id for a in advisories] == [doc["id"]]
    assert rejected == 6

    with pytest.raises(BadRequestError):
        _verify_export(b"PK\x03\x04 junk", "PyPI", 10**9)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.json", b" " * (2 * 1024 * 1024))
    with pytest.raises(BadRequestError, match="unpacks beyond"):
        _verify_export(bomb.getvalue(), "PyPI", 1024 * 1024)
