"""Threat: a granted host NAME that resolves to the proxy host's loopback (DNS pointing inwards).

A real listener on the host's 127.0.0.1 proves the connection would work if the proxy made it; the
proxy checks the resolved address, so a name grant alone never reaches loopback. Only a CIDR grant
inside 127.0.0.0/8 could (the positive control).
"""

from __future__ import annotations

import pytest

from .conftest import fetch, is_refused, open_lease, raw_exchange, status_of

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]


async def test_granted_name_resolving_to_loopback_is_refused(backend, egress, tmp_path, family, loopback_listener):
    port = loopback_listener.port
    result = await fetch(
        backend,
        egress,
        tmp_path,
        family,
        [f"loopback.stockade.test:{port}", "*:*"],
        {"loopback": f"http://loopback.stockade.test:{port}/", "localhost": f"http://localhost:{port}/"},
    )
    assert is_refused(result["loopback"]), result
    assert is_refused(result["localhost"]), result  # 'localhost' is a name the proxy resolves: refused too
    assert loopback_listener.accepted == 0
    assert egress.connects == []
    [loopback_event] = [e for e in egress.events.events if e.details["host"] == "loopback.stockade.test"]
    assert loopback_event.details["code"] == "address_blocked"
    assert loopback_event.details["address"] == "127.0.0.1"


async def test_only_a_cidr_grant_inside_loopback_reaches_it(egress, loopback_listener):
    port = loopback_listener.port
    refused = await open_lease(egress, [f"loopback.stockade.test:{port}", f"0.0.0.0/0:{port}"])
    answer = await raw_exchange(refused.path, f"GET http://loopback.stockade.test:{port}/ HTTP/1.1\r\n\r\n".encode())
    assert status_of(answer) == 403
    assert loopback_listener.accepted == 0
    granted = await open_lease(egress, [f"loopback.stockade.test:{port}", f"127.0.0.1/32:{port}"])
    answer = await raw_exchange(granted.path, f"GET http://loopback.stockade.test:{port}/ HTTP/1.1\r\n\r\n".encode())
    assert status_of(answer) == 200
    assert loopback_listener.accepted == 1
