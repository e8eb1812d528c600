"""Actions over the REST API, per the OpenWhisk compatibility checklist."""

import base64
import io
import sys
import zipfile

PY = "def main(args):\n    return {'greeting': 'hello ' + args.get('name', 'world')}\n"
A = "/api/v1/namespaces/_/actions"


def put_py(api, name, code=PY, **extra):
    body = {"exec": {"kind": "python:3", "code": code}, **extra}
    return api.put(f"{A}/{name}", json=body)


def test_info_endpoints_need_no_auth(api):
    root = api.client.get("/")
    assert root.status_code == 200
    body = root.json()
    assert body["api_paths"] == ["/api/v1"]
    assert body["limits"]["max_action_memory"] == 512 * 1024 * 1024
    assert {r["kind"] for r in body["runtimes"]["python"]} == {
        "python:3",
        f"python:{sys.version_info.major}.{sys.version_info.minor}",
    }
    v1 = api.client.get("/api/v1").json()
    assert v1["api_version_path"] == "v1"
    assert "swagger_paths" in v1


def test_missing_auth_is_401_with_challenge(api):
    r = api.client.get("/api/v1/namespaces")
    assert r.status_code == 401
    assert r.json()["error"] == "The resource requires authentication, which was not supplied with the request"
    assert r.headers["www-authenticate"].startswith('Basic realm="OpenWhisk secure realm"')


def test_wrong_key_is_401(api):
    uuid = api.keys["guest"].split(":")[0]
    token = base64.b64encode(f"{uuid}:{'0' * 64}".encode()).decode()
    r = api.client.get("/api/v1/namespaces", headers={"Authorization": f"Basic {token}"})
    assert r.status_code == 401
    assert r.json()["error"] == "The supplied authentication is invalid"
    garbage = api.client.get("/api/v1/namespaces", headers={"Authorization": "Basic !!!"})
    assert garbage.status_code == 401


def test_namespaces_lists_callers_namespace(api):
    assert api.get("/api/v1/namespaces").json() == ["guest"]


def test_error_code_is_the_request_id(api):
    r = api.get(f"{A}/nope", headers={"X-Request-ID": "abc"})
    assert r.status_code == 404
    assert r.json() == {"error": "The requested resource does not exist.", "code": "abc"}
    assert r.headers["x-request-id"] == "abc"
    r2 = api.get(f"{A}/nope")
    assert r2.json()["code"] == r2.headers["x-request-id"]
    assert len(r2.json()["code"]) == 32


def test_options_answers_cors(api):
    r = api.client.options(A)
    assert r.status_code == 200
    assert r.headers["access-control-allow-methods"] == "GET, DELETE, POST, PUT, HEAD"
    assert r.headers["access-control-allow-origin"] == "*"


def test_unknown_route_and_verb_are_404(api):
    r = api.get("/api/v1/nothing/here")
    assert r.status_code == 404
    assert r.json()["error"] == "The requested resource could not be found."
    r = api.request("PATCH", f"{A}/x")
    assert r.status_code == 404


def test_create_resolves_kind_and_defaults(api):
    r = api.put(f"{A}/hello", json={"exec": {"kind": "nodejs:default", "code": "function main(){return {}}"}})
    assert r.status_code == 200
    body = r.json()
    assert body["exec"]["kind"] == "nodejs:20"
    assert body["version"] == "0.0.1"
    assert body["limits"] == {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}
    ann = {a["key"]: a["value"] for a in body["annotations"]}
    assert ann == {"exec": "nodejs:20", "provide-api-key": False}
    assert body["namespace"] == "guest"


def test_put_twice_without_overwrite_conflicts(api):
    assert put_py(api, "a").status_code == 200
    r = put_py(api, "a")
    assert r.status_code == 409
    assert r.json()["error"] == "resource already exists"


def test_update_bumps_version_and_merges_annotations(api):
    put_py(api, "a", annotations=[{"key": "x", "value": 1}, {"key": "y", "value": 2}])
    r = api.put(f"{A}/a?overwrite=true", json={"annotations": [{"key": "z", "value": 3}], "delAnnotations": ["x"]})
    assert r.status_code == 200
    body = r.json()
    assert body["version"] == "0.0.2"
    ann = {a["key"]: a["value"] for a in body["annotations"]}
    assert "x" not in ann
    assert ann["y"] == 2
    assert ann["z"] == 3
    assert body["exec"]["code"] == PY


def test_create_without_exec(api):
    r = api.put(f"{A}/a", json={})
    assert r.status_code == 400
    assert r.json()["error"] == "exec undefined"


def test_unknown_kind(api):
    r = api.put(f"{A}/a", json={"exec": {"kind": "cobol:1", "code": "x"}})
    assert r.status_code == 400
    assert "The specified runtime 'cobol:1' is not supported by this platform." in r.json()["error"]


def test_limits_out_of_range(api):
    r = put_py(api, "a", limits={"memory": 1024})
    assert r.status_code == 400
    assert r.json()["error"] == "memory size 1024 MB exceeds allowed threshold of 512 MB"
    r = put_py(api, "a", limits={"timeout": 50})
    assert r.json()["error"] == "duration 50 milliseconds below allowed threshold of 100 milliseconds"
    r = put_py(api, "a", limits={"logs": 11})
    assert r.json()["error"] == "log size 11 MB exceeds allowed threshold of 10 MB"
    r = put_py(api, "a", limits={"memory": "big"})
    assert r.status_code == 400
    assert api.get(f"{A}/a").status_code == 404


def test_parameters_too_large(api):
    r = put_py(api, "a", parameters=[{"key": "p", "value": "x" * (1024 * 1024)}])
    assert r.status_code == 413
    assert r.json()["error"].startswith("parameters larger than allowed:")
    assert api.get(f"{A}/a").status_code == 404


def test_binary_is_computed_from_code(api):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("__main__.py", PY)
    code = base64.b64encode(buf.getvalue()).decode()
    assert put_py(api, "zipped", code=code).json()["exec"]["binary"] is True
    assert put_py(api, "plain").json()["exec"]["binary"] is False


def test_get_with_and_without_code(api):
    put_py(api, "a")
    assert api.get(f"{A}/a").json()["exec"]["code"] == PY
    assert "code" not in api.get(f"{A}/a?code=false").json()["exec"]


def test_missing_action_is_404(api):
    r = api.get(f"{A}/missing")
    assert r.status_code == 404
    assert r.json()["error"] == "The requested resource does not exist."


def test_names_share_one_key_space(api):
    put_py(api, "thing")
    r = api.put("/api/v1/namespaces/_/triggers/thing", json={})
    assert r.status_code == 409
    assert r.json()["error"] == "Resource by this name exists but is not in this collection."
    assert api.get("/api/v1/namespaces/_/triggers/thing").status_code == 409


def test_illegal_names(api):
    r = put_py(api, "a!b")
    assert r.status_code == 400
    assert r.json()["error"] == "The name of the entity contains illegal characters."
    long = "a" * 257
    r = put_py(api, long)
    assert r.json()["error"] == "Name segement longer than allowed: 257 > 256."
    assert put_py(api, "a & b.c@d-e").status_code == 200


def test_list_paging_and_count(api):
    for i in range(3):
        put_py(api, f"a{i}")
    r = api.get(f"{A}?limit=201")
    assert r.status_code == 400
    assert "is not in the range of 0 to 200 for actions" in r.json()["error"]
    assert api.get(f"{A}?count=true").json() == {"actions": 3}
    assert len(api.get(f"{A}?limit=2").json()) == 2
    assert len(api.get(f"{A}?limit=2&skip=2").json()) == 1
    assert api.get(f"{A}?skip=-1").status_code == 400
    assert api.get(f"{A}?limit=x").status_code == 400


def test_root_list_includes_packaged_actions(api):
    api.put("/api/v1/namespaces/_/packages/pkg", json={})
    put_py(api, "pkg/inner")
    put_py(api, "outer")
    items = api.get(A).json()
    by_name = {i["name"]: i for i in items}
    assert by_name["inner"]["namespace"] == "guest/pkg"
    assert by_name["inner"]["exec"] == {"binary": False}
    assert "code" not in by_name["outer"]["exec"]
    only_pkg = api.get(f"{A}/pkg/").json()
    assert [i["name"] for i in only_pkg] == ["inner"]


def test_delete_returns_the_action(api):
    put_py(api, "a")
    r = api.delete(f"{A}/a")
    assert r.status_code == 200
    assert r.json()["name"] == "a"
    assert api.delete(f"{A}/a").status_code == 404


def test_malformed_json_and_wrong_content_type(api):
    r = api.put(f"{A}/a", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"].startswith("The request content was malformed:\n")
    r = api.put(f"{A}/a", content=b"x=1", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    r = api.put(f"{A}/a", json={"exec": "nope"})
    assert r.status_code == 400
    r = api.put(f"{A}/a", json={"exec": {"kind": "python:3", "code": 5}})
    assert r.json()["error"].endswith(
        "'code' must be a string or attachment object defined in 'exec' for 'python:3' actions"
    )
    assert api.get(f"{A}/a").status_code == 404


def test_other_namespace_is_forbidden(api):
    put_py(api, "secret")
    r = api.get("/api/v1/namespaces/guest/actions/secret", ns="other")
    assert r.status_code == 403
    assert r.json()["error"] == "The supplied authentication is not authorized to access 'guest/secret'."
    missing = api.get("/api/v1/namespaces/guest/actions/nothing", ns="other")
    assert missing.status_code == 403
    assert (
        api.put(
            "/api/v1/namespaces/guest/actions/x", ns="other", json={"exec": {"kind": "python:3", "code": PY}}
        ).status_code
        == 403
    )
    assert api.get("/api/v1/namespaces/guest/actions", ns="other").status_code == 403


def test_put_into_binding_is_refused(api):
    api.put("/api/v1/namespaces/_/packages/pkg", json={})
    api.put("/api/v1/namespaces/_/packages/bound", json={"binding": {"namespace": "_", "name": "pkg"}})
    r = put_py(api, "bound/a")
    assert r.status_code == 400
    assert r.json()["error"] == "Operation not permitted on package binding."
    assert put_py(api, "nopkg/a").status_code == 404
