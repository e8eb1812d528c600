"""Threat: reaching the cloud metadata service (169.254.169.254) for instance credentials.

By a granted name that resolves there, by its address, by its IPv4-mapped IPv6 form, and with the
broadest grants there are (``*:*``, ``0.0.0.0/0``, the hosted-OpenWhisk preset): all refused before
any connection is attempted.
"""

from __future__ import annotations

import pytest

from .conftest import fetch, is_refused, open_lease, raw_exchange, status_of

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]

BROAD = ["metadata.stockade.test:80", "*:*", "0.0.0.0/0:*", "[::/0]:*", "preset:openwhisk-hosted"]


async def test_metadata_by_name_and_by_address_is_refused(backend, egress, tmp_path, family):
    result = await fetch(
        backend,
        egress,
        tmp_path,
        family,
        BROAD,
        {
            "by_name": "http://metadata.stockade.test/latest/meta-data/iam/security-credentials/",
            "by_address": "http://169.254.169.254/latest/meta-data/",
            "mapped": "http://[::ffff:169.254.169.254]/latest/meta-data/",
            "neighbour": "http://169.254.170.2/v2/credentials",
        },
    )
    for name, outcome in result.items():
        assert is_refused(outcome), (name, outcome)
    assert set(egress.codes()) == {"address_blocked"}
    assert {e.details["address"] for e in egress.events.events} >= {"169.254.169.254"}
    assert egress.connects == []


@pytest.mark.parametrize(
    "target",
    ["169.254.169.254:80", "[::ffff:169.254.169.254]:80", "[::ffff:a9fe:a9fe]:80", "metadata.stockade.test:80"],
)
async def test_connect_to_metadata_is_refused(egress, target):
    lease = await open_lease(egress, BROAD)
    answer = await raw_exchange(lease.path, f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
    assert status_of(answer) == 403
    assert egress.codes() == ["address_blocked"]
    assert egress.connects == []
