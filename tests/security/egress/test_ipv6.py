"""Threat: reaching loopback or internal hosts over IPv6 (::1, IPv4-mapped, link-local, unique local).

A listener on the host's ::1 and 127.0.0.1 proves the connection would work; every IPv6 spelling is
checked after normalisation (IPv4-mapped addresses as the IPv4 address they carry).
"""

from __future__ import annotations

import pytest

from .conftest import fetch, is_refused, open_lease, raw_exchange, status_of

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]

ANY = ["*:*", "[::/0]:*", "0.0.0.0/0:*", "v6loopback.stockade.test:*", "v4mapped.stockade.test:*"]


async def test_ipv6_loopback_and_mapped_addresses_are_refused(backend, egress, tmp_path, family, loopback_listener):
    port = loopback_listener.port
    result = await fetch(
        backend,
        egress,
        tmp_path,
        family,
        ANY,
        {
            "v6_loopback": f"http://[::1]:{port}/",
            "v4_mapped": f"http://[::ffff:127.0.0.1]:{port}/",
            "v4_mapped_hex": f"http://[::ffff:7f00:1]:{port}/",
            "name_to_v6_loopback": f"http://v6loopback.stockade.test:{port}/",
            "name_to_v4_mapped": f"http://v4mapped.stockade.test:{port}/",
        },
    )
    for name, outcome in result.items():
        assert is_refused(outcome), (name, outcome)
    assert set(egress.codes()) == {"address_blocked"}
    assert {e.details["address"] for e in egress.events.events} == {"::1", "127.0.0.1"}
    assert loopback_listener.accepted == 0
    assert egress.connects == []


@pytest.mark.parametrize(
    "target",
    [
        "[::1]:80",
        "[::]:80",
        "[fe80::1]:80",
        "[fd00::1]:80",
        "[::ffff:10.0.0.1]:80",
        "[64:ff9b::7f00:1]:80",
        "[2002:7f00:1::]:80",
        "[fe80::1%25lo]:80",
        "linklocal6.stockade.test:80",
    ],
)
async def test_connect_to_internal_ipv6_is_refused(egress, target):
    lease = await open_lease(egress, [*ANY, "linklocal6.stockade.test:80"])
    answer = await raw_exchange(lease.path, f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
    assert status_of(answer) == 403
    assert egress.codes()[0] in ("address_blocked", "bad_destination")
    assert egress.connects == []
