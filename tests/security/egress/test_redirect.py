"""Threat: a granted host redirects the action to a destination it may not reach.

The proxy never follows redirects: the 302 goes back to the client, and a client that follows it
sends a new request through the proxy, which checks it like any other.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from .conftest import fetch, is_refused, open_lease, raw_exchange, status_of

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]


def grants(test_host):
    return [f"{test_host.name}:{test_host.http_port}", f"{test_host.address}/32:{test_host.http_port}"]


async def test_following_a_redirect_to_a_disallowed_host_is_refused(backend, egress, test_host, tmp_path, family):
    other = quote(test_host.url(port=test_host.other_port), safe="")
    metadata = quote("http://169.254.169.254/latest/meta-data/", safe="")
    before = test_host.hits()
    urls = {
        "to_other_port": test_host.url(f"/redirect?to={other}"),
        "to_metadata": test_host.url(f"/redirect?to={metadata}"),
    }
    # Python's urllib follows redirects; Node's fetch does too (http.get does not: next test).
    result = await fetch(backend, egress, tmp_path, family, grants(test_host), urls, fetch=family == "nodejs")
    for name, outcome in result.items():
        assert is_refused(outcome) or "403" in str(outcome), (name, outcome)
    assert egress.codes() == ["port_not_allowed", "address_blocked"]
    after = test_host.hits()
    assert after[str(test_host.http_port)] == before.get(str(test_host.http_port), 0) + 2
    assert after.get(str(test_host.other_port), 0) == before.get(str(test_host.other_port), 0)


async def test_the_proxy_passes_the_redirect_back_without_following_it(egress, test_host):
    lease = await open_lease(egress, grants(test_host))
    other = quote(test_host.url(port=test_host.other_port), safe="")
    answer = await raw_exchange(lease.path, f"GET {test_host.url(f'/redirect?to={other}')} HTTP/1.1\r\n\r\n".encode())
    assert status_of(answer) == 302
    assert f"Location: {test_host.url(port=test_host.other_port)}".encode() in answer
    assert egress.connects == [(test_host.address, test_host.http_port)]
    assert egress.events.events == []


async def test_node_http_get_sees_the_redirect_itself(backend, egress, test_host, tmp_path):
    other = quote(test_host.url(port=test_host.other_port), safe="")
    result = await fetch(
        backend, egress, tmp_path, "nodejs", grants(test_host), {"r": test_host.url(f"/redirect?to={other}")}
    )
    assert result["r"]["status"] == 302
    assert result["r"]["location"] == test_host.url(port=test_host.other_port)
