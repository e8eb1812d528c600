"""The audit log: changes and denials are recorded; edits, deletions and reorderings are detected."""

import json
import sqlite3
import time

NS = "/api/v1/namespaces/guest"
CODE = {"exec": {"kind": "python:3", "code": "def main(a):\n    return {}\n"}}


def wait_entries(api, n):
    for _ in range(100):
        entries = api.get(f"{NS}/audit?limit=1000").json()
        if len(entries) >= n:
            return entries
        time.sleep(0.02)
    raise AssertionError("audit entries never arrived")


def make_history(api):
    api.put(f"{NS}/actions/a", json=CODE)
    api.put(f"{NS}/actions/b", json=CODE)
    api.delete(f"{NS}/actions/b")
    api.put(f"{NS}/secrets/s", json={"value": "v"})
    api.get("/api/v1/namespaces/guest/actions/a", ns="other")  # a denial, recorded in guest's chain
    return wait_entries(api, 5)


def test_changes_and_denials_are_recorded_with_who_what_where(api):
    entries = make_history(api)
    actions = [(e["action"], e["outcome"]) for e in entries]
    assert ("PUT actions", "200") in actions
    assert ("DELETE actions", "200") in actions
    assert ("PUT secrets", "200") in actions
    denial = next(e for e in entries if e["outcome"] == "403")
    assert denial["actor"] == "other"
    assert denial["source"]
    assert all(e["mac"] and e["seq"] for e in entries)
    verdict = api.get(f"{NS}/audit/verify").json()
    assert verdict["ok"] is True
    assert verdict["entries"] == len(entries)


def test_auditor_reads_nobody_edits(api):
    key = api.post(f"{NS}/keys", json={"subject": "aud", "role": "auditor"}).json()["key"]
    import base64

    h = {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()}
    assert api.client.get(f"{NS}/audit", headers=h).status_code == 200
    for method in ("PUT", "POST", "DELETE"):
        assert api.client.request(method, f"{NS}/audit", headers=h).status_code == 404


def db(api):
    return sqlite3.connect(api.client.app.state.services.settings.data_dir / "db.sqlite")


def tamper(api, sql, *args):
    conn = db(api)
    conn.execute(sql, args)
    conn.commit()
    conn.close()


def test_edited_entry_is_detected(api):
    make_history(api)
    conn = db(api)
    seq, entry = conn.execute(
        "SELECT seq, entry FROM audit_log WHERE chain='guest' ORDER BY seq LIMIT 1 OFFSET 1"
    ).fetchone()
    doc = json.loads(entry)
    doc["actor"] = "someone-else"
    conn.execute("UPDATE audit_log SET entry = ? WHERE chain='guest' AND seq = ?", (json.dumps(doc), seq))
    conn.commit()
    verdict = api.get(f"{NS}/audit/verify").json()
    assert verdict["ok"] is False
    assert any(f"entry {seq}" in p for p in verdict["problems"])


def test_deleted_entry_is_detected(api):
    make_history(api)
    tamper(api, "DELETE FROM audit_log WHERE chain='guest' AND seq = 2")
    verdict = api.get(f"{NS}/audit/verify").json()
    assert verdict["ok"] is False
    assert any("entry 2 is missing" in p for p in verdict["problems"])


def test_reordered_entries_are_detected(api):
    make_history(api)
    conn = db(api)
    rows = conn.execute(
        "SELECT seq, entry, at FROM audit_log WHERE chain='guest' AND seq IN (2, 3) ORDER BY seq"
    ).fetchall()
    conn.execute("UPDATE audit_log SET entry = ?, at = ? WHERE chain='guest' AND seq = 2", (rows[1][1], rows[1][2]))
    conn.execute("UPDATE audit_log SET entry = ?, at = ? WHERE chain='guest' AND seq = 3", (rows[0][1], rows[0][2]))
    conn.commit()
    verdict = api.get(f"{NS}/audit/verify").json()
    assert verdict["ok"] is False


def test_forged_chain_without_the_key_is_detected(api):
    """Recomputing a plain hash chain is not enough: the MAC key is not in the database."""
    import hashlib

    make_history(api)
    conn = db(api)
    rows = conn.execute("SELECT seq, at, entry FROM audit_log WHERE chain='guest' ORDER BY seq").fetchall()
    prev = "0" * 64
    for seq, _at, entry in rows:
        doc = json.loads(entry)
        doc["outcome"] = "200"
        mac = hashlib.sha256(prev.encode() + json.dumps(doc).encode()).hexdigest()
        conn.execute(
            "UPDATE audit_log SET entry = ?, mac = ? WHERE chain='guest' AND seq = ?", (json.dumps(doc), mac, seq)
        )
        prev = mac
    conn.commit()
    assert api.get(f"{NS}/audit/verify").json()["ok"] is False
