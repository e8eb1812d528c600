"""Capabilities: give up every capability for good, then forbid ever regaining privileges.

Three setup steps, in order:

* ``assume_identity`` (before the root is built): become uid/gid 1000, the one id mapped inside. The
  capabilities of the user namespace's creator stay until ``drop``: a uid change only clears them when
  it leaves uid 0 *of this namespace*, and 0 is not mapped here.
* ``drop``: lock the securebits (no root privilege semantics, no ambient raise), empty the bounding
  set, confirm the single mapped uid/gid, empty the effective/permitted/inheritable sets, and check
  with /proc/self/status that nothing is left.
* ``set_no_new_privs``: execve can never grant privileges again (setuid bits, file capabilities).
  Landlock and seccomp both require it.
"""

from __future__ import annotations

import os

from stockade.sandbox import _syscalls as sc

__all__ = ["assume_identity", "drop", "set_no_new_privs", "status_fields"]

# SECBIT_NOROOT | _LOCKED, SECBIT_KEEP_CAPS_LOCKED (keep-caps stays off), SECBIT_NO_CAP_AMBIENT_RAISE | _LOCKED.
_SECUREBITS = (1 << 0) | (1 << 1) | (1 << 5) | (1 << 6) | (1 << 7)
_CAP_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def status_fields(names: tuple[str, ...]) -> dict[str, str]:
    """Selected fields of /proc/self/status."""
    found: dict[str, str] = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in names:
                found[key] = value.strip()
    return found


def assume_identity(uid: int) -> None:
    """Setup step: real, effective, saved (and so filesystem) uid and gid become ``uid``."""
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def drop(uid: int) -> None:
    """Setup step: no capabilities in any set, and no way back; the ids stay ``uid``.

    Precondition: CAP_SETPCAP is still held (we are the user namespace's creator).
    """
    sc.set_securebits(_SECUREBITS)
    cap = 0
    while sc.capbset_drop(cap):
        cap += 1
    sc.clear_ambient_caps()
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    sc.capset_zero()
    leftover = {k: v for k, v in status_fields(_CAP_FIELDS).items() if int(v, 16) != 0}
    # Invariant: the runner starts with every capability set empty.
    if leftover or os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid):
        raise OSError(os.EX_SOFTWARE, f"privileges remain after the drop: {leftover}")


def set_no_new_privs() -> None:
    """Setup step: PR_SET_NO_NEW_PRIVS."""
    sc.set_no_new_privs()
