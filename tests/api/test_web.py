"""Web actions (/api/v1/web/...), per the compatibility checklist and the web security controls."""

import base64

A = "/api/v1/namespaces/_/actions"
W = "/api/v1/web/guest/default"


def web(api, name, code, annotations=(), parameters=(), export=True):
    ann = [{"key": "web-export", "value": True}] if export else []
    ann += [{"key": k, "value": v} for k, v in annotations]
    body = {"exec": {"kind": "python:3", "code": code}, "annotations": ann, "parameters": list(parameters)}
    r = api.put(f"{A}/{name}", json=body)
    assert r.status_code == 200, r.text
    return r


ECHO = "def main(a):\n    return a\n"


def test_json_extension_and_arguments(api):
    web(api, "echo", ECHO)
    r = api.client.get(f"{W}/echo.json?name=x")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "x"
    assert body["__ow_method"] == "get"
    assert body["__ow_path"] == ""
    assert "__ow_user" not in body
    assert body["__ow_headers"]["host"]
    assert r.headers["x-openwhisk-activation-id"]
    r = api.client.post(f"{W}/echo.json/foo/bar?name=q", json={"name": "body"})
    assert r.json()["__ow_path"] == "/foo/bar"
    assert r.json()["name"] == "body"


def test_authenticated_caller_gets_ow_user(api):
    web(api, "echo", ECHO)
    r = api.client.get(f"{W}/echo.json", headers=api.auth("other"))
    assert r.json()["__ow_user"] == "other"


def test_http_redirect_and_html(api):
    web(
        api,
        "redirect",
        "def main(a):\n    return {'statusCode': 302, 'headers': {'location': 'https://example.org/'}}\n",
    )
    r = api.client.get(f"{W}/redirect", follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"] == "https://example.org/"
    web(api, "page", "def main(a):\n    return {'body': '<b>x</b>'}\n")
    r = api.client.get(f"{W}/page.http")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.text == "<b>x</b>"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    web(api, "empty", "def main(a):\n    return {}\n")
    assert api.client.get(f"{W}/empty").status_code == 204


def test_binary_body_and_repeated_headers(api):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nrest").decode()
    code = (
        "def main(a):\n"
        f"    return {{'headers': {{'Content-Type': 'image/png', 'Set-Cookie': ['a=1', 'b=2']}}, 'body': '{png}'}}\n"
    )
    web(api, "img", code, annotations=[("allow-cookies", True)])
    r = api.client.get(f"{W}/img")
    assert r.content == b"\x89PNG\r\n\x1a\nrest"
    assert r.headers.get_list("set-cookie") == ["a=1", "b=2"]


def test_set_cookie_is_dropped_unless_allowed(api):
    web(api, "cookie", "def main(a):\n    return {'headers': {'Set-Cookie': 'sid=1'}, 'body': 'ok'}\n")
    r = api.client.get(f"{W}/cookie")
    assert r.status_code == 200
    assert "set-cookie" not in r.headers


def test_secure_headers_by_default(api):
    web(api, "echo", ECHO)
    r = api.client.get(f"{W}/echo.json")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in r.headers  # plain HTTP here


def test_other_extensions(api):
    web(api, "t", "def main(a):\n    return {'text': 'hello', 'svg': '<svg/>', 'html': '<p>h</p>'}\n")
    assert api.client.get(f"{W}/t.text").text == "hello"
    assert api.client.get(f"{W}/t.svg").headers["content-type"] == "image/svg+xml"
    assert api.client.get(f"{W}/t.html").text == "<p>h</p>"
    web(api, "n", "def main(a):\n    return {'other': 1}\n")
    r = api.client.get(f"{W}/n.text")
    assert r.status_code == 404
    assert r.json()["error"] == "Response does not include requested property."
    assert api.client.get(f"{W}/n.svg").json()["error"] == "Response is not valid 'image/svg+xml'."
    web(api, "arr", "def main(a):\n    return [1]\n")
    assert api.client.get(f"{W}/arr.json").json() == [1]


def test_raw_http_action(api):
    web(api, "raw", ECHO, annotations=[("raw-http", True)])
    r = api.client.post(f"{W}/raw.json?a=1&b=2", json={"x": 1})
    body = r.json()
    assert body["__ow_query"] == "a=1&b=2"
    assert base64.b64decode(body["__ow_body"]) == b'{"x":1}'
    assert "a" not in body


def test_options_answers_cors_without_running(api):
    web(api, "echo", ECHO, annotations=[("require-whisk-auth", True)])
    calls = len(api.runner.calls)
    r = api.client.options(f"{W}/echo.json", headers={"Access-Control-Request-Headers": "X-Custom"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-headers"] == "X-Custom"
    assert r.headers["access-control-allow-methods"] == "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
    assert len(api.runner.calls) == calls


def test_custom_options(api):
    web(
        api,
        "opts",
        "def main(a):\n    return {'headers': {'Allow': 'GET'}, 'statusCode': 200, 'body': a['__ow_method']}\n",
        annotations=[("web-custom-options", True)],
    )
    r = api.client.options(f"{W}/opts")
    assert r.headers["allow"] == "GET"
    assert r.text == "options"
    assert "access-control-allow-origin" not in r.headers


def test_application_and_developer_errors(api):
    web(api, "apperr", "def main(a):\n    return {'error': {'statusCode': 400, 'body': 'bad'}}\n")
    r = api.client.get(f"{W}/apperr")
    assert r.status_code == 400
    assert r.text == "bad"
    web(api, "deverr", "def main(a):\n    raise RuntimeError('x')\n")
    r = api.client.get(f"{W}/deverr")
    assert r.status_code == 400
    assert r.json()["error"] == "There was an error processing your request."


def test_web_actions_in_packages(api):
    api.put("/api/v1/namespaces/_/packages/pub", json={})
    web(api, "pub/echo", ECHO)
    assert api.client.get("/api/v1/web/guest/pub/echo.json?v=1").json()["v"] == "1"


def test_input_schema_is_enforced_before_running(api):
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 10}}, "required": ["n"]}
    r = api.put(
        f"{A}/typed",
        json={"exec": {"kind": "python:3", "code": ECHO}, "annotations": [{"key": "input-schema", "value": schema}]},
    )
    assert r.status_code == 200
    calls = len(api.runner.calls)
    r = api.post(f"{A}/typed?blocking=true", json={"n": 11})
    assert r.status_code == 400
    assert "at /n:" in r.json()["error"]
    assert api.post(f"{A}/typed?blocking=true", json={}).status_code == 400
    assert len(api.runner.calls) == calls
    assert api.post(f"{A}/typed?blocking=true&result=true", json={"n": 3}).json() == {"n": 3}
    bad = api.put(
        f"{A}/badschema",
        json={
            "exec": {"kind": "python:3", "code": ECHO},
            "annotations": [{"key": "input-schema", "value": {"type": 5}}],
        },
    )
    assert bad.status_code == 400
    assert "not a valid JSON Schema" in bad.json()["error"]


def test_non_object_bodies_reach_the_action_as_ow_body(api):
    web(api, "echo", ECHO)
    r = api.client.post(f"{W}/echo.json", content=b"plain text", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200
    assert r.json()["__ow_body"] == "plain text"
    r = api.client.post(f"{W}/echo.json", json=[1, 2])
    assert r.json()["__ow_body"] == [1, 2]
    r = api.client.post(f"{W}/echo.json", content=b"\x89PNG", headers={"Content-Type": "image/png"})
    assert r.status_code == 200
    r = api.client.post(f"{W}/echo.json", json={"__ow_body": "forged"})
    assert r.status_code == 400


def test_web_actions_run_as_the_namespace_whatever_its_owners_are_called(api):
    services = api.client.app.state.services
    key = api.client.portal.call(services.namespaces.create, "team", "alice")
    import base64

    h = {"Authorization": "Basic " + base64.b64encode(key.token.encode()).decode()}
    body = {"exec": {"kind": "python:3", "code": ECHO}, "annotations": [{"key": "web-export", "value": True}]}
    assert api.client.put("/api/v1/namespaces/team/actions/echo", headers=h, json=body).status_code == 200
    r = api.client.get("/api/v1/web/team/default/echo.json?x=1")
    assert r.status_code == 200
    assert r.json()["x"] == "1"
    assert api.client.get("/api/v1/web/nosuchns/default/echo.json").status_code == 404
