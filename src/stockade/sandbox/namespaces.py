"""Namespaces: the sandbox's user, mount, pid, net, ipc and uts namespaces, its identity, and its pid 1.

Three setup steps, run by the zygote's child before any action is known (a *parked* child):

* ``unshare``: drop every supplementary group (root mode), then create all six namespaces at once.
* ``write_id_maps`` (run by the zygote, from outside): map exactly one id, ``inner_uid``, to the
  slot's host uid and gid, and deny setgroups for good. Nothing is mapped to uid 0, so nothing can
  ever be root inside. In root mode the slot's uid is its own (uid_base + slot), so an escaped
  process would still be an unprivileged stranger on the host.
* ``fork_init``: name the host, then fork. A new pid namespace applies to children only: the child is
  pid 1 of the sandbox and carries on; the parent reports the child's host pid and exits. The zygote,
  a subreaper, adopts the new pid 1 and later reaps it.

Why the zygote writes the maps: a process may map only its own uid unless the *opener* of the map file
holds CAP_SETUID over the parent namespace. The child stays host uid 0 (root mode) until the
capabilities step switches it to the mapped uid, so until then it can still reach bind sources under
root-only directories (the owner check compares host uids) without holding any capability on the host.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from stockade.sandbox import _syscalls as sc
from stockade.sandbox.plan import Slot

__all__ = ["NAMESPACE_FLAGS", "fork_init", "probe_user_namespaces", "unshare", "write_id_maps"]

# The cgroup namespace is made later, by the cgroups step, once this process is in its own group.
NAMESPACE_FLAGS = (
    sc.CLONE_NEWUSER | sc.CLONE_NEWNS | sc.CLONE_NEWPID | sc.CLONE_NEWNET | sc.CLONE_NEWIPC | sc.CLONE_NEWUTS
)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def unshare() -> None:
    """Setup step: no supplementary groups (root mode), then new user, mount, pid, net, ipc, uts namespaces."""
    if os.geteuid() == 0:
        # Invariant: no sandbox process carries a host group besides its slot's gid.
        os.setgroups([])
    sc.unshare(NAMESPACE_FLAGS)


def write_id_maps(pid: int, slot: Slot) -> None:
    """Setup step, run by the zygote: deny setgroups in ``pid``'s user namespace and map the slot's one id."""
    _write(f"/proc/{pid}/setgroups", "deny")
    _write(f"/proc/{pid}/uid_map", f"{slot.inner_uid} {slot.host_uid} 1\n")
    _write(f"/proc/{pid}/gid_map", f"{slot.inner_uid} {slot.host_gid} 1\n")


def fork_init(slot: Slot, report_pid: Callable[[int], None]) -> None:
    """Setup step: set the host name and fork; returns in the new pid 1 (the caller's process exits).

    ``report_pid`` receives the host pid of the new pid 1, in the original process.
    """
    sc.sethostname(slot.hostname)
    child = os.fork()
    if child != 0:
        try:
            report_pid(child)
        finally:
            os._exit(0)


def probe_user_namespaces() -> str | None:
    """None when this process may create a user namespace with the others; else the reason it may not.

    Forks a child that tries, so the caller's own namespaces never change.
    """
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the probe child
        os.close(read_end)
        try:
            sc.unshare(NAMESPACE_FLAGS)
            os.write(write_end, b"ok")
        except OSError as exc:
            os.write(write_end, str(exc).encode(errors="replace")[:512])
        os._exit(0)
    os.close(write_end)
    try:
        answer = os.read(read_end, 1024).decode(errors="replace")
    finally:
        os.close(read_end)
        os.waitpid(child, 0)
    if answer == "ok":
        return None
    hint = ""
    try:
        with open("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") as handle:
            if handle.read().strip() == "1":
                hint = (
                    " (AppArmor restricts unprivileged user namespaces: kernel.apparmor_restrict_unprivileged_userns=1)"
                )
    except OSError:
        pass
    return f"cannot create user namespaces: {answer or 'no answer from the probe'}{hint}"
