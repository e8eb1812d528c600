"""Landlock: an allow list of filesystem paths, TCP ports and IPC scopes, enforced by the kernel.

Landlock restricts even a process that somehow regained capabilities, and it is stacked on top of the
read-only mounts, so a mistake in one layer is caught by the other. Every right the running kernel's
ABI knows is *handled* (denied unless a rule grants it); newer rights are reported as not enforced on
older kernels instead of failing, because the mounts and seccomp still hold.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping

from stockade.sandbox import _syscalls
from stockade.sandbox.policy import LandlockPolicy, PathAccess

__all__ = ["ABI_FOR_NET", "ABI_FOR_SCOPES", "abi", "handled_fs_access", "restrict"]

# Filesystem rights (include/uapi/linux/landlock.h).
_EXECUTE = 1 << 0
_WRITE_FILE = 1 << 1
_READ_FILE = 1 << 2
_READ_DIR = 1 << 3
_REMOVE_DIR = 1 << 4
_REMOVE_FILE = 1 << 5
_MAKE_CHAR = 1 << 6
_MAKE_DIR = 1 << 7
_MAKE_REG = 1 << 8
_MAKE_SOCK = 1 << 9
_MAKE_FIFO = 1 << 10
_MAKE_BLOCK = 1 << 11
_MAKE_SYM = 1 << 12
_REFER = 1 << 13  # ABI 2
_TRUNCATE = 1 << 14  # ABI 3
_IOCTL_DEV = 1 << 15  # ABI 5
# Rights that make sense on a file (the kernel rejects directory-only rights on a file rule).
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV

_NET_BIND_TCP = 1 << 0
_NET_CONNECT_TCP = 1 << 1
_SCOPE_BITS = {"abstract_unix_socket": 1 << 0, "signal": 1 << 1}

ABI_FOR_NET = 4
ABI_FOR_SCOPES = 6

# Invariant: "write" never includes MAKE_CHAR or MAKE_BLOCK: no device nodes, even in /tmp.
_ACCESS_BITS: dict[PathAccess, int] = {
    "read": _READ_FILE | _READ_DIR,
    "write": _WRITE_FILE
    | _REMOVE_DIR
    | _REMOVE_FILE
    | _MAKE_DIR
    | _MAKE_REG
    | _MAKE_SOCK
    | _MAKE_FIFO
    | _MAKE_SYM
    | _REFER
    | _TRUNCATE,
    "execute": _EXECUTE,
}
_PORT_BITS = {"bind": _NET_BIND_TCP, "connect": _NET_CONNECT_TCP}


def abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is unavailable."""
    try:
        return _syscalls.landlock_abi()
    except OSError:
        return 0


def handled_fs_access(version: int) -> int:
    """Every filesystem right ABI ``version`` knows about."""
    if version >= 5:
        return (1 << 16) - 1
    if version >= 3:
        return (1 << 15) - 1
    if version == 2:
        return (1 << 14) - 1
    return (1 << 13) - 1


def _path_rights(access: Iterable[PathAccess]) -> int:
    bits = 0
    for name in access:
        bits |= _ACCESS_BITS[name]
    return bits


def restrict(policy: LandlockPolicy, *, version: int, egress: bool, variables: Mapping[str, str]) -> None:
    """Setup step: confine this process (and its future children) to ``policy``.

    ``variables`` resolves placeholders such as ``{node}``. Paths are sandbox paths, so this runs after
    pivot_root. Precondition: no_new_privs is set.
    """
    if version < 1:
        raise OSError(95, "Landlock is not available in this kernel")  # EOPNOTSUPP
    handled_fs = handled_fs_access(version)
    handled_net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if version >= ABI_FOR_NET else 0
    scoped = 0
    if version >= ABI_FOR_SCOPES:
        for scope in policy.scopes:
            scoped |= _SCOPE_BITS[scope]
    ruleset = _syscalls.landlock_create_ruleset(handled_fs, handled_net, scoped, version)
    try:
        for rule in policy.paths:
            path = variables[rule.path[1:-1]] if rule.path.startswith("{") else rule.path
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rights = _path_rights(rule.access) & handled_fs
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    rights &= _FILE_RIGHTS
                _syscalls.landlock_add_path_rule(ruleset, rights, fd)
            finally:
                os.close(fd)
        if handled_net:
            for port in policy.tcp_ports:
                if port.when == "always" or egress:
                    bits = 0
                    for name in port.access:
                        bits |= _PORT_BITS[name]
                    _syscalls.landlock_add_net_rule(ruleset, bits, port.port)
        _syscalls.landlock_restrict_self(ruleset)
    finally:
        os.close(ruleset)
