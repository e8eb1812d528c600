"""Who is calling: the client address of a request, believing forwarded headers only from
proxies the operator named (``auth.trusted_proxies``; none by default).

Pure: given the TCP peer, the ``X-Forwarded-For`` header and the trusted networks, the address
used for lockouts, events and the audit log.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

__all__ = ["Network", "client_address", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAX_HOPS = 32


@functools.lru_cache(maxsize=8)
def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDRs (ValueError for a malformed entry)."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip())


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == net.version and ip in net for net in networks)


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address.

    Without trusted proxies (the default) this is always ``peer``. When ``peer`` is a trusted
    proxy, ``X-Forwarded-For`` is walked from the right (the hop the proxy added) past further
    trusted proxies; the first address not trusted is the client. A malformed hop ends the walk
    at the last address a trusted proxy vouched for.
    """
    if not trusted or not forwarded_for or not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",")][-_MAX_HOPS:]
    current = peer
    for hop in reversed(hops):
        try:
            address = str(ipaddress.ip_address(hop))
        except ValueError:
            return current
        if not _trusted(address, trusted):
            return address
        current = address
    return current
