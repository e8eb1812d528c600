"""The only module that touches ctypes: thin, checked wrappers over the Linux syscalls the sandbox needs.

Every wrapper raises ``OSError`` with the errno on failure and returns nothing useful otherwise, so the
mechanism modules read as plain Python. Nothing here decides policy; callers pass the numbers.

Invariant: no function here allocates memory that outlives the call, and none spawns threads, so they
are safe in a freshly forked child of the zygote.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

__all__ = [
    "AT_RECURSIVE",
    "CLONE_NEWCGROUP",
    "CLONE_NEWIPC",
    "CLONE_NEWNET",
    "CLONE_NEWNS",
    "CLONE_NEWPID",
    "CLONE_NEWUSER",
    "CLONE_NEWUTS",
    "MNT_DETACH",
    "MOUNT_ATTR_NODEV",
    "MOUNT_ATTR_NOEXEC",
    "MOUNT_ATTR_NOSUID",
    "MOUNT_ATTR_RDONLY",
    "MS_BIND",
    "MS_NODEV",
    "MS_NOEXEC",
    "MS_NOSUID",
    "MS_PRIVATE",
    "MS_RDONLY",
    "MS_REC",
    "MS_SLAVE",
    "capbset_drop",
    "capset_zero",
    "clear_ambient_caps",
    "landlock_abi",
    "landlock_add_net_rule",
    "landlock_add_path_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "mount",
    "mount_setattr",
    "mount_setattr_fd",
    "move_mount_fd",
    "open_tree_clone",
    "pivot_root",
    "seccomp_load_filter",
    "set_child_subreaper",
    "set_dumpable",
    "set_no_new_privs",
    "set_pdeathsig",
    "set_securebits",
    "sethostname",
    "setns",
    "umount2",
    "unshare",
]

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MNT_DETACH = 0x2

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
AT_RECURSIVE = 0x8000
_AT_EMPTY_PATH = 0x1000
_OPEN_TREE_CLONE = 1
_OPEN_TREE_CLOEXEC = 0o2000000
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOVE_MOUNT_T_EMPTY_PATH = 0x40
_AT_FDCWD = -100

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SECCOMP_SET_MODE_FILTER = 1
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_LANDLOCK_RULE_NET_PORT = 2

# Syscalls glibc has no wrapper for (or only a recent one). The numbers of the syscalls added after
# 4.x are shared by every architecture; the old ones differ.
_NR_BY_MACHINE: dict[str, dict[str, int]] = {
    "x86_64": {"pivot_root": 155, "capset": 126, "seccomp": 317},
    "aarch64": {"pivot_root": 41, "capset": 91, "seccomp": 277},
}
_NR_COMMON = {
    "open_tree": 428,
    "move_mount": 429,
    "mount_setattr": 442,
    "landlock_create_ruleset": 444,
    "landlock_add_rule": 445,
    "landlock_restrict_self": 446,
}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _nr(name: str) -> int:
    if name in _NR_COMMON:
        return _NR_COMMON[name]
    table = _NR_BY_MACHINE.get(platform.machine())
    if table is None:
        raise OSError(38, f"sandbox syscalls are not mapped for {platform.machine()}")  # ENOSYS
    return table[name]


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _path(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _syscall(name: str, *args: int | bytes | ctypes.Array[ctypes.c_char] | None) -> int:
    cargs = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    return _check(_libc.syscall(ctypes.c_long(_nr(name)), *cargs), name)


# ---------------------------------------------------------------- namespaces and mounts


def unshare(flags: int) -> None:
    """unshare(2)."""
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2)."""
    _check(_libc.mount(_path(source), _path(target), _path(fstype), flags, _path(data)), f"mount {target}")


def umount2(target: str, flags: int) -> None:
    """umount2(2)."""
    _check(_libc.umount2(_path(target), flags), f"umount2 {target}")


def mount_setattr(path: str, attr_set: int, *, recursive: bool) -> None:
    """mount_setattr(2): add mount attributes (ro, nosuid, ...) to the mount at ``path``, optionally to its subtree.

    Unlike MS_REMOUNT it only adds flags, so flags the kernel locked on the source mount survive untouched.
    """
    # struct mount_attr { u64 attr_set; u64 attr_clr; u64 propagation; u64 userns_fd; }
    attr = struct.pack("=QQQQ", attr_set, 0, 0, 0)
    buf = ctypes.create_string_buffer(attr, len(attr))
    flags = AT_RECURSIVE if recursive else 0
    _syscall("mount_setattr", _AT_FDCWD, os.fsencode(path), flags, buf, len(attr))


def open_tree_clone(path: str) -> int:
    """open_tree(OPEN_TREE_CLONE | AT_RECURSIVE): a detached copy of the mount tree at ``path``, as an fd."""
    flags = _OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC | AT_RECURSIVE
    return _syscall("open_tree", _AT_FDCWD, os.fsencode(path), flags)


def mount_setattr_fd(fd: int, attr_set: int) -> None:
    """mount_setattr(2) on the (detached) mount tree ``fd`` refers to, recursively."""
    attr = struct.pack("=QQQQ", attr_set, 0, 0, 0)
    buf = ctypes.create_string_buffer(attr, len(attr))
    _syscall("mount_setattr", fd, b"", _AT_EMPTY_PATH | AT_RECURSIVE, buf, len(attr))


def move_mount_fd(source_fd: int, target_fd: int) -> None:
    """move_mount(2): attach the detached tree ``source_fd`` on the directory ``target_fd`` (both by fd)."""
    flags = _MOVE_MOUNT_F_EMPTY_PATH | _MOVE_MOUNT_T_EMPTY_PATH
    _syscall("move_mount", source_fd, b"", target_fd, b"", flags)


def setns(fd: int, nstype: int) -> None:
    """setns(2): join the namespaces ``nstype`` of the process (pidfd) or namespace file ``fd``."""
    _check(_libc.setns(fd, nstype), "setns")


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2)."""
    _syscall("pivot_root", os.fsencode(new_root), os.fsencode(put_old))


def sethostname(name: str) -> None:
    """sethostname(2) in the current UTS namespace."""
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


# ---------------------------------------------------------------- prctl and capabilities


def _prctl(option: int, arg2: int = 0, arg3: int = 0, what: str = "prctl") -> int:
    return _check(_libc.prctl(option, arg2, arg3, 0, 0), what)


def set_child_subreaper() -> None:
    """Orphaned descendants are reparented to this process instead of init."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1, what="PR_SET_CHILD_SUBREAPER")


def set_pdeathsig(signal_number: int) -> None:
    """Receive ``signal_number`` when the parent thread exits."""
    _prctl(_PR_SET_PDEATHSIG, signal_number, what="PR_SET_PDEATHSIG")


def set_dumpable(dumpable: bool) -> None:
    """PR_SET_DUMPABLE: a non-dumpable process's /proc files belong to root and it cannot be ptraced."""
    _prctl(_PR_SET_DUMPABLE, 1 if dumpable else 0, what="PR_SET_DUMPABLE")


def set_no_new_privs() -> None:
    """PR_SET_NO_NEW_PRIVS: execve can never grant privileges again (setuid bits, file caps)."""
    _prctl(_PR_SET_NO_NEW_PRIVS, 1, what="PR_SET_NO_NEW_PRIVS")


def set_securebits(bits: int) -> None:
    """PR_SET_SECUREBITS (needs CAP_SETPCAP)."""
    _prctl(_PR_SET_SECUREBITS, bits, what="PR_SET_SECUREBITS")


def capbset_drop(cap: int) -> bool:
    """Drop ``cap`` from the bounding set; False once ``cap`` is past the kernel's last capability."""
    if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) < 0:
        err = ctypes.get_errno()
        if err == 22:  # EINVAL: no such capability
            return False
        raise OSError(err, f"PR_CAPBSET_DROP {cap}: {os.strerror(err)}")
    return True


def clear_ambient_caps() -> None:
    """Empty the ambient capability set."""
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, what="PR_CAP_AMBIENT_CLEAR_ALL")


def capset_zero() -> None:
    """capset(2): empty the effective, permitted and inheritable sets of this thread."""
    header = ctypes.create_string_buffer(struct.pack("=Ii", _LINUX_CAPABILITY_VERSION_3, 0), 8)
    data = ctypes.create_string_buffer(bytes(24), 24)  # two struct __user_cap_data_struct, all zero
    _syscall("capset", header, data)


# ---------------------------------------------------------------- landlock


def landlock_abi() -> int:
    """The Landlock ABI version the kernel offers, or 0 when Landlock is absent or disabled."""
    result = _libc.syscall(
        ctypes.c_long(_nr("landlock_create_ruleset")),
        None,
        ctypes.c_long(0),
        ctypes.c_long(_LANDLOCK_CREATE_RULESET_VERSION),
    )
    return max(0, int(result))


def landlock_create_ruleset(handled_fs: int, handled_net: int, scoped: int, abi: int) -> int:
    """Create a ruleset fd; the attribute struct is sized for ``abi`` (net from ABI 4, scoped from ABI 6)."""
    if abi >= 6:
        attr = struct.pack("=QQQ", handled_fs, handled_net, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", handled_fs, handled_net)
    else:
        attr = struct.pack("=Q", handled_fs)
    buf = ctypes.create_string_buffer(attr, len(attr))
    return _syscall("landlock_create_ruleset", buf, len(attr), 0)


def landlock_add_path_rule(ruleset_fd: int, allowed_access: int, path_fd: int) -> None:
    """Allow ``allowed_access`` beneath the file or directory open at ``path_fd``."""
    # struct landlock_path_beneath_attr { u64 allowed_access; s32 parent_fd; } __attribute__((packed))
    buf = ctypes.create_string_buffer(struct.pack("=Qi", allowed_access, path_fd), 12)
    _syscall("landlock_add_rule", ruleset_fd, _LANDLOCK_RULE_PATH_BENEATH, buf, 0)


def landlock_add_net_rule(ruleset_fd: int, allowed_access: int, port: int) -> None:
    """Allow ``allowed_access`` (TCP bind/connect) on ``port``."""
    # struct landlock_net_port_attr { u64 allowed_access; u64 port; }
    buf = ctypes.create_string_buffer(struct.pack("=QQ", allowed_access, port), 16)
    _syscall("landlock_add_rule", ruleset_fd, _LANDLOCK_RULE_NET_PORT, buf, 0)


def landlock_restrict_self(ruleset_fd: int) -> None:
    """Enforce the ruleset on this thread and every future child (needs no_new_privs)."""
    _syscall("landlock_restrict_self", ruleset_fd, 0)


# ---------------------------------------------------------------- seccomp


def seccomp_load_filter(program: bytes) -> None:
    """seccomp(SECCOMP_SET_MODE_FILTER) with a precompiled classic-BPF program (struct sock_filter[])."""
    if not program or len(program) % 8:
        raise ValueError("a seccomp BPF program is a non-empty array of 8-byte instructions")
    code = ctypes.create_string_buffer(program, len(program))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; } (padding before the pointer)
    fprog = struct.pack("=HxxxxxxQ", len(program) // 8, ctypes.addressof(code))
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    _syscall("seccomp", _SECCOMP_SET_MODE_FILTER, 0, fbuf)
