"""Threats to stored parameters and secrets: plaintext at rest, swapped ciphertexts, wrong master key."""

import hashlib
import sqlite3

import pytest
from starlette.testclient import TestClient

from stockade.api.app import Platform, create_app
from stockade.config import Settings
from stockade.security import MasterKey, new_key, write_keyring
from stockade.store import open_sqlite_store
from stockade.testing import InProcessRunner

SECRET = "sUp3r-s3cret-Value-7731"
A = "/api/v1/namespaces/_/actions"
ECHO = "def main(a):\n    return a\n"


def start(tmp_path, keyring=None):
    keys = {}

    async def bootstrap(services):
        if await services.store.get_namespace("guest") is None:
            keys["guest"] = (await services.namespaces.create("guest")).token

    platform = Platform(
        settings=Settings(data_dir=tmp_path),
        store=open_sqlite_store(tmp_path / "db.sqlite"),
        runner=InProcessRunner(),
        keyring=keyring,
    )
    platform.on_open.append(bootstrap)
    return create_app(platform), keys


def auth(token):
    import base64

    return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}


def db_bytes(tmp_path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.glob("db.sqlite*"))


def test_database_holds_no_plaintext_parameter_or_secret(tmp_path):
    app, keys = start(tmp_path)
    with TestClient(app) as client:
        h = auth(keys["guest"])
        length = "def main(a):\n    return {'length': len(a['pw'])}\n"
        client.put(
            f"{A}/a",
            headers=h,
            json={"exec": {"kind": "python:3", "code": length}, "parameters": [{"key": "pw", "value": SECRET}]},
        )
        client.put(
            "/api/v1/namespaces/_/packages/p", headers=h, json={"parameters": [{"key": "pw", "value": SECRET + "-pkg"}]}
        )
        client.put(
            "/api/v1/namespaces/_/triggers/t",
            headers=h,
            json={"parameters": [{"key": "pw", "value": SECRET + "-trig"}]},
        )
        client.put("/api/v1/namespaces/_/secrets/db", headers=h, json={"value": SECRET + "-secret"})
        listed = client.get(f"{A}/a", headers=h).json()
        assert SECRET not in str(listed)
        assert listed["parameters"][0]["value"].startswith("hmac-sha256:")
        result = client.post(f"{A}/a?blocking=true&result=true", headers=h, json={}).json()
        assert result == {"length": len(SECRET)}  # the action itself gets the value
    raw = db_bytes(tmp_path)
    assert raw
    assert SECRET.encode() not in raw
    assert b"s3cret" not in raw


def _swap_parameter(db_path, from_name, to_name):
    conn = sqlite3.connect(db_path)
    import json

    docs = {n: json.loads(d) for n, d in conn.execute("SELECT name, doc FROM entities WHERE collection='actions'")}
    docs[to_name]["parameters"][0]["sealed"] = docs[from_name]["parameters"][0]["sealed"]
    conn.execute("UPDATE entities SET doc = ? WHERE name = ?", (json.dumps(docs[to_name]), to_name))
    conn.commit()
    conn.close()


def test_ciphertext_swapped_between_actions_fails_to_decrypt(tmp_path):
    app, keys = start(tmp_path)
    with TestClient(app) as client:
        h = auth(keys["guest"])
        for name, value in (("alice", "alice-password"), ("mallory", "mallory-password")):
            body = {"exec": {"kind": "python:3", "code": ECHO}, "parameters": [{"key": "pw", "value": value}]}
            assert client.put(f"{A}/{name}", headers=h, json=body).status_code == 200
    _swap_parameter(tmp_path / "db.sqlite", "alice", "mallory")
    app, _ = start(tmp_path)
    with TestClient(app) as client:
        r = client.post(f"{A}/mallory?blocking=true", headers=h, json={})
        # The swap is refused before decryption by the action's integrity stamp (issue 13); the
        # ciphertext's location binding would refuse it too (test_integrity_tamper.py, "moved").
        assert r.status_code == 502
        assert r.json()["error"].startswith("The action failed its integrity check")
        assert "alice-password" not in r.text
        ok = client.post(f"{A}/alice?blocking=true&result=true", headers=h, json={})
        assert ok.json() == {"pw": "alice-password"}


def test_wrong_master_key_refuses_to_start_and_touches_nothing(tmp_path):
    app, keys = start(tmp_path)
    with TestClient(app) as client:
        h = auth(keys["guest"])
        body = {"exec": {"kind": "python:3", "code": ECHO}, "parameters": [{"key": "pw", "value": "x"}]}
        client.put(f"{A}/a", headers=h, json=body)
    before = hashlib.sha256(db_bytes(tmp_path)).hexdigest()
    wrong = tmp_path / "wrong.key"
    write_keyring(wrong, [MasterKey(new_key())])
    from stockade.security import load_keyring

    app, _ = start(tmp_path, keyring=load_keyring(wrong))
    with pytest.raises(Exception, match="master key does not match this database"), TestClient(app):
        pass
    assert hashlib.sha256(db_bytes(tmp_path)).hexdigest() == before
