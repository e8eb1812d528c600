"""The whole security test package against live servers: its log holds no unhandled error.

With ``STOCKADE_TEST_LIVE=1`` every ``api`` fixture serves its app on loopback through the
hardened HTTP server (tests/live.py), so each threat is tried over real sockets and a server-side
failure is logged rather than raised into the test. The run's output (``-s``, pytest's log capture
printed live) is then searched for unhandled-error entries: there must be none, except the canary's
(tests/live_canary.py), which shows the search finds what it looks for.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from live_canary import CANARY

HERE = Path(__file__).resolve().parent
# The first line of each kind of unhandled-error entry (its traceback follows it).
UNHANDLED = re.compile(
    r"api\.unhandled_error|invoke\.internal_error|Exception in ASGI application|Task exception was never retrieved"
    r"|Exception in callback|Exception in thread|Exception ignored in"
)


@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.environ.get("STOCKADE_TEST_LIVE") == "1", reason="this is the live run itself")
def test_security_package_on_live_servers_logs_no_unhandled_error(tmp_path):
    log = tmp_path / "live.log"
    with log.open("wb") as out:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-s",
                "-o",
                "log_cli=true",
                "-o",
                "log_cli_level=WARNING",
                "-p",
                "no:cacheprovider",
                "--ignore",
                str(HERE / "test_live_server.py"),
                str(HERE.parent / "live_canary.py"),
                str(HERE),
            ],
            cwd=HERE.parent.parent,
            env={**os.environ, "STOCKADE_TEST_LIVE": "1"},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    text = log.read_text(errors="replace")
    summary = text.strip().splitlines()[-1]
    assert result.returncode == 0, f"the live run failed: {summary}\n{text[-5000:]}"
    assert re.search(r"\d+ passed", summary), summary
    lines = text.splitlines()
    hits = [i for i, line in enumerate(lines) if UNHANDLED.search(line)]
    # An entry runs from its first line to the next entry's (its traceback in between).
    ends = [*hits[1:], len(lines)]
    canary = {
        i for i, end in zip(hits, ends, strict=True) if any(CANARY in line for line in lines[i : min(end, i + 2000)])
    }
    assert canary, "the canary's unhandled error was not found in the log: the search is blind"
    others = [lines[i] for i in hits if i not in canary]
    assert others == [], "unhandled errors logged during the live run:\n" + "\n".join(others[:20])
