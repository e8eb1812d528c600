"""Threat: skipping the name check by connecting to a raw IP address, or a numeric spelling of one.

Addresses are checked like resolved ones: a private or loopback address needs a CIDR grant inside
its range, a public one needs an address grant or an any-host grant. Spellings resolvers accept but
this policy cannot read as an address (``2130706433``, ``127.1``, ``0x7f.0.0.1``, ``0177.0.0.1``)
are refused outright.
"""

from __future__ import annotations

import pytest

from .conftest import fetch, is_refused, open_lease, raw_exchange, status_of

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]


async def test_raw_ip_needs_an_address_grant(backend, egress, test_host, tmp_path, family):
    name_only = [f"{test_host.name}:{test_host.http_port}"]
    result = await fetch(
        backend,
        egress,
        tmp_path,
        family,
        name_only,
        {
            "raw_test_host": test_host.url(host=test_host.address),
            "raw_public": "http://93.184.216.34/",
            "raw_loopback": "http://127.0.0.1:8080/",
        },
    )
    for name, outcome in result.items():
        assert is_refused(outcome), (name, outcome)
    assert egress.codes() == ["address_blocked", "address_not_allowed", "address_blocked"]
    assert egress.resolver.calls == []
    assert egress.connects == []


async def test_raw_ip_inside_a_cidr_grant_works(backend, egress, test_host, tmp_path, family):
    result = await fetch(
        backend,
        egress,
        tmp_path,
        family,
        [f"{test_host.address}/32:{test_host.http_port}"],
        {"raw": test_host.url(host=test_host.address)},
    )
    assert (result["raw"]["status"], result["raw"]["body"]) == (200, "hello from the test host\n")
    assert egress.events.events == []


@pytest.mark.parametrize("host", ["2130706433", "127.1", "0x7f.0.0.1", "0177.0.0.1", "0x7f000001", "017700000001"])
async def test_numeric_spellings_are_refused(egress, host):
    lease = await open_lease(egress, ["*:*", "127.0.0.0/8:*"])
    answer = await raw_exchange(lease.path, f"GET http://{host}:8080/ HTTP/1.1\r\n\r\n".encode())
    assert status_of(answer) == 403
    assert egress.codes() == ["bad_destination"]
    assert egress.resolver.calls == []
    assert egress.connects == []
