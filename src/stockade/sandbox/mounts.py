"""Mounts: build the sandbox's read-only root from a tmpfs and read-only binds, then pivot into it.

Three steps, in setup order, all inside the new namespaces:

* ``open_sources``: an O_PATH handle on every bind source and device node, taken while the process
  still has the parked identity (host uid 0 in root mode), which may search root-only directories
  such as a 0700 /root. Binds then go through /proc/self/fd, so the sandbox uid never needs a path to
  them. (The handles are in this mount namespace, so the kernel accepts them as bind sources.)
* ``build_root``: a tmpfs root holding read-only binds (/usr, the interpreter prefix, the runtimes, the
  action code at /fn), a private size- and inode-limited /tmp, a minimal /dev, a fresh /proc and a
  tiny /etc. Nothing else of the host is reachable from it.
* ``pivot_root``: switch to it, detach the host's root, and make the tmpfs root read-only.

A stem cell (a sandbox started before its action is known) is built without the code bind: its
``/fn`` is an empty directory of the read-only root. ``attach_code`` runs later, *outside* the
sandbox, in a short-lived helper the zygote forks: it clones the code directory's mount tree
detached (``open_tree``), makes the clone read-only, nosuid, nodev and noexec, joins the sandbox's
user and mount namespaces through its pidfd, and mounts the clone on ``/fn`` (``move_mount``).
"""

from __future__ import annotations

import contextlib
import os

from stockade.sandbox import _syscalls as sc
from stockade.sandbox.plan import CODE_PATH, SandboxPlan

__all__ = ["attach_code", "build_root", "open_sources", "pivot_root", "rehearse_attach"]

_RO = sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV
_DEVICES = ("null", "zero", "full", "random", "urandom")
_DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
)
# Kernel knobs under /proc that stay visible but must never be writable, even by a sandbox that
# somehow regained capabilities in its user namespace.
_PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus")


def _make_target(path: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(path, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def _bind_read_only(source: str, target: str, *, is_dir: bool, noexec: bool) -> None:
    _make_target(target, is_dir)
    sc.mount(source, target, None, sc.MS_BIND | sc.MS_REC)
    # mount_setattr only adds flags, so flags the source mount already has (and may have locked) stay.
    sc.mount_setattr(target, _RO | (sc.MOUNT_ATTR_NOEXEC if noexec else 0), recursive=True)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def open_sources(plan: SandboxPlan) -> dict[str, int]:
    """Setup step: O_PATH fds of every bind source and of the device nodes, by host path."""
    handles: dict[str, int] = {}
    try:
        for path in (*(b.source for b in plan.binds), *(f"/dev/{name}" for name in _DEVICES)):
            if path not in handles:
                handles[path] = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except BaseException:
        for fd in handles.values():
            os.close(fd)
        raise
    return handles


def build_root(plan: SandboxPlan, root: str, sources: dict[str, int]) -> None:
    """Setup step: assemble the sandbox root at ``root`` (an empty directory) in this mount namespace.

    Precondition: this process is pid 1 of the new pid namespace (for /proc), holds CAP_SYS_ADMIN in
    the new user namespace, and already has the sandbox's uid (files it creates belong to it).
    ``sources`` (from ``open_sources``) are closed here.
    """
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    sc.mount("tmpfs", root, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "size=1m,nr_inodes=1024,mode=0755")
    for bind in plan.binds:
        source = f"/proc/self/fd/{sources[bind.source]}"
        _bind_read_only(source, root + bind.target, is_dir=bind.is_dir, noexec=bind.noexec)
    for name, target in plan.symlinks:
        os.symlink(target, f"{root}/{name}")
    # A stem cell's plan has no code bind: /fn stays an empty directory of the (read-only) root
    # until attach_code mounts the action's code on it.
    os.makedirs(root + CODE_PATH, mode=0o755, exist_ok=True)

    # /etc: only what libc and runtimes look up; the host's /etc is never visible.
    os.makedirs(f"{root}/etc", mode=0o755, exist_ok=True)
    uid = plan.inner_uid
    home = "/tmp"  # noqa: S108 - the sandbox's own private tmpfs
    _write(f"{root}/etc/passwd", f"sandbox:x:{uid}:{uid}:sandbox:{home}:/nonexistent\n")
    _write(f"{root}/etc/group", f"sandbox:x:{uid}:\n")
    _write(f"{root}/etc/hosts", f"127.0.0.1 localhost\n::1 localhost\n127.0.1.1 {plan.hostname}\n")
    _write(f"{root}/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n")

    tmp = f"{root}{home}"
    os.makedirs(tmp, mode=0o755, exist_ok=True)
    tmp_options = f"size={plan.tmp_size_mb}m,nr_inodes={plan.tmp_max_files},mode=1777"
    sc.mount("tmpfs", tmp, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, tmp_options)

    dev = f"{root}/dev"
    os.makedirs(dev, mode=0o755, exist_ok=True)
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_NOEXEC, "size=64k,nr_inodes=64,mode=0755")
    for name in _DEVICES:
        _make_target(f"{dev}/{name}", is_dir=False)
        sc.mount(f"/proc/self/fd/{sources[f'/dev/{name}']}", f"{dev}/{name}", None, sc.MS_BIND)
        # Read-only does not stop writes to a device node, only to the node's inode.
        sc.mount_setattr(
            f"{dev}/{name}", sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NOEXEC, recursive=False
        )
    for name, target in _DEV_LINKS:
        os.symlink(target, f"{dev}/{name}")
    sc.mount_setattr(dev, sc.MOUNT_ATTR_RDONLY, recursive=False)

    proc = f"{root}/proc"
    os.makedirs(proc, mode=0o755, exist_ok=True)
    sc.mount("proc", proc, "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    for name in _PROC_READ_ONLY:
        path = f"{proc}/{name}"
        if os.path.exists(path):
            sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
            sc.mount_setattr(path, _RO | sc.MOUNT_ATTR_NOEXEC, recursive=True)
    for fd in sources.values():
        os.close(fd)


def pivot_root(root: str) -> None:
    """Setup step: make ``root`` the root, detach the host's, and freeze the root read-only."""
    os.chdir(root)
    # pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only ours,
    # with no directory of the old root left anywhere in the tree.
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
    sc.mount_setattr("/", sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV, recursive=False)


def attach_code(code_dir: str, sandbox_pidfd: int) -> None:
    """Mount ``code_dir`` read-only, nosuid, nodev and noexec on the stem cell's empty ``/fn``.

    Runs in a single-threaded helper forked by the zygote, never in the sandbox: the sandbox itself
    has no capabilities and its seccomp filter denies the mount API. The clone is taken (and made
    read-only) in the host's mount namespace, before joining the sandbox's user and mount namespaces
    through ``sandbox_pidfd`` (a pidfd cannot name a recycled pid). ``/fn`` is opened without
    following links and must still be a plain directory of the sandbox's root (not a mount yet), so
    a stem cell takes code once.
    """
    tree = sc.open_tree_clone(code_dir)
    try:
        sc.mount_setattr_fd(tree, _RO | sc.MOUNT_ATTR_NOEXEC)
        sc.setns(sandbox_pidfd, sc.CLONE_NEWUSER | sc.CLONE_NEWNS)
        target = os.open(CODE_PATH, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if os.fstat(target).st_dev != os.stat("/").st_dev:
                raise RuntimeError(f"{CODE_PATH} already holds code")
            sc.move_mount_fd(tree, target)
        finally:
            os.close(target)
    finally:
        os.close(tree)


def rehearse_attach() -> None:
    """Run ``attach_code``'s calls once with arguments that fail at once (no path, bad fds).

    The attach helper is a fresh fork of the zygote: its first pass through Python and ctypes code
    takes copy-on-write faults. Taking them while it waits keeps them off the cold start.
    """
    calls = (
        lambda: sc.open_tree_clone(""),
        lambda: sc.mount_setattr_fd(-1, _RO | sc.MOUNT_ATTR_NOEXEC),
        lambda: sc.setns(-1, sc.CLONE_NEWUSER | sc.CLONE_NEWNS),
        lambda: sc.move_mount_fd(-1, -1),
        lambda: os.close(os.open("", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)),
        lambda: os.fstat(-1),
    )
    for call in calls:
        with contextlib.suppress(OSError):
            call()
    os.stat("/")
