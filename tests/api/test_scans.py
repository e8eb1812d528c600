"""The deploy gate over the API: blocked deploys, acceptRisk, reports, policies, advisories, rescans."""

import base64
import io
import json
import zipfile

from structlog.testing import capture_logs

A = "/api/v1/namespaces/_/actions"
S = "/api/v1/namespaces/_/scans"
ADV = "/api/v1/admin/advisories"

SHELL_PY = """\
import subprocess


def main(args):
    out = subprocess.check_output(f"echo -n {args['string']} | wc -w", shell=True)
    return {"count": int(out)}
"""
CLEAN_PY = "def main(args):\n    return {'ok': True}\n"

LODASH = {
    "id": "GHSA-test-lodash",
    "modified": "2024-01-01T00:00:00Z",
    "aliases": ["CVE-2021-23337"],
    "summary": "Command injection in lodash template",
    "affected": [
        {
            "package": {"ecosystem": "npm", "name": "lodash"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}],
        }
    ],
    "database_specific": {"severity": "HIGH"},
}


def zip_b64(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return base64.b64encode(buffer.getvalue()).decode()


def put(api, name, code, kind="python:3", query="", ns="guest", **extra):
    return api.put(f"{A}/{name}{query}", json={"exec": {"kind": kind, "code": code}, **extra}, ns=ns)


def test_a_blocked_deploy_lists_findings_and_writes_nothing(api):
    r = put(api, "wc", SHELL_PY)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error.startswith("Deploy blocked by the security gate: 1 finding(s)")
    assert "[high] py.command-injection __main__.py:5" in error
    assert "acceptRisk" in error
    assert api.get(f"{A}/wc").status_code == 404
    assert api.get(A).json() == []
    assert api.get(f"{S}/wc").status_code == 404


def test_accept_risk_deploys_and_records_who_and_why(api):
    with capture_logs() as logs:
        r = put(api, "wc", SHELL_PY, query="?acceptRisk=input%20is%20validated%20upstream")
    assert r.status_code == 200
    accepted = [e for e in logs if e["event"] == "deploy.risk_accepted"]
    assert accepted
    assert accepted[0]["reason"] == "input is validated upstream"
    report = api.get(f"{S}/wc").json()
    assert report["decision"] == "accepted"
    assert report["version"] == "0.0.1"
    assert report["acceptedRisk"]["reason"] == "input is validated upstream"
    assert report["acceptedRisk"]["subject"]
    assert report["acceptedRisk"]["findings"] == ["py.command-injection __main__.py:5"]
    assert [f["rule"] for f in report["blocking"]] == ["py.command-injection"]


def test_accept_risk_needs_a_real_reason(api):
    r = put(api, "wc", SHELL_PY, query="?acceptRisk=%20%0a%20")
    assert r.status_code == 400
    assert "needs a reason" in r.json()["error"]
    r = put(api, "wc", SHELL_PY, query="?acceptRisk=" + "x" * 600)
    assert r.status_code == 400


def test_reports_are_kept_per_version_and_readable_as_sarif(api):
    assert put(api, "ok", CLEAN_PY).status_code == 200
    assert (
        api.put(f"{A}/ok?overwrite=true", json={"exec": {"kind": "python:3", "code": CLEAN_PY + "# v2\n"}}).status_code
        == 200
    )
    current = api.get(f"{S}/ok").json()
    assert (current["version"], current["decision"]) == ("0.0.2", "passed")
    assert current["policy"] == {"block": ["critical", "high"], "warn": ["medium", "low"]}
    assert api.get(f"{S}/ok?version=0.0.1").json()["version"] == "0.0.1"
    assert api.get(f"{S}/ok?version=9.9.9").status_code == 404
    sarif = api.get(f"{S}/ok?format=sarif").json()
    assert sarif["version"] == "2.1.0"
    assert api.get(f"{S}/ok?format=xml").status_code == 400
    assert api.get("/api/v1/namespaces/guest/scans/ok", ns="other").status_code == 403


def test_warnings_do_not_block_and_are_in_the_report(api):
    r = put(api, "web", CLEAN_PY, annotations=[{"key": "web-export", "value": True}])
    assert r.status_code == 200
    report = api.get(f"{S}/web").json()
    assert report["decision"] == "passed"
    assert [f["rule"] for f in report["report"]["findings"]] == ["policy.web-without-auth"]


def test_plain_text_credentials_in_parameters_block(api):
    r = put(api, "creds", CLEAN_PY, parameters=[{"key": "db_password", "value": "correct horse battery staple"}])
    assert r.status_code == 400
    assert "stockade secret set" in r.json()["error"]


def test_sequences_are_not_scanned(api):
    assert put(api, "ok", CLEAN_PY).status_code == 200
    r = api.put(f"{A}/seq", json={"exec": {"kind": "sequence", "components": ["/_/ok"]}})
    assert r.status_code == 200
    assert api.get(f"{S}/seq").status_code == 404


def test_namespace_policy_is_set_by_the_administrative_namespace(api):
    policy = "/api/v1/namespaces/other/scanpolicy"
    assert api.get(policy, ns="other").json() == {
        "namespace": "other",
        "block": ["critical", "high"],
        "warn": ["medium", "low"],
    }
    assert api.put(policy, ns="other", json={"block": []}).status_code == 403
    assert api.put(policy, json={"block": ["critical", "high", "medium"], "warn": ["low"]}).status_code == 200
    assert api.put(policy, json={"block": ["urgent"]}).status_code == 400
    r = put(api, "web", CLEAN_PY, ns="other", annotations=[{"key": "web-export", "value": True}])
    assert r.status_code == 400
    assert "policy.web-without-auth" in r.json()["error"]
    assert api.get("/api/v1/namespaces/guest/scanpolicy", ns="other").status_code == 403
    assert api.delete(policy).json()["block"] == ["critical", "high"]
    assert put(api, "web", CLEAN_PY, ns="other", annotations=[{"key": "web-export", "value": True}]).status_code == 200


def test_advisory_import_is_for_the_administrative_namespace(api):
    assert api.post(ADV, ns="other", json={"advisories": [LODASH]}).status_code == 403
    assert api.get(ADV, ns="other").status_code == 403
    r = api.post(ADV, json={"advisories": [LODASH, {"id": 5}, "nope"]})
    assert r.status_code == 200
    body = r.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (1, 0, 0)
    assert [item["index"] for item in body["rejected"]] == [1, 2]
    assert api.get(ADV).json() == {"advisories": 1}
    assert api.post(ADV, json={"advisories": {"id": "x"}}).status_code == 400
    assert api.post(ADV, json={"advisories": [LODASH]}).json()["unchanged"] == 1


def test_importing_advisories_rescans_deployed_actions_and_raises_events(api):
    code = zip_b64(
        {
            "index.js": "const _ = require('lodash');\nexports.main = () => ({ n: _.VERSION });\n",
            "package.json": json.dumps({"dependencies": {"lodash": "4.17.20"}}),
        }
    )
    assert put(api, "uses-lodash", code, kind="nodejs:20").status_code == 200
    assert put(api, "fine", CLEAN_PY).status_code == 200
    with capture_logs() as logs:
        body = api.post(ADV, json={"advisories": [LODASH]}).json()
    assert body["newlyVulnerable"] == [
        {"namespace": "guest", "action": "uses-lodash", "version": "0.0.1", "advisories": ["GHSA-test-lodash"]}
    ]
    events = [e for e in logs if e["event"] == "security.action_vulnerable"]
    assert [(e["action"], e["advisories"]) for e in events] == [("uses-lodash", ["GHSA-test-lodash"])]
    report = api.get(f"{S}/uses-lodash").json()
    assert "rescanned" in report
    (finding,) = [f for f in report["report"]["findings"] if f["rule"] == "dependency.vulnerable"]
    assert finding["advisory"]["fixed"] == ["4.17.21"]
    # Importing it again changes nothing and raises nothing.
    assert api.post(ADV, json={"advisories": [LODASH]}).json()["newlyVulnerable"] == []
    # A new deploy of the vulnerable version is now blocked.
    r = api.put(f"{A}/uses-lodash?overwrite=true", json={"exec": {"kind": "nodejs:20", "code": code}})
    assert r.status_code == 400
    assert "GHSA-test-lodash" in r.json()["error"]
