"""Seccomp: compile a runtime's deny list to classic BPF once (in the zygote), load the bytes per sandbox.

Compiling with libseccomp (through pyseccomp) takes milliseconds; loading precompiled bytes with
seccomp(2) takes about 0.3 ms, so every sandbox pays only the load. The filter:

* allows every syscall by default and denies the policy's list with an errno (the runtime reports a
  clean error instead of dying);
* kills the process for any foreign architecture (i386 ``int 0x80``, x32), whose syscall numbers would
  otherwise slip past a list written for the native ABI.
"""

from __future__ import annotations

import os

import pyseccomp  # type: ignore[import-untyped]  # ships inline types but no py.typed marker

from stockade.sandbox import _syscalls
from stockade.sandbox.policy import ArgCondition, PolicyError, SeccompPolicy

__all__ = ["compile_policy", "describe", "load"]

_OPS = {"gt": pyseccomp.GT, "masked_eq": pyseccomp.MASKED_EQ}


def _arg(condition: ArgCondition) -> pyseccomp.Arg:
    if condition.op == "masked_eq":
        return pyseccomp.Arg(condition.arg, _OPS["masked_eq"], condition.mask, condition.value)
    return pyseccomp.Arg(condition.arg, _OPS[condition.op], condition.value)


def _build(policy: SeccompPolicy) -> pyseccomp.SyscallFilter:
    flt = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    # Invariant: a syscall made through another ABI is never allowed by default.
    flt.set_attr(pyseccomp.Attr.ACT_BADARCH, pyseccomp.KILL_PROCESS)
    for rule in policy.rules:
        number = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, rule.syscall)
        if number < 0:
            raise PolicyError(f"{policy.name}: libseccomp does not know the syscall {rule.syscall!r}")
        flt.add_rule(pyseccomp.ERRNO(rule.errno), number, *(_arg(c) for c in rule.when))
    return flt


def _export(flt: pyseccomp.SyscallFilter, *, pfc: bool) -> bytes:
    fd = os.memfd_create("stockade-seccomp", os.MFD_CLOEXEC)
    try:
        with os.fdopen(os.dup(fd), "w+b") as handle:
            (flt.export_pfc if pfc else flt.export_bpf)(handle)
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def compile_policy(policy: SeccompPolicy) -> bytes:
    """The policy as a classic-BPF program (struct sock_filter[]), ready for ``load``."""
    program = _export(_build(policy), pfc=False)
    if not program or len(program) % 8:
        raise PolicyError(f"{policy.name}: libseccomp produced no usable BPF program")
    return program


def describe(policy: SeccompPolicy) -> str:
    """The policy in libseccomp's human-readable pseudo-filter form (for review and tests)."""
    return _export(_build(policy), pfc=True).decode()


def load(program: bytes) -> None:
    """Setup step: install the precompiled filter on this process and all its future children.

    Precondition: no_new_privs is set (the kernel refuses an unprivileged filter otherwise).
    """
    _syscalls.seccomp_load_filter(program)
