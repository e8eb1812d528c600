"""Typed query parameters and exact paths: 400 for out-of-range integers, no slash redirects,
and an encoded slash inside a name is a 400 (it must never become another entity's path).
"""

import pytest

A = "/api/v1/namespaces/_/actions"
HUGE = "1" + "0" * 30
INT64_PLUS_ONE = str(2**63)


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/namespaces/_/activations?skip={HUGE}",
        f"/api/v1/namespaces/_/activations?limit={HUGE}",
        f"/api/v1/namespaces/_/activations?since={HUGE}",
        f"/api/v1/namespaces/_/activations?upto={HUGE}",
        f"/api/v1/namespaces/_/activations?since={INT64_PLUS_ONE}",
        f"/api/v1/namespaces/_/activations?upto=-{HUGE}",
        f"{A}?skip={HUGE}",
        f"{A}?limit={INT64_PLUS_ONE}",
        f"/api/v1/namespaces/_/packages?skip={HUGE}",
        f"/api/v1/namespaces/_/triggers?skip={HUGE}",
        f"/api/v1/namespaces/_/rules?skip={HUGE}",
        f"/api/v1/namespaces/_/audit?since={HUGE}",
        f"/api/v1/namespaces/_/events?since={HUGE}",
        f"{A}?skip=1_000",
        f"{A}?skip=%D9%A1",  # an Arabic-Indic digit: int() takes it, we do not
        f"{A}?skip=+1",
        f"{A}?skip=%201",
    ],
)
def test_out_of_range_or_odd_integers_are_400(api, url):
    r = api.get(url)
    assert r.status_code == 400, (url, r.status_code, r.text[:200])
    body = r.json()
    assert set(body) == {"error", "code"}
    assert body["error"].startswith("The query parameter '")


def test_in_range_integers_still_work(api):
    assert api.get(f"/api/v1/namespaces/_/activations?since={2**63 - 1}&upto=0").status_code == 200
    assert api.get(f"{A}?skip=9223372036854775807").json() == []


def test_invoke_timeout_past_64_bits_is_400(api):
    api.put(f"{A}/echo", json={"exec": {"kind": "python:3", "code": "def main(a):\n    return a\n"}})
    r = api.post(f"{A}/echo?blocking=true&timeout={HUGE}", json={})
    assert r.status_code == 400


def test_an_encoded_slash_in_a_name_is_400_not_another_entity(api):
    code = {"exec": {"kind": "python:3", "code": "def main(a):\n    return a\n"}}
    assert api.put("/api/v1/namespaces/_/packages/pkg", json={}).status_code == 200
    assert api.put(f"{A}/pkg/inner", json=code).status_code == 200
    for path in (f"{A}/pkg%2Finner", f"{A}/pkg%2finner", f"{A}/pkg%2Finner/", "/api/v1/web/guest/pkg%2Finner/x.json"):
        r = api.get(path, follow_redirects=False)
        assert r.status_code == 400, (path, r.status_code)
        assert "location" not in r.headers
        assert set(r.json()) == {"error", "code"}


def test_no_trailing_slash_redirects(api):
    for path in (f"{A}/", "/api/v1/namespaces/_/triggers/", "/api/v1/namespaces/_/rules/x/", "/api/v1/namespaces/"):
        r = api.get(path, follow_redirects=False, headers={"Host": "evil.example"})
        assert r.status_code in (200, 404), (path, r.status_code)
        assert "location" not in r.headers
        assert set(r.json()) == {"error", "code"} if r.status_code == 404 else True


def test_the_package_listing_keeps_its_trailing_slash(api):
    assert api.put("/api/v1/namespaces/_/packages/pkg", json={}).status_code == 200
    assert api.get(f"{A}/pkg/").status_code == 200


def test_a_web_action_s_own_path_may_hold_an_encoded_slash(api):
    body = {
        "exec": {"kind": "python:3", "code": "def main(a):\n    return {'path': a['__ow_path']}\n"},
        "annotations": [{"key": "web-export", "value": True}],
    }
    assert api.put(f"{A}/paths", json=body).status_code == 200
    r = api.client.get("/api/v1/web/guest/default/paths.json/files/a%2Fb")
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "/files/a/b"
    assert api.client.get("/api/v1/web/guest/default%2Fx/paths.json").status_code == 400
