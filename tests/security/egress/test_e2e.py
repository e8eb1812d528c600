"""End to end through the Invoker: an action allowed to reach the test host fetches a page through
the proxy and returns it; a denied one is refused, and the denial is logged and emitted with the
action, the destination and the activation id. An action without grants gets no proxy at all.
"""

from __future__ import annotations

import secrets
import textwrap

import pytest
import pytest_asyncio
import structlog

from stockade.domain import Action, ActivationStatus, EntityPath, Exec, KeyValue
from stockade.invoker import CodeStore, Invoker, RunRequest
from stockade.observability.events import EventType

from .conftest import FETCH, run_in_sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]

KINDS = {"python": "python:3", "nodejs": "nodejs:20"}


def action(family, egress=None, name="fetcher"):
    annotations = (KeyValue("policy", {"egress": egress}),) if egress is not None else ()
    code = textwrap.dedent(FETCH[family]) if family == "python" else FETCH[family]
    return Action(EntityPath("guest", name), Exec(KINDS[family], code), annotations=annotations)


@pytest_asyncio.fixture(loop_scope="module")
async def invoker(backend, egress, tmp_path):
    invoker = Invoker(backend, CodeStore(tmp_path / "code"), egress=egress.proxy)
    yield invoker
    await invoker.close()


async def test_allowed_action_fetches_through_the_proxy(invoker, egress, test_host, family):
    grants = [f"{test_host.name}:{test_host.http_port}", f"{test_host.address}/32:{test_host.http_port}"]
    act = action(family, grants)
    first = await invoker.run(RunRequest(act, {"urls": {"page": test_host.url()}}, secrets.token_hex(16)))
    assert first.response.status is ActivationStatus.SUCCESS, first.response
    assert first.response.result["page"]["status"] == 200
    assert first.response.result["page"]["body"] == "hello from the test host\n"
    # Warm: the same sandbox and the same proxy socket serve the next activation.
    second = await invoker.run(RunRequest(act, {"urls": {"page": test_host.url()}}, secrets.token_hex(16)))
    assert second.sandbox_id == first.sandbox_id
    assert second.response.result["page"]["status"] == 200
    assert egress.proxy.statistics().sockets_open == 1
    assert egress.events.events == []
    await invoker.close()
    assert egress.proxy.statistics().sockets_open == 0


async def test_denied_action_is_refused_and_the_denial_logged(invoker, egress, test_host, family):
    act = action(family, ["api.stockade.test:443"])
    activation_id = secrets.token_hex(16)
    with structlog.testing.capture_logs() as logs:
        outcome = await invoker.run(RunRequest(act, {"urls": {"page": test_host.url()}}, activation_id))
    page = outcome.response.result["page"]
    assert page.get("status") == 403 or "403 Forbidden" in page.get("error", ""), page
    [log] = [entry for entry in logs if entry["event"] == "security.egress_denied"]
    assert log["action"] == "/guest/fetcher"
    assert log["activation_id"] == activation_id
    assert log["destination"] == f"{test_host.name}:{test_host.http_port}"
    assert log["code"] == "host_not_allowed"
    [event] = egress.events.events
    assert event.type is EventType.EGRESS_DENIED
    assert (event.namespace, event.action, event.activation_id) == ("guest", "fetcher", activation_id)
    assert (event.details["host"], event.details["port"]) == (test_host.name, test_host.http_port)
    assert egress.connects == []


async def test_action_without_grants_gets_no_network(invoker, egress, test_host, family):
    outcome = await invoker.run(
        RunRequest(action(family, name="offline"), {"urls": {"page": test_host.url()}}, secrets.token_hex(16))
    )
    page = outcome.response.result["page"]
    assert "error" in page, page
    assert egress.proxy.statistics().sockets_open == 0
    assert egress.events.events == []


async def test_malformed_egress_grant_refuses_the_action(invoker, egress, test_host):
    outcome = await invoker.run(
        RunRequest(action("python", ["no-port.example.com"]), {"urls": {}}, secrets.token_hex(16))
    )
    assert outcome.response.status is ActivationStatus.DEVELOPER_ERROR
    assert "egress policy is invalid" in outcome.response.result["error"]
    assert egress.proxy.statistics().sockets_open == 0


async def test_https_goes_end_to_end_through_connect(backend, egress, test_host, tmp_path, family):
    """TLS is between the action and the test host (the proxy only sees CONNECT); for Node.js both the
    https agent and fetch (trusting the test CA through NODE_EXTRA_CA_CERTS) work."""
    grants = [f"{test_host.name}:{test_host.tls_port}", f"{test_host.address}/32:{test_host.tls_port}"]
    url = f"https://{test_host.name}:{test_host.tls_port}/page"
    value = {"urls": {"tls": url}, "ca": test_host.ca_pem}
    run = await run_in_sandbox(backend, egress, tmp_path, family, FETCH[family], grants, value)
    assert run.result["tls"]["status"] == 200, run.result
    assert run.result["tls"]["body"] == "hello from the test host\n"
    if family == "nodejs":
        run = await run_in_sandbox(
            backend,
            egress,
            tmp_path,
            family,
            FETCH[family],
            grants,
            {"urls": {"tls": url}, "fetch": True},
            extra_files={"ca.pem": test_host.ca_pem},
            env={"NODE_EXTRA_CA_CERTS": "/fn/ca.pem"},
        )
        assert run.result["tls"]["status"] == 200, run.result
    assert egress.events.events == []
