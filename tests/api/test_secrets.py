"""The secrets store over the REST API: values go in, never come out, reach only declaring actions."""

S = "/api/v1/namespaces/_/secrets"
A = "/api/v1/namespaces/_/actions"
VALUE = "pg-password-91827364"
USES = "def main(a):\n    import os\n    return {'len': len(os.environ.get('DB_PASSWORD', ''))}\n"


def test_set_list_get_never_return_the_value(api):
    r = api.put(f"{S}/db", json={"value": VALUE})
    assert r.status_code == 200
    assert r.json()["version"] == 1
    assert VALUE not in r.text
    assert api.put(f"{S}/db", json={"value": "x"}).status_code == 409
    rotated = api.post(f"{S}/db", json={"value": VALUE + "-2"})
    assert rotated.json()["version"] == 2
    assert api.put(f"{S}/db?overwrite=true", json={"value": VALUE + "-3"}).json()["version"] == 3
    for path in (S, f"{S}/db"):
        body = api.get(path).text
        assert VALUE not in body
    meta = api.get(f"{S}/db").json()
    assert [v["version"] for v in meta["versions"]] == [3, 2, 1]
    assert meta["fingerprint"].startswith("hmac-sha256:")
    assert api.post(f"{S}/missing", json={"value": "x"}).status_code == 404


def test_bad_secret_requests(api):
    assert api.put(f"{S}/db", json={}).status_code == 400
    assert api.put(f"{S}/db", json={"value": 5}).status_code == 400
    assert api.put(f"{S}/a!b", json={"value": "x"}).status_code == 400
    assert api.put(f"{S}/big", json={"value": "x" * (64 * 1024 + 1)}).status_code == 413
    assert api.get(f"{S}/none").status_code == 404
    assert api.delete(f"{S}/none").status_code == 404
    assert api.get("/api/v1/namespaces/guest/secrets", ns="other").status_code == 403


def test_secret_reaches_only_the_declaring_action_and_access_is_recorded(api):
    api.put(f"{S}/db", json={"value": VALUE})
    declared = {
        "exec": {"kind": "python:3", "code": USES},
        "annotations": [{"key": "secrets", "value": {"DB_PASSWORD": "db"}}],
    }
    assert api.put(f"{A}/uses", json=declared).status_code == 200
    assert api.put(f"{A}/plain", json={"exec": {"kind": "python:3", "code": USES}}).status_code == 200
    record = api.post(f"{A}/uses?blocking=true", json={}).json()
    assert api.runner.calls[-1][2]["DB_PASSWORD"] == VALUE
    assert VALUE not in str(record)
    api.post(f"{A}/plain?blocking=true", json={})
    assert "DB_PASSWORD" not in api.runner.calls[-1][2]
    access = api.get(f"{S}/db").json()["recentAccess"]
    assert access[0]["action"] == "/guest/uses"
    assert access[0]["activationId"] == record["activationId"]
    listed = api.get("/api/v1/namespaces/_/activations?docs=true").json()
    assert VALUE not in str(listed)


def test_rotation_takes_effect_on_next_run(api):
    api.put(f"{S}/db", json={"value": "one"})
    declared = {
        "exec": {"kind": "python:3", "code": USES},
        "annotations": [{"key": "secrets", "value": {"DB_PASSWORD": "db"}}],
    }
    api.put(f"{A}/uses", json=declared)
    api.post(f"{A}/uses?blocking=true", json={})
    assert api.runner.calls[-1][2]["DB_PASSWORD"] == "one"
    api.post(f"{S}/db", json={"value": "two"})
    api.post(f"{A}/uses?blocking=true", json={})
    assert api.runner.calls[-1][2]["DB_PASSWORD"] == "two"


def test_references_are_validated_at_deploy(api):
    bad = [
        {"DB": "missing"},
        {"__OW_API_KEY": "db"},
        {"1BAD": "db"},
        ["db"],
        {"DB": 5},
    ]
    api.put(f"{S}/db", json={"value": VALUE})
    for refs in bad:
        body = {"exec": {"kind": "python:3", "code": USES}, "annotations": [{"key": "secrets", "value": refs}]}
        r = api.put(f"{A}/x", json=body)
        assert r.status_code == 400, refs
    assert api.get(f"{A}/x").status_code == 404


def test_deleted_secret_fails_the_activation_clearly(api):
    api.put(f"{S}/db", json={"value": VALUE})
    declared = {
        "exec": {"kind": "python:3", "code": USES},
        "annotations": [{"key": "secrets", "value": {"DB_PASSWORD": "db"}}],
    }
    api.put(f"{A}/uses", json=declared)
    assert api.delete(f"{S}/db").status_code == 200
    r = api.post(f"{A}/uses?blocking=true", json={})
    assert r.status_code == 502
    assert "secret 'db'" in r.json()["response"]["result"]["error"]
