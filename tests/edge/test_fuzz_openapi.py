"""Every operation of docs/api/openapi.yaml, fuzzed against a live server (tests/edge/fuzz.py)."""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from .fuzz import Request, Tally, operations, requests

EXAMPLES = int(os.environ.get("STOCKADE_TEST_FUZZ_EXAMPLES", "8"))
OPERATIONS = operations()
REPORT = Path(__file__).resolve().parents[2] / "var" / "fuzz" / "report.json"
_SAFE = "/%;~@.:-_!$&'()*+,="
APIMGMT = "/api/v1/web/whisk.system/apimgmt/"


@pytest.fixture(scope="module")
def tally():
    found = Tally(operations=len(OPERATIONS))
    yield found
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({"examples_per_operation": EXAMPLES, **found.to_json()}, indent=2) + "\n")


def _send(edge, request: Request) -> tuple[int, dict[str, str], bytes]:
    target = urllib.parse.quote(request.path, safe=_SAFE)
    if request.query:
        target += "?" + urllib.parse.urlencode(request.query)
    headers = {"Host": "127.0.0.1"}
    if request.authenticated:
        headers["Authorization"] = edge.auth_header
    if request.body is not None:
        headers["Content-Type"] = request.content_type
    connection = http.client.HTTPConnection(edge.host, edge.port, timeout=60)
    try:
        connection.request(request.method, target, body=request.body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _problem(request: Request, status: int, headers: dict[str, str], body: bytes) -> str | None:
    ran = "x-openwhisk-activation-id" in headers  # the action ran: its own response (or the record)
    # OpenWhisk answers apimgmt's gateway failures with 502 (reference §10), in the error envelope.
    upstream = request.path.startswith(APIMGMT)
    # An advisory sync whose download source cannot be reached is unavailable (503), not a bug.
    unreachable = request.path == "/api/v1/admin/advisories/sync" and status == 503
    if status >= 500 and not (status == 502 and (ran or upstream)) and not unreachable:
        return f"{status}"
    if status >= 400 and not ran:
        try:
            shaped = json.loads(body)
        except ValueError:
            return f"{status} not JSON"
        if not isinstance(shaped, dict) or set(shaped) != {"error", "code"}:
            return f"{status} not OpenWhisk-shaped"
    if b"Traceback" in body:
        return "traceback in the body"
    return None


@pytest.mark.parametrize("operation", OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_operation_never_5xx_and_errors_are_openwhisk_shaped(fuzz_edge, tally, operation):
    path, method = operation

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(requests(path, method))
    def run(request: Request) -> None:
        status, headers, body = _send(fuzz_edge, request)
        tally.examples += 1
        tally.by_status[status] = tally.by_status.get(status, 0) + 1
        problem = _problem(request, status, headers, body)
        if problem is not None:
            tally.failures.append(f"{problem}: {request.method} {request.path} {request.query} {body[:200]!r}")
        assert problem is None, (request, body[:300])

    run()
