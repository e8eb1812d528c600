"""Nothing acknowledged is lost: journalled activations, recovery at start-up, audit entries
committed with their change (issue 17).

A crash is simulated by snapshotting the SQLite database while the first platform is still
running (``sqlite3`` backup: exactly what was committed at that instant) and starting a second
platform on the snapshot.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import threading
from pathlib import Path

from starlette.testclient import TestClient

from stockade.api.app import Platform, create_app
from stockade.config import Settings
from stockade.store import open_sqlite_store
from stockade.testing import InProcessRunner

CODE = "def main(args):\n    return {'x': args.get('x')}\n"
SECRET = "hunter2-request-value"


class HangingRunner(InProcessRunner):
    """Runs nothing until released (the activation is 'in flight' when the snapshot is taken)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.started = 0

    async def run_action(self, request):
        self.started += 1
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        return await super().run_action(request)


class SlowRunner(InProcessRunner):
    """Each run takes a few event-loop turns and 20 ms (long enough for any queued write to commit)."""

    async def run_action(self, request):
        await asyncio.sleep(0.02)
        return await super().run_action(request)


def _app(data_dir: Path, db: Path, runner, keys: dict[str, str], *, bootstrap: bool):
    async def create(services):
        if bootstrap:
            keys["guest"] = (await services.namespaces.create("guest")).token

    platform = Platform(settings=Settings(data_dir=data_dir), store=open_sqlite_store(db), runner=runner)
    platform.on_open.append(create)
    return create_app(platform)


def _auth(keys):
    return {"Authorization": "Basic " + base64.b64encode(keys["guest"].encode()).decode()}


def _snapshot(db: Path, to: Path) -> None:
    src = sqlite3.connect(db)
    dst = sqlite3.connect(to)
    src.backup(dst)
    src.close()
    dst.close()


def test_accepted_activations_survive_a_crash_and_end_in_one_terminal_record(tmp_path):
    """202'd non-blocking invokes are re-run after a crash (attempts 2); blocking ones are closed."""
    keys: dict[str, str] = {}
    runner = HangingRunner()
    db = tmp_path / "db.sqlite"
    crashed = tmp_path / "crashed.sqlite"
    base = "/api/v1/namespaces/_/actions/echo"
    with TestClient(_app(tmp_path, db, runner, keys, bootstrap=True)) as client:
        h = _auth(keys)
        assert client.put(base, headers=h, json={"exec": {"kind": "python:3", "code": CODE}}).status_code == 200
        async_ids = [client.post(base, headers=h, json={"x": SECRET}).json()["activationId"] for _ in range(5)]
        r = client.post(base + "?blocking=true&timeout=50", headers=h, json={"x": 1})
        assert r.status_code == 202
        blocking_id = r.json()["activationId"]
        _snapshot(db, crashed)  # the "kill -9": whatever was committed now is all there is
        raw = sqlite3.connect(crashed).execute("SELECT doc FROM activations_pending").fetchall()
        assert len(raw) == 6
        assert all(SECRET not in row[0] for row in raw), "request parameters must be stored sealed"
        runner.release.set()

    second = InProcessRunner()
    with TestClient(_app(tmp_path, crashed, second, keys, bootstrap=False)) as client:
        h = _auth(keys)
        for activation_id in async_ids:
            for _ in range(200):
                r = client.get(f"/api/v1/namespaces/_/activations/{activation_id}", headers=h)
                if r.status_code == 200:
                    break
            assert r.status_code == 200, activation_id
            doc = r.json()
            assert doc["response"]["result"] == {"x": SECRET}
            assert {"key": "attempts", "value": 2} in doc["annotations"]
        closed = client.get(f"/api/v1/namespaces/_/activations/{blocking_id}", headers=h).json()
        assert closed["response"]["status"] == "whisk internal error"
        assert "not re-run" in closed["response"]["result"]["error"]
    conn = sqlite3.connect(crashed)
    assert conn.execute("SELECT COUNT(*) FROM activations_pending").fetchone() == (0,)
    ids = [*async_ids, blocking_id]
    counts = dict(conn.execute("SELECT activation_id, COUNT(*) FROM activations GROUP BY activation_id").fetchall())
    assert {i: counts.get(i, 0) for i in ids} == dict.fromkeys(ids, 1)
    assert len(second.calls) == 5  # each non-blocking one re-ran once; the blocking one never


def test_a_blocking_response_is_sent_only_after_its_record_is_committed(tmp_path):
    keys: dict[str, str] = {}
    db = tmp_path / "db.sqlite"
    base = "/api/v1/namespaces/_/actions/echo"
    with TestClient(_app(tmp_path, db, InProcessRunner(), keys, bootstrap=True)) as client:
        h = _auth(keys)
        client.put(base, headers=h, json={"exec": {"kind": "python:3", "code": CODE}})
        r = client.post(base + "?blocking=true", headers=h, json={"x": 7})
        assert r.status_code == 200
        conn = sqlite3.connect(db)
        row = conn.execute(
            "SELECT doc FROM activations WHERE activation_id = ?", (r.json()["activationId"],)
        ).fetchone()
        assert row is not None
        assert json.loads(row[0])["result"] == {"x": 7}
        assert conn.execute("SELECT COUNT(*) FROM activations_pending").fetchone() == (0,)


def test_a_blocking_invoke_answered_with_its_result_never_seals_or_writes_a_journal_row(tmp_path):
    # Issue 16: nothing is acknowledged before a blocking response, so the journal row (a seal
    # and an insert, then a delete) is written only when the blocking wait ends first (the 202).
    keys: dict[str, str] = {}
    db = tmp_path / "db.sqlite"
    base = "/api/v1/namespaces/_/actions/echo"
    with TestClient(_app(tmp_path, db, SlowRunner(), keys, bootstrap=True)) as client:
        h = _auth(keys)
        client.put(base, headers=h, json={"exec": {"kind": "python:3", "code": CODE}})
        conn = sqlite3.connect(db, isolation_level=None)
        conn.executescript(
            "CREATE TABLE journal_inserts (activation_id TEXT);"
            "CREATE TRIGGER count_journal AFTER INSERT ON activations_pending "
            "BEGIN INSERT INTO journal_inserts VALUES (NEW.activation_id); END;"
        )
        answered = [client.post(base + "?blocking=true", headers=h, json={"x": i}) for i in range(10)]
        assert [r.status_code for r in answered] == [200] * 10
        accepted = client.post(base, headers=h, json={"x": "async"})
        assert accepted.status_code == 202
        inserted = [row[0] for row in conn.execute("SELECT activation_id FROM journal_inserts")]
        assert inserted == [accepted.json()["activationId"]]


def test_an_acknowledged_change_has_its_audit_entry_committed_with_it(tmp_path):
    """The entry is in the database the moment the 200 arrives (not written behind)."""
    keys: dict[str, str] = {}
    db = tmp_path / "db.sqlite"
    with TestClient(_app(tmp_path, db, InProcessRunner(), keys, bootstrap=True)) as client:
        h = _auth(keys)
        for i in range(20):
            tid = f"tid-change-{i}"
            r = client.put(
                f"/api/v1/namespaces/_/actions/a{i}",
                headers={**h, "X-Request-ID": tid},
                json={"exec": {"kind": "python:3", "code": CODE}},
            )
            assert r.status_code == 200
            _snapshot(db, tmp_path / "now.sqlite")
            conn = sqlite3.connect(tmp_path / "now.sqlite")
            rows = conn.execute("SELECT entry FROM audit_log UNION ALL SELECT entry FROM audit_outbox").fetchall()
            conn.close()
            (tmp_path / "now.sqlite").unlink()
            mine = [json.loads(r[0]) for r in rows if tid in r[0]]
            assert len(mine) == 1, f"change {i} has {len(mine)} audit entries at acknowledgement"
            assert mine[0]["action"] == "PUT actions"
            assert mine[0]["outcome"] == "200"
        verdict = client.get("/api/v1/namespaces/_/audit/verify", headers=h).json()
        assert verdict["ok"] is True
        assert verdict["entries"] >= 20


def test_a_refused_change_commits_no_entry_with_a_change_it_did_not_make(tmp_path):
    keys: dict[str, str] = {}
    db = tmp_path / "db.sqlite"
    with TestClient(_app(tmp_path, db, InProcessRunner(), keys, bootstrap=True)) as client:
        h = _auth(keys)
        body = {"exec": {"kind": "python:3", "code": CODE}}
        assert client.put("/api/v1/namespaces/_/actions/a", headers=h, json=body).status_code == 200
        r = client.put("/api/v1/namespaces/_/actions/a", headers={**h, "X-Request-ID": "tid-dup"}, json=body)
        assert r.status_code == 409
        entries = client.get("/api/v1/namespaces/_/audit?limit=1000", headers=h).json()
        mine = [e for e in entries if e.get("details", {}).get("transactionId") == "tid-dup"]
        assert [e["outcome"] for e in mine] == ["409"]


def _crash_with_in_flight(tmp_path, keys, *, blocking_too: bool = False):
    """Accept activations that never finish, snapshot the database (the crash); their ids."""
    runner = HangingRunner()
    db = tmp_path / "db.sqlite"
    crashed = tmp_path / "crashed.sqlite"
    code = {"exec": {"kind": "python:3", "code": CODE}}
    with TestClient(_app(tmp_path, db, runner, keys, bootstrap=True)) as client:
        h = _auth(keys)
        for name in ("echo", "gone"):
            assert client.put(f"/api/v1/namespaces/_/actions/{name}", headers=h, json=code).status_code == 200
        ids = {
            name: client.post(f"/api/v1/namespaces/_/actions/{name}", headers=h, json={"x": 1}).json()["activationId"]
            for name in ("echo", "gone")
        }
        ids["echo2"] = client.post("/api/v1/namespaces/_/actions/echo", headers=h, json={"x": 2}).json()["activationId"]
        if blocking_too:
            r = client.post("/api/v1/namespaces/_/actions/echo?blocking=true&timeout=50", headers=h, json={"x": 3})
            ids["blocking"] = r.json()["activationId"]
        assert client.delete("/api/v1/namespaces/_/actions/gone", headers=h).status_code == 200
        _snapshot(db, crashed)
        runner.release.set()
    return crashed, ids


def _wait_record(client, h, activation_id):
    for _ in range(300):
        r = client.get(f"/api/v1/namespaces/_/activations/{activation_id}", headers=h)
        if r.status_code == 200:
            return r.json()
    raise AssertionError(f"{activation_id} has no record")


def test_recovery_gives_up_after_three_attempts_and_closes_what_it_cannot_rerun(tmp_path):
    keys: dict[str, str] = {}
    crashed, ids = _crash_with_in_flight(tmp_path, keys)
    conn = sqlite3.connect(crashed)
    conn.execute("UPDATE activations_pending SET attempts = 3 WHERE activation_id = ?", (ids["echo"],))
    conn.commit()
    conn.close()
    runner = InProcessRunner()
    with TestClient(_app(tmp_path, crashed, runner, keys, bootstrap=False)) as client:
        h = _auth(keys)
        gave_up = _wait_record(client, h, ids["echo"])
        assert gave_up["response"]["status"] == "whisk internal error"
        assert "3 times" in gave_up["response"]["result"]["error"]
        gone = _wait_record(client, h, ids["gone"])
        assert "could not re-run it" in gone["response"]["result"]["error"]
        rerun = _wait_record(client, h, ids["echo2"])
        assert rerun["response"]["status"] == "success"
        assert {"key": "attempts", "value": 2} in rerun["annotations"]
    assert len(runner.calls) == 1


def test_a_journal_row_edited_behind_the_platform_is_closed_not_run(tmp_path):
    """Attacker with database access: swapping sealed requests between rows, or flipping a blocking
    activation to non-blocking to have it run twice, is detected and nothing runs."""
    keys: dict[str, str] = {}
    crashed, ids = _crash_with_in_flight(tmp_path, keys, blocking_too=True)
    conn = sqlite3.connect(crashed)
    docs = dict(conn.execute("SELECT activation_id, doc FROM activations_pending").fetchall())
    swapped = json.loads(docs[ids["echo"]])
    swapped["request"] = json.loads(docs[ids["echo2"]])["request"]  # another row's valid box
    conn.execute("UPDATE activations_pending SET doc = ? WHERE activation_id = ?", (json.dumps(swapped), ids["echo"]))
    conn.execute("UPDATE activations_pending SET blocking = 0 WHERE activation_id = ?", (ids["blocking"],))
    conn.commit()
    conn.close()
    runner = InProcessRunner()
    with TestClient(_app(tmp_path, crashed, runner, keys, bootstrap=False)) as client:
        h = _auth(keys)
        tampered = _wait_record(client, h, ids["echo"])
        assert "failed its integrity check" in tampered["response"]["result"]["error"]
        flipped = _wait_record(client, h, ids["blocking"])
        assert "not re-run" in flipped["response"]["result"]["error"]
        _wait_record(client, h, ids["echo2"])
        events = client.get("/api/v1/namespaces/_/events?limit=100", headers=h)
        assert events.status_code == 200
        assert any(e.get("type") == "secret.decrypt_failed" for e in events.json())
    assert [call[1] for call in runner.calls] == [{"x": 2}]  # only the untouched one re-ran


def test_an_operator_change_outside_http_commits_its_entry_with_it(tmp_path):
    """``AuditLog.changing`` (for operator commands): the entry commits with the change, or not at all."""
    from stockade.services import AuditEvent
    from stockade.store import Put

    keys: dict[str, str] = {}
    db = tmp_path / "db.sqlite"
    app = _app(tmp_path, db, InProcessRunner(), keys, bootstrap=True)
    with TestClient(app) as client:
        services = app.state.services

        async def change():
            event = AuditEvent("guest", "operator", "admin.test", "/x", "200")
            async with services.audit.changing(lambda: event) as intent:
                await services.store.apply([Put("guest", "x", "actions", {"v": 1}, 1)])
            assert intent.committed
            async with services.audit.changing(lambda: event) as untouched:
                await services.store.get_entity("guest", "x")  # a read: nothing committed
            assert not untouched.committed

        client.portal.call(change)
        h = _auth(keys)
        entries = client.get("/api/v1/namespaces/_/audit?limit=1000", headers=h).json()
        assert [e["action"] for e in entries if e["action"] == "admin.test"] == ["admin.test"]
        assert client.get("/api/v1/namespaces/_/audit/verify", headers=h).json()["ok"] is True
