"""Issue 14's "must show" through the unmodified npm `openwhisk` client against a real server:
a sequence over /whisk.system/utils/sort, a rule firing utils/echo, a catalog action invoked by
its fully qualified name, a binding of another namespace's published package, and copies that
keep parameter values (checked by invoking the copy)."""

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent / "node"

pytestmark = pytest.mark.e2e


def _other_namespace(server) -> tuple[str, str]:
    name = "team" + uuid.uuid4().hex[:6]
    env = {**os.environ, "STOCKADE_DATA_DIR": str(server.data_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "stockade.cli", "admin", "namespace-create", name],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return name, proc.stdout.split("AUTH=")[1].split()[0]


def test_openwhisk_npm_client_workflows(server):
    if shutil.which("node") is None:
        pytest.skip("node is not installed (scripts/install installs it)")
    if not (NODE_DIR / "node_modules" / "openwhisk").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("tests/e2e/node/node_modules is missing: scripts/install should have run npm ci")
        pytest.skip("npm packages not installed: run scripts/install (npm ci in tests/e2e/node)")
    other_ns, other_auth = _other_namespace(server)
    env = {
        **os.environ,
        "STOCKADE_APIHOST": server.url,
        "STOCKADE_AUTH": server.auth,
        "STOCKADE_OTHER_NS": other_ns,
        "STOCKADE_OTHER_AUTH": other_auth,
    }
    proc = subprocess.run(
        ["node", "--test", "workflows.test.mjs"], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report + "\n--- server log ---\n" + server.log()[-5000:]
    assert "# fail 0" in report
    assert "# pass 6" in report
