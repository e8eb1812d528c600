"""Invoking actions and reading activations over the REST API."""

import time

A = "/api/v1/namespaces/_/actions"
ACT = "/api/v1/namespaces/_/activations"


def put(api, name, code, **extra):
    r = api.put(f"{A}/{name}", json={"exec": {"kind": "python:3", "code": code}, **extra})
    assert r.status_code == 200, r.text
    return r


def wait_for(api, activation_id, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = api.get(f"{ACT}/{activation_id}")
        if r.status_code == 200:
            return r.json()
        time.sleep(0.02)
    raise AssertionError(f"activation {activation_id} never recorded")


def test_non_blocking_invoke_returns_202_and_records(api):
    put(api, "hello", "def main(a):\n    return {'x': a.get('x')}\n")
    r = api.post(f"{A}/hello", json={"x": 1})
    assert r.status_code == 202
    aid = r.json()["activationId"]
    assert len(aid) == 32
    assert r.headers["x-openwhisk-activation-id"] == aid
    record = wait_for(api, aid)
    assert record["response"]["result"] == {"x": 1}


def test_blocking_success_record_shape(api):
    put(api, "hello", "def main(a):\n    print('hi there')\n    return {'ok': True}\n")
    r = api.post(f"{A}/hello?blocking=true", json={})
    assert r.status_code == 200
    body = r.json()
    assert body["response"]["status"] == "success"
    assert body["response"]["success"] is True
    assert "statusCode" not in body["response"]
    assert body["namespace"] == "guest"
    assert body["name"] == "hello"
    assert body["end"] >= body["start"]
    ann = {a["key"]: a["value"] for a in body["annotations"]}
    assert ann["path"] == "guest/hello"
    assert ann["kind"] == "python:3"
    assert ann["limits"]["timeout"] == 60000
    assert "waitTime" in ann
    assert "initTime" in ann
    second = api.post(f"{A}/hello?blocking=true", json={}).json()
    assert "initTime" not in {a["key"] for a in second["annotations"]}


def test_blocking_result_only(api):
    put(api, "hello", "def main(a):\n    return {'v': 2}\n")
    r = api.post(f"{A}/hello?blocking=true&result=true", json={})
    assert r.status_code == 200
    assert r.json() == {"v": 2}


def test_application_error_is_502(api):
    put(api, "fail", "def main(a):\n    return {'error': 'x'}\n")
    r = api.post(f"{A}/fail?blocking=true", json={})
    assert r.status_code == 502
    assert r.json()["response"]["status"] == "application error"
    assert r.json()["response"]["result"] == {"error": "x"}


def test_developer_error_is_502(api):
    put(api, "boom", "def main(a):\n    raise ValueError('no')\n")
    r = api.post(f"{A}/boom?blocking=true", json={})
    assert r.status_code == 502
    assert r.json()["response"]["status"] == "action developer error"


def test_array_result_is_returned_bare(api):
    put(api, "arr", "def main(a):\n    return [1, 2]\n")
    r = api.post(f"{A}/arr?blocking=true", json={})
    assert r.status_code == 200
    assert r.json() == [1, 2]


def test_blocking_timeout_parameter_range(api):
    put(api, "a", "def main(a):\n    return {}\n")
    for bad in ("0", "70000", "x"):
        r = api.post(f"{A}/a?blocking=true&timeout={bad}", json={})
        assert r.status_code == 400
        assert "Timeout must be number of milliseconds up to 60000." in r.json()["error"]


def test_invoke_body_too_large(api):
    put(api, "a", "def main(a):\n    return {}\n")
    r = api.post(f"{A}/a", json={"p": "x" * (1024 * 1024)})
    assert r.status_code == 413
    assert r.json()["error"].startswith("Request larger than allowed:")


def test_invoke_body_must_be_an_object(api):
    put(api, "a", "def main(a):\n    return {}\n")
    assert api.post(f"{A}/a", json=[1]).status_code == 400
    assert api.post(f"{A}/missing", json={}).status_code == 404


def test_per_minute_throttle(api_factory, make_settings):
    api = api_factory(make_settings(invocations_per_minute=2))
    put(api, "a", "def main(a):\n    return {}\n")
    assert api.post(f"{A}/a", json={}).status_code == 202
    assert api.post(f"{A}/a", json={}).status_code == 202
    r = api.post(f"{A}/a", json={})
    assert r.status_code == 429
    assert r.json()["error"] == "Too many requests in the last minute (count: 3, allowed: 2)."


def test_parameter_precedence(api):
    api.put(
        "/api/v1/namespaces/_/packages/pkg",
        json={"parameters": [{"key": "p", "value": 1}, {"key": "q", "value": "pkg"}]},
    )
    put(api, "pkg/show", "def main(a):\n    return a\n", parameters=[{"key": "p", "value": 2}])
    assert api.post(f"{A}/pkg/show?blocking=true&result=true", json={}).json() == {"p": 2, "q": "pkg"}
    assert api.post(f"{A}/pkg/show?blocking=true&result=true", json={"p": 3}).json()["p"] == 3
    api.put(
        "/api/v1/namespaces/_/packages/bnd",
        json={"binding": {"namespace": "_", "name": "pkg"}, "parameters": [{"key": "q", "value": "binding"}]},
    )
    r = api.post(f"{A}/bnd/show?blocking=true", json={})
    assert r.json()["response"]["result"] == {"p": 2, "q": "binding"}
    ann = {a["key"]: a["value"] for a in r.json()["annotations"]}
    assert ann["binding"] == "guest/bnd"
    assert ann["path"] == "guest/pkg/show"


def test_final_parameters_are_sealed(api):
    put(
        api,
        "sealed",
        "def main(a):\n    return a\n",
        parameters=[{"key": "p", "value": "bound"}, {"key": "n", "value": None}],
        annotations=[{"key": "final", "value": True}],
    )
    r = api.post(f"{A}/sealed?blocking=true", json={"p": "evil"})
    assert r.status_code == 400
    assert r.json()["error"] == "Request defines parameters that are not allowed (e.g., reserved properties)."
    ok = api.post(f"{A}/sealed?blocking=true&result=true", json={"n": "allowed"})
    assert ok.json() == {"p": "bound", "n": "allowed"}


def test_api_key_only_when_asked(api):
    put(api, "nokey", "def main(a):\n    return {}\n")
    api.post(f"{A}/nokey?blocking=true", json={})
    env = api.runner.calls[-1][2]
    assert "__OW_API_KEY" not in env
    assert env["__OW_NAMESPACE"] == "guest"
    assert env["__OW_ACTION_NAME"] == "/guest/nokey"
    assert len(env["__OW_ACTIVATION_ID"]) == 32
    assert env["__OW_DEADLINE"].isdigit()
    put(api, "withkey", "def main(a):\n    return {}\n", annotations=[{"key": "provide-api-key", "value": True}])
    api.post(f"{A}/withkey?blocking=true", json={})
    token = api.runner.calls[-1][2]["__OW_API_KEY"]
    assert token.startswith("tok.")  # a scoped, short-lived token, never the namespace key
    assert api.keys["guest"].split(":")[1] not in token


def test_init_parameters_go_to_env_not_args(api):
    put(api, "init", "def main(a):\n    return a\n", parameters=[{"key": "SECRET_ENV", "value": "v", "init": True}])
    result = api.post(f"{A}/init?blocking=true&result=true", json={}).json()
    assert "SECRET_ENV" not in result
    assert api.runner.calls[-1][2]["SECRET_ENV"] == "v"


def test_activation_result_logs_and_list(api):
    put(api, "hello", "def main(a):\n    print('line one')\n    return {'r': 1}\n")
    aid = api.post(f"{A}/hello?blocking=true", json={}).json()["activationId"]
    result = api.get(f"{ACT}/{aid}/result").json()
    assert result["status"] == "success"
    assert result["result"] == {"r": 1}
    logs = api.get(f"{ACT}/{aid}/logs").json()["logs"]
    assert any("stdout: line one" in line for line in logs)
    listed = api.get(f"{ACT}?name=hello&limit=1").json()
    assert listed[0]["activationId"] == aid
    assert listed[0]["statusCode"] == 0
    docs = api.get(f"{ACT}?docs=true").json()
    assert "response" in docs[0]
    assert api.get(f"{ACT}?count=true").json() == {"activations": 1}
    r = api.get(f"{ACT}?count=true&docs=true")
    assert r.status_code == 400
    assert r.json()["error"] == "The parameter 'docs' is not permitted with 'count'."


def test_activation_id_validation(api):
    r = api.get(f"{ACT}/abc")
    assert r.status_code == 400
    assert r.json()["error"] == "Activation id length is 3 but must be 32."
    r = api.get(f"{ACT}/{'z' * 32}")
    assert r.json()["error"] == "The activation id is not valid."
    assert api.get(f"{ACT}/{'a' * 32}").status_code == 404


def test_activations_of_other_namespace_are_invisible(api):
    put(api, "hello", "def main(a):\n    return {}\n")
    aid = api.post(f"{A}/hello?blocking=true", json={}).json()["activationId"]
    assert api.get(f"/api/v1/namespaces/_/activations/{aid}", ns="other").status_code == 404
    assert api.get("/api/v1/namespaces/guest/activations", ns="other").status_code == 403


def test_activation_list_filters(api):
    put(api, "a", "def main(x):\n    return {}\n")
    put(api, "b", "def main(x):\n    return {}\n")
    api.post(f"{A}/a?blocking=true", json={})
    api.post(f"{A}/b?blocking=true", json={})
    names = [x["name"] for x in api.get(f"{ACT}?name=a").json()]
    assert names == ["a"]
    assert api.get(f"{ACT}?name=a/b/c").status_code == 400
    assert api.get(f"{ACT}?since=x").status_code == 400
    assert api.get(f"{ACT}?since=99999999999999").json() == []
