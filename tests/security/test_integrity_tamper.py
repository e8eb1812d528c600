"""Attack: edit what runs directly in the database (SQLite and PostgreSQL), behind the API's back.

Each kind of stored artifact that decides what runs is edited after a legitimate deploy and
before the first run: the code blob, a zip's contents, a document pointing at another blob, the
entry point, a sequence's components, the runtime kind, a bound parameter (replaced by a plain
value, and a sealed box moved in from another action), an annotation. Every run is refused with
an OpenWhisk-shaped 502 ``integrity_failed``, nothing runs (no activation), and each raises an
``integrity.tamper`` event and an alert. An untouched action keeps running. Through a real
``stockade up`` on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import secrets
import sqlite3
import time
import zipfile
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from e2e.conftest import start_server, stop_server

pytestmark = [pytest.mark.e2e]

NS = "guest"
PLAIN = "def main(a):\n    return {'who': 'deployed'}\n\ndef other(a):\n    return {'who': 'other entry'}\n"
EVIL = "def main(a):\n    return {'who': 'attacker'}\n"


def _zip(source: str) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("__main__.py", source)
    return base64.b64encode(buf.getvalue()).decode()


class Db:
    """Raw SQL on the platform's database, as an attacker with database access would."""

    def __init__(self, fetch: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]], ph: Callable[[int], str]):
        self._fetch, self._ph = fetch, ph

    def q(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        # "?" placeholders in the test's SQL, numbered for PostgreSQL.
        parts = sql.split("?")
        text = parts[0] + "".join(self._ph(i + 1) + part for i, part in enumerate(parts[1:]))
        return self._fetch(text, args)

    def doc(self, name: str) -> dict[str, Any]:
        return json.loads(self.q("SELECT doc FROM entities WHERE namespace = ? AND name = ?", NS, name)[0][0])

    def put_doc(self, name: str, doc: dict[str, Any]) -> None:
        self.q("UPDATE entities SET doc = ? WHERE namespace = ? AND name = ?", json.dumps(doc), NS, name)

    def edit_doc(self, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        doc = self.doc(name)
        change(doc)
        self.put_doc(name, doc)

    def put_blob(self, digest: str, data: bytes) -> None:
        self.q("UPDATE code_blobs SET data = ? WHERE digest = ?", data, digest)


def sqlite_db(path) -> Db:
    def fetch(sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(path, timeout=30)
        try:
            rows = conn.execute(sql, args).fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()

    return Db(fetch, lambda _i: "?")


def postgres_db(url: str) -> Db:
    async def run(sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url)
        try:
            return [tuple(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return Db(lambda sql, args: asyncio.run(run(sql, args)), lambda i: f"${i}")


def _tamper_all(db: Db) -> dict[str, str]:
    """Edit one artifact per action; returns action → what was edited."""
    edits: dict[str, str] = {}

    db.put_blob(db.doc("blob")["exec"]["codeDigest"], EVIL.encode())
    edits["blob"] = "code blob"

    db.put_blob(db.doc("zipped")["exec"]["codeDigest"], _zip(EVIL).encode())
    edits["zipped"] = "zip contents"

    evil_digest = db.doc("evil")["exec"]["codeDigest"]
    db.edit_doc("pointer", lambda d: d["exec"].update(codeDigest=evil_digest))
    edits["pointer"] = "code digest pointing at another (legitimate) blob"

    db.edit_doc("entry", lambda d: d["exec"].update(main="other"))
    edits["entry"] = "entry point"

    db.edit_doc("seq", lambda d: d["exec"].update(components=[f"/{NS}/evil"]))
    edits["seq"] = "sequence components"

    db.edit_doc("kind", lambda d: d["exec"].update(kind="nodejs:20"))
    edits["kind"] = "runtime kind"

    def plain_param(d: dict[str, Any]) -> None:
        d["parameters"] = [{"key": "who", "value": "attacker"}]

    db.edit_doc("param", plain_param)
    edits["param"] = "bound parameter replaced by a plain value"

    donor = {p["key"]: p for p in db.doc("donor")["parameters"]}["who"]

    def moved(d: dict[str, Any]) -> None:
        d["parameters"] = [donor]

    db.edit_doc("moved", moved)
    edits["moved"] = "sealed parameter moved in from another action"

    db.edit_doc("annotated", lambda d: d.update(annotations=[{"key": "exec", "value": "python:3"}]))
    edits["annotated"] = "annotations (egress policy removed)"

    db.edit_doc("stampless", lambda d: d.pop("integrity"))
    edits["stampless"] = "integrity stamp removed"

    def package_param(d: dict[str, Any]) -> None:
        d["parameters"] = [{"key": "who", "value": "attacker"}]

    db.edit_doc("pkg", package_param)
    edits["pkg/inside"] = "package parameter bound into its action"
    return edits


def _deploy(client: httpx.Client, base: str) -> None:
    def put(name: str, body: dict[str, Any]) -> None:
        r = client.put(f"{base}/actions/{name}", json=body)
        assert r.status_code == 200, r.text

    py = {"kind": "python:3", "code": PLAIN}
    for name in ("blob", "pointer", "entry", "kind", "stampless", "healthy"):
        put(name, {"exec": py})
    put("evil", {"exec": {"kind": "python:3", "code": EVIL}})
    put("zipped", {"exec": {"kind": "python:3", "code": _zip(PLAIN)}})
    put("seq", {"exec": {"kind": "sequence", "components": [f"/{NS}/healthy"]}})
    for name in ("param", "moved", "donor"):
        put(name, {"exec": {"kind": "python:3", "code": "def main(a):\n    return {'who': a['who']}\n"},
                   "parameters": [{"key": "who", "value": name}]})  # fmt: skip
    annotated = {"exec": py, "annotations": [{"key": "policy", "value": {"egress": ["api.example.com:443"]}}]}
    put("annotated", annotated)
    r = client.put(f"{base}/packages/pkg", json={"parameters": [{"key": "who", "value": "package"}]})
    assert r.status_code == 200, r.text
    put("pkg/inside", {"exec": {"kind": "python:3", "code": "def main(a):\n    return {'who': a['who']}\n"}})


def _attack(server, db: Db) -> None:
    uuid, key = server.auth.split(":", 1)
    with httpx.Client(auth=(uuid, key), timeout=120) as client:
        base = f"{server.url}/api/v1/namespaces/_"
        _deploy(client, base)
        # Edited before any run, so no process holds a verified copy in memory.
        edits = _tamper_all(db)
        for name, what in edits.items():
            r = client.post(f"{base}/actions/{name}?blocking=true&result=true", json={})
            assert r.status_code == 502, f"{what}: {r.status_code} {r.text}"
            body = r.json()
            assert set(body) == {"error", "code"}, body
            assert "integrity check" in body["error"], body
            assert "attacker" not in r.text
            assert "other entry" not in r.text
        # The untouched action runs: the refusals are about the edits, not the platform.
        r = client.post(f"{base}/actions/healthy?blocking=true&result=true", json={})
        assert r.status_code == 200, r.text
        assert r.json() == {"who": "deployed"}
        # Nothing tampered ran: the only activation is the healthy one.
        activations = client.get(f"{base}/activations", params={"limit": 200}).json()
        assert {a["name"] for a in activations} == {"healthy"}
        # An event per refused action, and alerts (events are written behind: wait for them).
        deadline = time.monotonic() + 60
        while True:
            events = client.get(f"{base}/events", params={"type": "integrity.tamper", "limit": 200}).json()
            tampered = {
                e["action"] or "pkg/inside"
                for e in events
                if e["type"] == "integrity.tamper" and (e["action"] or e["details"].get("collection") == "packages")
            }
            alerts = [a for a in client.get(f"{base}/alerts").json() if a.get("type") == "integrity.tamper"]
            if (tampered >= set(edits) and alerts) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert tampered >= set(edits), sorted(set(edits) - tampered)
        assert all(e["severity"] == "critical" for e in events if e["type"] == "integrity.tamper")
        assert alerts, "no integrity.tamper alert"
        assert {a["action"] for a in alerts} >= set(edits) - {"pkg/inside"}
        # Deleting a tampered action works (the owner's way out), and a redeploy runs again.
        assert client.delete(f"{base}/actions/blob").status_code == 200
        assert client.put(f"{base}/actions/blob", json={"exec": {"kind": "python:3", "code": PLAIN}}).status_code == 200
        assert client.post(f"{base}/actions/blob?blocking=true&result=true", json={}).json() == {"who": "deployed"}
    log = server.log_path.read_text()
    assert "Traceback" not in log
    assert "unhandled" not in log.lower()


def test_database_edits_are_refused_on_sqlite(tmp_path):
    proc, server = start_server(tmp_path)
    try:
        _attack(server, sqlite_db(tmp_path / "stockade.db"))
    finally:
        stop_server(proc)


@pytest.mark.postgres
def test_database_edits_are_refused_on_postgresql(tmp_path, postgres_url):
    name = f"stockade_tamper_{secrets.token_hex(5)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    url = urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    try:
        proc, server = start_server(tmp_path, "--store", url)
        try:
            _attack(server, postgres_db(url))
        finally:
            stop_server(proc)
    finally:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def test_actions_from_before_integrity_stamps_keep_running(tmp_path):
    """Backfill: a database whose actions carry no stamps and that has no integrity key (as
    before this feature) is stamped once at start; afterwards, removing the key does not
    launder edits."""
    db = sqlite_db(tmp_path / "stockade.db")
    proc, server = start_server(tmp_path)
    uuid, key = server.auth.split(":", 1)
    try:
        with httpx.Client(auth=(uuid, key), timeout=120) as client:
            base = f"{server.url}/api/v1/namespaces/_"
            r = client.put(f"{base}/actions/old", json={"exec": {"kind": "python:3", "code": PLAIN}})
            assert r.status_code == 200, r.text
    finally:
        stop_server(proc)
    # Make it an old database: no stamps, no integrity key, and no system catalog (installed,
    # stamped, after the backfill at the next start).
    db.edit_doc("old", lambda d: d.pop("integrity"))
    db.q("DELETE FROM entities WHERE namespace = ?", "whisk.system")
    db.q("DELETE FROM data_keys WHERE namespace = ?", "/integrity")
    proc, server = start_server(tmp_path)
    try:
        with httpx.Client(auth=(uuid, key), timeout=120) as client:
            base = f"{server.url}/api/v1/namespaces/_"
            r = client.post(f"{base}/actions/old?blocking=true&result=true", json={})
            assert r.status_code == 200, r.text
            assert r.json() == {"who": "deployed"}
        assert "integrity.backfilled" in server.log_path.read_text()
    finally:
        stop_server(proc)
    assert "integrity" in db.doc("old")
    # The attacker edits the code and deletes the key to get a second backfill: refused.
    db.put_blob(db.doc("old")["exec"]["codeDigest"], EVIL.encode())
    db.q("DELETE FROM data_keys WHERE namespace = ?", "/integrity")
    proc, server = start_server(tmp_path)
    try:
        with httpx.Client(auth=(uuid, key), timeout=120) as client:
            base = f"{server.url}/api/v1/namespaces/_"
            r = client.post(f"{base}/actions/old?blocking=true&result=true", json={})
            assert r.status_code == 502, r.text
        assert "integrity.key_missing" in server.log_path.read_text()
    finally:
        stop_server(proc)
