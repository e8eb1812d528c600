"""The npm `openwhisk` client's routes API (API gateway), unmodified, against a real server."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent / "node"

pytestmark = pytest.mark.e2e


def test_openwhisk_npm_client_routes(server):
    """routes.create/get/list/delete through whisk.system/apimgmt, and calls through /api/gw."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed (scripts/install installs it)")
    if not (NODE_DIR / "node_modules" / "openwhisk").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("tests/e2e/node/node_modules is missing: scripts/install should have run npm ci")
        pytest.skip("npm packages not installed: run scripts/install (npm ci in tests/e2e/node)")
    env = {**os.environ, "STOCKADE_APIHOST": server.url, "STOCKADE_AUTH": server.auth}
    proc = subprocess.run(
        ["node", "--test", "routes.test.mjs"], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report + "\n--- server log ---\n" + server.log()[-5000:]
    assert "# fail 0" in report
    assert "# pass 1" in report
