"""Network: the sandbox's net namespace is empty; with an egress socket, only loopback comes up.

No interface leads out of the namespace, so nothing inside can reach the host's loopback or any other
address: connections fail with ENETUNREACH. Allowlisted egress (a later feature) keeps that: the host
proxy's unix socket is bound into the sandbox by the mounts step, and an in-sandbox forwarder on
127.0.0.1:3128 relays to it, which needs ``lo`` up and nothing else.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct

from stockade.sandbox.plan import SandboxPlan

__all__ = ["configure", "interfaces"]

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sH22x"


def interfaces() -> list[str]:
    """Interface names in this network namespace (read through /proc/net/dev)."""
    with open("/proc/net/dev") as handle:
        lines = handle.read().splitlines()[2:]
    return sorted(line.split(":", 1)[0].strip() for line in lines)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(_IFREQ, b"lo", 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


def configure(plan: SandboxPlan) -> None:
    """Setup step: check the namespace is empty; bring loopback up only for egress.

    Precondition: /proc is the sandbox's own (mounted by the mounts step), so /proc/net is this
    namespace's view; CAP_NET_ADMIN in the sandbox's user namespace is still held.
    """
    found = interfaces()
    # Invariant: a fresh net namespace holds only a down loopback; anything else means we are not in one.
    if found != ["lo"]:
        raise OSError(os.EX_SOFTWARE, f"network namespace is not empty: {found}")
    if plan.has_egress:
        _loopback_up()
