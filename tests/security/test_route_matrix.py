"""Every route the app serves × every kind of caller, against a matrix written here.

The routes are enumerated from the app itself (REST, web actions, gateway, admin, monitoring,
audit, secrets, keys, limits, scans, apis), so a new route fails this test until its row is added
below. The expected outcomes are written by hand, independently of roles.json and of the
declarations in api/routes/permissions.py: if either changes what a caller may do, this fails.

Columns: owner, developer, deployer, invoker, viewer, auditor (keys of namespace guest, the
platform's administrative namespace), an unauthenticated caller, and the owner of namespace other.
Cells: ``+`` reached the use case (anything but 401/403), ``x`` 403, ``u`` 401.
"""

from __future__ import annotations

import base64

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from conftest import make_api
from stockade.api.permissions import Need, RouteDeclarationError, Scope, guard_routes

CALLERS = ("owner", "developer", "deployer", "invoker", "viewer", "auditor", "anonymous", "other")
NS = "/api/v1/namespaces/{ns}"
WEB = "/api/v1/web/{ns}/{pkg}/{action}"
APIMGMT = "/api/v1/web/whisk.system/apimgmt"
CONSOLE = "/console/ns/{ns}"
WEB_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# (path template, method) → outcome per caller, in CALLERS order.
EXPECTED: dict[tuple[str, str], str] = {
    ("/", "GET"): "++++++++",
    ("/api/v1", "GET"): "++++++++",
    ("/api/v1/namespaces", "GET"): "++++++u+",
    (f"{NS}/limits", "GET"): "++++++ux",
    # actions
    (f"{NS}/actions", "GET"): "++++++ux",
    (f"{NS}/actions/{{pkg}}/", "GET"): "++++++ux",
    (f"{NS}/actions/{{name}}", "GET"): "++++++ux",
    (f"{NS}/actions/{{name}}", "PUT"): "+++xxxux",
    (f"{NS}/actions/{{name}}", "DELETE"): "+++xxxux",
    (f"{NS}/actions/{{name}}", "POST"): "++x+xxux",
    (f"{NS}/actions/{{pkg}}/{{name}}", "GET"): "++++++ux",
    (f"{NS}/actions/{{pkg}}/{{name}}", "PUT"): "+++xxxux",
    (f"{NS}/actions/{{pkg}}/{{name}}", "DELETE"): "+++xxxux",
    (f"{NS}/actions/{{pkg}}/{{name}}", "POST"): "++x+xxux",
    # activations
    (f"{NS}/activations", "GET"): "++x++xux",
    (f"{NS}/activations/{{id}}", "GET"): "++x++xux",
    (f"{NS}/activations/{{id}}/logs", "GET"): "++x++xux",
    (f"{NS}/activations/{{id}}/result", "GET"): "++x++xux",
    # packages: other namespaces list public packages; a private or missing one is a 403
    (f"{NS}/packages", "GET"): "++++++u+",
    (f"{NS}/packages/{{name}}", "GET"): "++++++ux",
    (f"{NS}/packages/{{name}}", "PUT"): "+++xxxux",
    (f"{NS}/packages/{{name}}", "DELETE"): "+++xxxux",
    # triggers and rules
    (f"{NS}/triggers", "GET"): "++++++ux",
    (f"{NS}/triggers/{{name}}", "GET"): "++++++ux",
    (f"{NS}/triggers/{{name}}", "PUT"): "+++xxxux",
    (f"{NS}/triggers/{{name}}", "DELETE"): "+++xxxux",
    (f"{NS}/triggers/{{name}}", "POST"): "++x+xxux",
    (f"{NS}/rules", "GET"): "++++++ux",
    (f"{NS}/rules/{{name}}", "GET"): "++++++ux",
    (f"{NS}/rules/{{name}}", "PUT"): "+++xxxux",
    (f"{NS}/rules/{{name}}", "DELETE"): "+++xxxux",
    (f"{NS}/rules/{{name}}", "POST"): "+++xxxux",
    # the deploy gate
    (f"{NS}/scans/{{name}}", "GET"): "+++xxxux",
    (f"{NS}/scans/{{pkg}}/{{name}}", "GET"): "+++xxxux",
    (f"{NS}/scanpolicy", "GET"): "++++++ux",
    (f"{NS}/scanpolicy", "PUT"): "+xxxxxux",
    (f"{NS}/scanpolicy", "DELETE"): "+xxxxxux",
    ("/api/v1/admin/advisories", "GET"): "+xxxxxux",
    ("/api/v1/admin/advisories", "POST"): "+xxxxxux",
    ("/api/v1/admin/advisories/sync", "GET"): "+xxxxxux",
    ("/api/v1/admin/advisories/sync", "POST"): "+xxxxxux",
    # secrets
    (f"{NS}/secrets", "GET"): "+x+xxxux",
    (f"{NS}/secrets/{{name}}", "GET"): "+x+xxxux",
    (f"{NS}/secrets/{{name}}", "PUT"): "+x+xxxux",
    (f"{NS}/secrets/{{name}}", "POST"): "+x+xxxux",
    (f"{NS}/secrets/{{name}}", "DELETE"): "+x+xxxux",
    # roles, keys, policy
    (f"{NS}/roles", "GET"): "+xxxxxux",
    (f"{NS}/roles/{{subject}}", "PUT"): "+xxxxxux",
    (f"{NS}/roles/{{subject}}", "DELETE"): "+xxxxxux",
    (f"{NS}/keys", "GET"): "+xxxxxux",
    (f"{NS}/keys", "POST"): "+xxxxxux",
    (f"{NS}/keys/{{uuid}}", "DELETE"): "+xxxxxux",
    (f"{NS}/policy", "GET"): "++++++ux",
    (f"{NS}/policy", "PUT"): "+xxxxxux",
    (f"{NS}/policy/lint", "GET"): "++++++ux",
    # audit
    (f"{NS}/audit", "GET"): "+xxxx+ux",
    (f"{NS}/audit/verify", "GET"): "+xxxx+ux",
    # monitoring
    ("/metrics", "GET"): "+xxxx+ux",
    (f"{NS}/events", "GET"): "+xxxx+ux",
    (f"{NS}/alerts", "GET"): "+xxxx+ux",
    (f"{NS}/alerts/deadletters", "GET"): "+xxxx+ux",
    (f"{NS}/alerts/webhooks", "GET"): "+xxxx+ux",
    (f"{NS}/alerts/webhooks", "POST"): "+xxxxxux",
    (f"{NS}/alerts/webhooks/{{id}}", "DELETE"): "+xxxxxux",
    (f"{NS}/alerts/rules", "GET"): "+xxxx+ux",
    (f"{NS}/alerts/rules/{{id}}", "PUT"): "+xxxxxux",
    (f"{NS}/alerts/rules/{{id}}", "DELETE"): "+xxxxxux",
    # API gateway management (the OpenWhisk client's routes API works in the caller's namespace)
    (f"{NS}/apis", "GET"): "++++++ux",
    (f"{NS}/apis", "PUT"): "+++xxxux",
    (f"{NS}/apis", "DELETE"): "+++xxxux",
    (f"{APIMGMT}/getApi", "GET"): "++++++u+",
    (f"{APIMGMT}/getApi.http", "GET"): "++++++u+",
    (f"{APIMGMT}/createApi", "POST"): "+++xxxu+",
    (f"{APIMGMT}/createApi.http", "POST"): "+++xxxu+",
    (f"{APIMGMT}/deleteApi", "DELETE"): "+++xxxu+",
    (f"{APIMGMT}/deleteApi.http", "DELETE"): "+++xxxu+",
    # web actions and gateway routes: public, the action or the route decides
    **{(WEB, m): "++++++++" for m in WEB_METHODS},
    **{(WEB + "/{rest:path}", m): "++++++++" for m in WEB_METHODS},
    **{("/api/gw/{rest:path}", m): "++++++++" for m in WEB_METHODS},
    # console pages take a session cookie, never these headers: without a session every namespace page
    # is a 401 (the sign-in page), a post without a session is a 401, and sign-in takes a form only; the per-role matrix over sessions is in
    # tests/console/test_console_matrix.py
    ("/console", "GET"): "++++++++",
    ("/console/", "GET"): "++++++++",
    ("/console/static/{file}", "GET"): "++++++++",
    ("/console/login", "GET"): "++++++++",
    ("/console/login", "POST"): "++++++++",
    ("/console/logout", "POST"): "uuuuuuuu",
    (CONSOLE, "GET"): "uuuuuuuu",
    (CONSOLE + "/actions/{name:path}", "GET"): "uuuuuuuu",
    (CONSOLE + "/activations", "GET"): "uuuuuuuu",
    (CONSOLE + "/activations/{id}", "GET"): "uuuuuuuu",
    (CONSOLE + "/events", "GET"): "uuuuuuuu",
    (CONSOLE + "/alerts", "GET"): "uuuuuuuu",
    (CONSOLE + "/alerts/{id}", "GET"): "uuuuuuuu",
    (CONSOLE + "/alerts/{id}/ack", "POST"): "uuuuuuuu",
    (CONSOLE + "/audit", "GET"): "uuuuuuuu",
    (CONSOLE + "/audit/export", "GET"): "uuuuuuuu",
}

VALUES = {
    "ns": "guest",
    "name": "target",
    "pkg": "shelf",
    "id": "0123456789abcdef0123456789abcdef",
    "subject": "someone",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "action": "target",
    "rest": "guest/shelf/x",
    "file": "console.css",
}


def concrete(template: str) -> str:
    path = template.replace("{rest:path}", VALUES["rest"])
    for key, value in VALUES.items():
        path = path.replace("{" + key + "}", value)
    return path


def served(app) -> list[tuple[str, str]]:
    """(path template, method) of every route the app serves."""
    out = []
    for route in app.routes:
        assert isinstance(route, Route), route
        out += [(route.path, m) for m in sorted(route.methods - {"HEAD"})]
    return out


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    app, keys, _runner = make_api(tmp_path_factory.mktemp("matrix"))
    with TestClient(app, raise_server_exceptions=False) as client:
        owner = {"Authorization": "Basic " + base64.b64encode(keys["guest"].encode()).decode()}
        headers = {"owner": owner, "anonymous": {}}
        for role in ("developer", "deployer", "invoker", "viewer", "auditor"):
            r = client.post("/api/v1/namespaces/guest/keys", headers=owner, json={"subject": f"{role}-1", "role": role})
            assert r.status_code == 200, r.text
            headers[role] = {"Authorization": "Basic " + base64.b64encode(r.json()["key"].encode()).decode()}
        headers["other"] = {"Authorization": "Basic " + base64.b64encode(keys["other"].encode()).decode()}
        # Something to find: an action, and a private package with an action.
        code = {"exec": {"kind": "python:3", "code": "def main(a):\n    return {}\n"}}
        for path, body in (
            ("/actions/target", code),
            ("/packages/shelf", {}),
            ("/actions/shelf/target", code),
        ):
            assert client.put(f"/api/v1/namespaces/guest{path}", headers=owner, json=body).status_code == 200
        yield app, client, headers


def test_every_served_route_has_a_row_and_every_row_a_route(platform):
    app, _client, _headers = platform
    routes = served(app)
    assert len(routes) == len(set(routes))
    missing = sorted(set(routes) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(routes))
    assert not missing, f"add these routes to EXPECTED (and to api/routes/permissions.py): {missing}"
    assert not stale, f"these rows name no served route: {stale}"


def _outcome(status: int) -> str:
    return {401: "u", 403: "x"}.get(status, "+")


@pytest.mark.parametrize(("template", "method"), sorted(EXPECTED), ids=[f"{m} {t}" for t, m in sorted(EXPECTED)])
def test_route_outcome_for_every_caller(platform, template, method):
    _app, client, headers = platform
    path = concrete(template)
    observed = ""
    for caller in CALLERS:
        r = client.request(method, path, headers=headers[caller], json={} if method in ("PUT", "POST") else None)
        assert r.status_code != 500, (caller, r.text)
        if r.status_code in (401, 403):
            assert set(r.json()) == {"error", "code"}, r.text
        observed += _outcome(r.status_code)
    assert observed == EXPECTED[(template, method)], f"{method} {template}: {observed}"


def test_a_route_without_a_declaration_stops_the_app():
    async def handler(request):
        raise AssertionError("never served")

    routes = [Route("/declared", handler, methods=["GET"]), Route("/new", handler, methods=["GET", "POST"])]
    table = {("/declared", "GET"): Need(Scope.AUTHENTICATED), ("/new", "GET"): Need(Scope.AUTHENTICATED)}
    with pytest.raises(RouteDeclarationError, match="POST /new"):
        guard_routes(routes, table)


def test_refusals_look_the_same_whether_or_not_the_target_exists(platform):
    _app, client, headers = platform
    for collection in ("actions", "triggers", "packages", "rules"):
        there = client.get(f"/api/v1/namespaces/guest/{collection}/target", headers=headers["other"])
        absent = client.get(f"/api/v1/namespaces/guest/{collection}/nothing-here", headers=headers["other"])
        assert there.status_code == absent.status_code == 403
        assert there.json()["error"].replace("target", "N") == absent.json()["error"].replace("nothing-here", "N")
