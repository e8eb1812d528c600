"""Must show: real advisories, imported the way a user does, block a vulnerable pin; the fixed
version passes; the seed's Node word count and its Python twin are reported.

The PyPA snapshot in shared/ goes through ``stockade advisories import`` (the CLI reading the
directory and POSTing batches) into an in-process API, then actions are deployed over the API.
"""

import base64
import io
import zipfile

import httpx
import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from stockade.api.app import Platform as App
from stockade.api.app import create_app
from stockade.cli.main import run
from stockade.config import Settings
from stockade.store import open_sqlite_store
from stockade.testing import InProcessRunner

from .scanner.conftest import ADVISORIES, WORD_COUNT_JS, WORD_COUNT_PY

A = "/api/v1/namespaces/_/actions"


def zip_b64(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return base64.b64encode(buffer.getvalue()).decode()


def requests_action(version):
    return zip_b64(
        {
            "__main__.py": "import requests\n\ndef main(args):\n    return {}\n",
            "requirements.txt": f"requests=={version}\n",
        }
    )


class Platform:
    def __init__(self, client, keys):
        self.client = client
        self.keys = keys

    def headers(self, ns="guest"):
        return {"Authorization": "Basic " + base64.b64encode(self.keys[ns].encode()).decode()}

    def put(self, name, code, kind="python:3", query=""):
        return self.client.put(
            f"{A}/{name}{query}", json={"exec": {"kind": kind, "code": code}}, headers=self.headers()
        )

    def cli(self, *argv):
        """Run the real CLI with its HTTP requests answered by the in-process API."""

        def forward(request: httpx.Request) -> httpx.Response:
            reply = self.client.request(
                request.method, request.url.raw_path.decode(), content=request.read(), headers=dict(request.headers)
            )
            return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)

        out, err = io.StringIO(), io.StringIO()
        code = run(
            ["--apihost", "http://testserver", "--auth", self.keys["guest"], *argv],
            transport=httpx.MockTransport(forward),
            stdout=out,
            stderr=err,
            environ={"WSK_CONFIG_FILE": "/nonexistent"},
        )
        return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    assert ADVISORIES.is_dir(), f"the advisory snapshot is missing at {ADVISORIES}"
    data = tmp_path_factory.mktemp("gate")
    keys = {}

    async def bootstrap(services):
        keys["guest"] = (await services.namespaces.create("guest")).token

    app = App(settings=Settings(data_dir=data), store=open_sqlite_store(data / "db.sqlite"), runner=InProcessRunner())
    app.on_open.append(bootstrap)
    with TestClient(create_app(app)) as client:
        yield Platform(client, keys)


@pytest.fixture(scope="module")
def imported(platform):
    # Deployed before the advisories exist: it passes now and must be caught by the rescan.
    assert platform.put("early", requests_action("2.30.0")).status_code == 200
    with capture_logs() as logs:
        code, out, err = platform.cli("advisories", "import", str(ADVISORIES))
    return code, out, err, logs


def test_the_snapshot_imports_through_the_cli(imported):
    code, out, err, _ = imported
    assert code == 0, err
    assert "imported 2661 advisories" in out
    assert "2661 new" in out


def test_the_import_rescans_and_flags_the_action_that_became_vulnerable(platform, imported):
    _, out, _, logs = imported
    assert "now vulnerable: /guest/early@0.0.1 (PYSEC-2023-74)" in out
    events = [e for e in logs if e["event"] == "security.action_vulnerable"]
    assert [(e["namespace"], e["action"], e["version"], e["advisories"]) for e in events] == [
        ("guest", "early", "0.0.1", ["PYSEC-2023-74"])
    ]
    code, out, _ = platform.cli("scan", "report", "early")
    assert code == 0
    assert "PYSEC-2023-74" in out


def test_a_pin_the_snapshot_lists_as_vulnerable_is_blocked_with_its_id(platform, imported):
    r = platform.put("vulnerable", requests_action("2.30.0"))
    assert r.status_code == 400
    error = r.json()["error"]
    assert "dependency.vulnerable requirements.txt:1" in error
    assert "PYSEC-2023-74 (CVE-2023-32681, GHSA-j8r2-6x86-q33q)" in error
    assert "fixed in: 2.31.0" in error
    assert platform.client.get(f"{A}/vulnerable", headers=platform.headers()).status_code == 404
    older = platform.put("older", requests_action("2.2.1"))
    assert {"PYSEC-2014-13", "PYSEC-2014-14", "PYSEC-2015-17", "PYSEC-2018-28"} <= {
        word.strip("(),") for word in older.json()["error"].split()
    }


def test_the_fixed_version_passes(platform, imported):
    r = platform.put("fixed", requests_action("2.31.0"))
    assert r.status_code == 200
    code, out, _ = platform.cli("--json", "scan", "report", "fixed")
    assert code == 0
    assert '"decision": "passed"' in out


def test_the_seeds_word_count_and_its_python_twin_are_reported(platform, imported, tmp_path):
    node = platform.put("wc-js", WORD_COUNT_JS, kind="nodejs:20")
    assert node.status_code == 400
    assert "js.command-injection index.js:5" in node.json()["error"]
    python = platform.put("wc-py", WORD_COUNT_PY)
    assert python.status_code == 400
    assert "py.command-injection __main__.py:5" in python.json()["error"]
    source = tmp_path / "wc.js"
    source.write_text(WORD_COUNT_JS)
    code, _, err = platform.cli("action", "create", "wc-js", str(source))
    assert code == 2
    assert "Deploy blocked" in err
    code, out, err = platform.cli(
        "action", "create", "wc-js", str(source), "--accept-risk", "demo of the guides' example"
    )
    assert code == 0, err
    code, out, _ = platform.cli("scan", "report", "wc-js")
    assert "risk accepted by" in out
    assert "demo of the guides' example" in out
