"""Packages and bindings over the REST API."""

P = "/api/v1/namespaces/_/packages"
A = "/api/v1/namespaces/_/actions"
CODE = {"exec": {"kind": "python:3", "code": "def main(a):\n    return a\n"}}


def test_default_package_name_is_reserved(api):
    r = api.put(f"{P}/default", json={})
    assert r.status_code == 400
    assert r.json()["error"] == "Package name 'default' is reserved."


def test_binding_errors(api):
    r = api.put(f"{P}/b", json={"binding": {"namespace": "_", "name": "nothing"}})
    assert r.status_code == 400
    assert r.json()["error"] == "Binding references a package that does not exist."
    api.put(f"{P}/pkg", json={})
    api.put(f"{P}/b1", json={"binding": {"namespace": "_", "name": "pkg"}})
    r = api.put(f"{P}/b2", json={"binding": {"namespace": "_", "name": "b1"}})
    assert r.status_code == 400
    assert r.json()["error"] == "Cannot bind to another package binding."
    api.put(f"{A}/act", json=CODE)
    r = api.put(f"{P}/b3", json={"binding": {"namespace": "_", "name": "act"}})
    assert r.status_code == 409
    assert r.json()["error"] == "Cannot bind to a resource that is not a package."
    api.put(f"{P}/pkg2", json={})
    r = api.put(f"{P}/pkg?overwrite=true", json={"binding": {"namespace": "_", "name": "pkg2"}})
    assert r.status_code == 409
    assert r.json()["error"] == "Resource is a package and cannot be converted into a binding."


def test_get_package_shape_and_list(api):
    api.put(f"{P}/pkg", json={"parameters": [{"key": "a", "value": 1}]})
    api.put(f"{A}/pkg/one", json=CODE)
    body = api.get(f"{P}/pkg").json()
    assert body["binding"] == {}
    assert [a["name"] for a in body["actions"]] == ["one"]
    assert body["feeds"] == []
    api.put(f"{P}/bnd", json={"binding": {"namespace": "_", "name": "pkg"}, "parameters": [{"key": "b", "value": 2}]})
    bound = api.get(f"{P}/bnd").json()
    assert bound["binding"] == {"namespace": "guest", "name": "pkg"}
    params = {p["key"]: p for p in bound["parameters"]}
    assert set(params) == {"a", "b"}
    assert all(p["value"].startswith("hmac-sha256:") and p["encryption"] == "AES-256-GCM" for p in params.values())
    assert [a["name"] for a in bound["actions"]] == ["one"]
    listed = {p["name"]: p for p in api.get(P).json()}
    assert listed["pkg"]["binding"] is False
    assert listed["bnd"]["binding"] == {"namespace": "guest", "name": "pkg"}


def test_cross_namespace_package_visibility(api):
    api.put(f"{P}/private", json={})
    api.put(f"{P}/public", json={"publish": True})
    api.put(f"{A}/public/tool", json=CODE)
    other = "/api/v1/namespaces/guest/packages"
    assert api.get(f"{other}/private", ns="other").status_code == 403
    assert api.get(f"{other}/public", ns="other").status_code == 200
    assert [p["name"] for p in api.get(other, ns="other").json()] == ["public"]
    r = api.post("/api/v1/namespaces/guest/actions/public/tool?blocking=true&result=true", ns="other", json={"x": 1})
    assert r.status_code == 200
    assert r.json() == {"x": 1}
    assert (
        api.post("/api/v1/namespaces/guest/actions/private/tool?blocking=true", ns="other", json={}).status_code == 403
    )


def test_bind_to_public_package_of_another_namespace(api):
    api.put(f"{P}/shared", json={"publish": True, "parameters": [{"key": "k", "value": "owner"}]})
    api.put(f"{A}/shared/echo", json=CODE)
    r = api.put(P + "/mine", ns="other", json={"binding": {"namespace": "guest", "name": "shared"}})
    assert r.status_code == 200
    out = api.post("/api/v1/namespaces/_/actions/mine/echo?blocking=true", ns="other", json={})
    assert out.status_code == 200
    assert out.json()["response"]["result"] == {"k": "owner"}
    assert out.json()["namespace"] == "other"
    api.put(f"{P}/hidden", json={})
    r = api.put(P + "/mine2", ns="other", json={"binding": {"namespace": "guest", "name": "hidden"}})
    assert r.status_code == 403


def test_delete_non_empty_package(api):
    api.put(f"{P}/pkg", json={})
    api.put(f"{A}/pkg/a", json=CODE)
    r = api.delete(f"{P}/pkg")
    assert r.status_code == 409
    assert r.json()["error"] == "Package not empty (contains 1 entity). Set force param or delete package contents."
    api.put(f"{A}/pkg/b", json=CODE)
    assert "contains 2 entities" in api.delete(f"{P}/pkg").json()["error"]
    assert api.delete(f"{P}/pkg?force=true").status_code == 200
    assert api.get(f"{A}/pkg/a").status_code == 404
    assert api.get(f"{P}/pkg").status_code == 404


def test_package_update_replaces_parameters(api):
    api.put(f"{P}/pkg", json={"parameters": [{"key": "a", "value": 1}], "annotations": [{"key": "x", "value": 1}]})
    r = api.put(f"{P}/pkg?overwrite=true", json={"parameters": [{"key": "b", "value": 2}]})
    assert r.json()["version"] == "0.0.2"
    assert [p["key"] for p in r.json()["parameters"]] == ["b"]
    assert r.json()["parameters"][0]["value"].startswith("hmac-sha256:")
    assert r.json()["annotations"] == [{"key": "x", "value": 1}]
