"""Threat: an action granted a host on one port connects to that host on another port.

The test host listens on the other port too (its hit counter would show a request), so a refusal
is the proxy's doing, not a closed port.
"""

from __future__ import annotations

import pytest

from .conftest import fetch, is_refused, open_lease, raw_exchange, status_of

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]


async def test_other_port_of_a_granted_host_is_refused(backend, egress, test_host, tmp_path, family):
    grants = [f"{test_host.name}:{test_host.http_port}", f"{test_host.address}/32:{test_host.http_port}"]
    before = test_host.hits()
    result = await fetch(
        backend,
        egress,
        tmp_path,
        family,
        grants,
        {
            "granted": test_host.url(),
            "by_name": test_host.url(port=test_host.other_port),
            "by_address": test_host.url(host=test_host.address, port=test_host.other_port),
        },
    )
    assert result["granted"]["status"] == 200
    assert is_refused(result["by_name"]), result
    assert is_refused(result["by_address"]), result
    assert egress.codes() == ["port_not_allowed", "port_not_allowed"]
    assert [e.details["port"] for e in egress.events.events] == [test_host.other_port] * 2
    after = test_host.hits()
    assert after.get(str(test_host.other_port), 0) == before.get(str(test_host.other_port), 0)
    assert (test_host.address, test_host.other_port) not in egress.connects


@pytest.mark.parametrize("port", [22, 25, 53, 443, 9999, 65535])
async def test_connect_to_ports_outside_the_grant_is_refused(egress, test_host, port):
    lease = await open_lease(egress, [f"{test_host.name}:{test_host.http_port}"])
    answer = await raw_exchange(lease.path, f"CONNECT {test_host.name}:{port} HTTP/1.1\r\n\r\n".encode())
    assert status_of(answer) == 403
    assert egress.codes() == ["port_not_allowed"]
    assert egress.resolver.calls == []
    assert egress.connects == []
