"""The OpenWhisk client's routes API (whisk.system/apimgmt) and Stockade's apis resource."""

from __future__ import annotations

import json

APIMGMT = "/api/v1/web/whisk.system/apimgmt"
APIS = "/api/v1/namespaces/_/apis"
CLIENT_KEY = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:secret-the-client-put-in-the-apidoc"


def action(api, name="hello"):
    body = {"exec": {"kind": "python:3", "code": "def main(a):\n    return {'hi': a.get('who', 'you')}\n"}}
    assert api.put(f"/api/v1/namespaces/_/actions/{name}", json=body).status_code == 200


def apidoc(base="/hello", rel="/world", verb="get", name="hello", **extra):
    """What the npm client's routes.create sends."""
    doc = {
        "namespace": "_",
        "gatewayBasePath": base,
        "gatewayPath": rel,
        "gatewayMethod": verb,
        "id": f"API:_:{base}",
        "action": {
            "name": name,
            "namespace": "_",
            "backendMethod": "GET",
            "backendUrl": f"http://127.0.0.1:3233/api/v1/web/_/default/{name}.http",
            "authkey": CLIENT_KEY,
        },
        **extra,
    }
    return {"apidoc": doc}


def test_create_get_and_call_like_the_openwhisk_client(api):
    action(api)
    r = api.post(f"{APIMGMT}/createApi?responsetype=json", json=apidoc(apiName="greetings"))
    assert r.status_code == 200, r.text
    created = r.json()
    assert set(created) == {"namespace", "gwApiActivated", "tenantId", "gwApiUrl", "apidoc"}
    assert created["gwApiUrl"] == "http://127.0.0.1:3233/api/gw/guest/hello"
    assert created["gwApiActivated"] is True
    swagger = created["apidoc"]
    assert (swagger["swagger"], swagger["basePath"], swagger["info"]["title"]) == ("2.0", "/hello", "greetings")
    operation = swagger["paths"]["/world"]["get"]
    assert operation["x-openwhisk"] == {
        "namespace": "guest",
        "package": "",
        "action": "hello",
        "url": "http://127.0.0.1:3233/api/v1/web/guest/default/hello.json",
    }
    assert "secret-the-client-put-in-the-apidoc" not in r.text
    listed = api.get(f"{APIMGMT}/getApi").json()
    assert [item["id"] for item in listed["apis"]] == ["API:guest:/hello"]
    assert listed["apis"][0]["key"] == "guest"
    assert listed["apis"][0]["value"] == created
    assert "secret-the-client-put-in-the-apidoc" not in json.dumps(api.get(APIS).json())
    served = api.client.get("/api/gw/guest/hello/world?who=web")
    assert (served.status_code, served.json()) == (200, {"hi": "web"})


def test_get_filters_and_paging(api):
    action(api)
    for base, rel, verb in (("/a", "/x", "get"), ("/a", "/y", "post"), ("/b", "/x", "get")):
        assert api.post(f"{APIMGMT}/createApi", json=apidoc(base, rel, verb)).status_code == 200
    assert len(api.get(f"{APIMGMT}/getApi").json()["apis"]) == 2
    only_a = api.get(f"{APIMGMT}/getApi", params={"basepath": "/a"}).json()["apis"]
    assert list(only_a[0]["value"]["apidoc"]["paths"]) == ["/x", "/y"]
    one = api.get(f"{APIMGMT}/getApi", params={"basepath": "/a", "relpath": "/y", "operation": "post"}).json()["apis"]
    assert list(one[0]["value"]["apidoc"]["paths"]) == ["/y"]
    assert api.get(f"{APIMGMT}/getApi", params={"basepath": "/nothing"}).json() == {"apis": []}
    assert [i["id"] for i in api.get(f"{APIMGMT}/getApi", params={"skip": 1, "limit": 1}).json()["apis"]] == [
        "API:guest:/b"
    ]
    assert api.get(f"{APIMGMT}/getApi", ns="other").json() == {"apis": []}


def test_delete_operation_path_and_api(api):
    action(api)
    for rel, verb in (("/x", "get"), ("/x", "post"), ("/y", "get")):
        api.post(f"{APIMGMT}/createApi", json=apidoc("/a", rel, verb))
    assert (
        api.delete(
            f"{APIMGMT}/deleteApi", params={"basepath": "/a", "relpath": "/x", "operation": "post", "force": "true"}
        ).json()
        == {}
    )
    assert (
        api.delete(f"{APIMGMT}/deleteApi", params={"basepath": "/a", "relpath": "/y", "force": "true"}).status_code
        == 200
    )
    assert [(r["relPath"], r["verb"]) for r in api.get(APIS).json()] == [("/x", "GET")]
    assert api.delete(f"{APIMGMT}/deleteApi", params={"basepath": "/a", "force": "true"}).status_code == 200
    missing = api.delete(f"{APIMGMT}/deleteApi", params={"basepath": "/a", "force": "true"})
    assert missing.status_code == 502
    assert missing.json()["error"] == "API deletion failure: API '/a' does not exist."
    assert api.delete(f"{APIMGMT}/deleteApi", params={"operation": "get"}).status_code == 400


def test_swagger_documents_are_accepted(api):
    action(api)
    swagger = {
        "swagger": "2.0",
        "basePath": "/sw",
        "info": {"title": "imported", "version": "1.0.0"},
        "paths": {
            "/greet": {
                "post": {"x-openwhisk": {"namespace": "_", "package": "", "action": "hello", "url": "x/hello.http"}}
            }
        },
    }
    r = api.post(f"{APIMGMT}/createApi", json={"apidoc": {"namespace": "_", "swagger": swagger}})
    assert r.status_code == 200, r.text
    [route] = api.get(APIS).json()
    assert (route["basePath"], route["relPath"], route["verb"], route["responseType"]) == (
        "/sw",
        "/greet",
        "POST",
        "http",
    )
    bad = {"apidoc": {"namespace": "_", "swagger": {**swagger, "paths": {"/x": {"get": {}}}}}}
    assert api.post(f"{APIMGMT}/createApi", json=bad).status_code == 400


def test_recreating_from_the_openwhisk_client_keeps_stockade_protections(api):
    action(api)
    body = {"basePath": "/hello", "relPath": "/world", "verb": "GET", "action": "hello", "auth": "api_key"}
    assert api.put(APIS, json=body).status_code == 200
    assert api.post(f"{APIMGMT}/createApi", json=apidoc()).status_code == 200
    assert api.get(APIS).json()[0]["auth"] == "api_key"


def test_apimgmt_needs_credentials_and_write_permission(api):
    assert api.client.get(f"{APIMGMT}/getApi").status_code == 401
    assert api.client.post(f"{APIMGMT}/createApi", json=apidoc()).status_code == 401
    bad_action = apidoc()
    bad_action["apidoc"]["action"]["namespace"] = "other"
    r = api.post(f"{APIMGMT}/createApi", json=bad_action)
    assert r.status_code == 400
    assert r.json()["error"] == "The action must be in the API's namespace."
    for broken in (
        {},
        {"apidoc": "{nope"},
        {"apidoc": {"namespace": "_"}},
        {"apidoc": {**apidoc()["apidoc"], "action": None}},
    ):
        assert api.post(f"{APIMGMT}/createApi", json=broken).status_code == 400


def test_apis_resource(api):
    action(api)
    body = {"basePath": "/shop", "relPath": "/items", "verb": "GET", "action": "hello", "quota": {"perDay": 5}}
    created = api.put(APIS, json=body)
    assert created.status_code == 200
    assert created.json()["url"] == "http://127.0.0.1:3233/api/gw/guest/shop/items"
    assert api.put(APIS, json=body).status_code == 409
    assert api.put(f"{APIS}?overwrite=true", json={**body, "quota": None}).json()["quota"] is None
    assert api.put(APIS, json={**body, "action": "/guest/hello"}, ns="other").status_code == 400  # not its action
    assert api.put("/api/v1/namespaces/other/apis", json=body).status_code == 403
    assert api.get("/api/v1/namespaces/other/apis").status_code == 403
    assert api.delete(APIS).status_code == 400
    assert api.delete(APIS, params={"basepath": "/shop", "operation": "GET"}).status_code == 400
    assert api.delete(APIS, params={"basepath": "/nope"}).status_code == 404
    assert api.delete(APIS, params={"basepath": "/shop"}).json() == {"deleted": 1}
    assert api.put(APIS, content=b"[", headers={"Content-Type": "application/json"}).status_code == 400
