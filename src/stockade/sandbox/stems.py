"""Stem cells: sandboxes started ahead of time, with their runtime loaded and an empty ``/fn``.

A stem cell holds nothing of any action: default limits, no egress, no environment. The backend
(``linux.py``) starts them in the background and, when a start's plan equals a stem cell's plan but
for the code, attaches the action's code read-only at ``/fn`` from outside and hands over the
action's environment. This module is the bookkeeping: which stem cells are ready, which one a plan
may take, and the counters. Invariant: a stem cell is taken once; from then on it is an ordinary
sandbox of that action.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import final

from stockade.sandbox.linux_sandbox import LinuxSandbox
from stockade.sandbox.plan import SandboxPlan
from stockade.sandbox.spec import RuntimeFamily

__all__ = ["NODE_BOOT_VARIABLES", "Stem", "StemPool", "StemStatistics", "rlimits_to_lower"]

# Variables Node.js (or its libuv and OpenSSL) may read while it boots, before the runner could set
# them: a stem cell booted without them, so an action that sets one takes the ordinary start.
NODE_BOOT_VARIABLES = ("NODE_", "UV_", "OPENSSL_", "SSL_CERT_")


@final
@dataclass(frozen=True, slots=True)
class StemStatistics:
    """Stem cells: ready now per runtime, and how starts were served since the backend was made."""

    ready: dict[str, int]
    hits: int
    misses: int
    attach_failures: int


@final
@dataclass(frozen=True, slots=True)
class Stem:
    """A stem cell: a complete sandbox with its runtime loaded and an empty /fn, assigned to no action yet."""

    sandbox: LinuxSandbox
    # Its plan with sandbox_id blanked: a spec whose own plan (without code) equals it can take it.
    plan: SandboxPlan
    # Its cgroup limits now (memory MB, pids, CPU percent).
    limits: tuple[int, int, int]


def rlimits_to_lower(stem: SandboxPlan, wanted: SandboxPlan) -> dict[str, list[int]] | None:
    """None when ``stem`` cannot serve ``wanted``; else the rlimits its runner must lower (maybe none).

    The plans must be equal (sandbox ids aside, both are blanked), except that a Python stem cell's
    RLIMIT_CPU may be higher than wanted: the runner lowers it (lowering needs no privilege).
    """
    if stem == wanted:
        return {}
    if wanted.family != "python" or stem.family != "python":
        return None
    stem_cpu = dict((name, (soft, hard)) for name, soft, hard in stem.rlimits).get("RLIMIT_CPU")
    wanted_cpu = dict((name, (soft, hard)) for name, soft, hard in wanted.rlimits).get("RLIMIT_CPU")
    if stem_cpu is None or wanted_cpu is None or wanted_cpu[0] > stem_cpu[0] or wanted_cpu[1] > stem_cpu[1]:
        return None
    aligned = tuple(
        (name, *stem_cpu) if name == "RLIMIT_CPU" else (name, soft, hard) for name, soft, hard in wanted.rlimits
    )
    if dataclasses.replace(wanted, rlimits=aligned) != stem:
        return None
    return {"RLIMIT_CPU": list(wanted_cpu)}


@final
class StemPool:
    """The ready stem cells per runtime, up to ``target`` each, and the hit and miss counters."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.ready: dict[RuntimeFamily, list[Stem]] = {"python": [], "nodejs": []}
        self.hits = self.misses = self.attach_failures = 0

    def wants(self, family: RuntimeFamily) -> bool:
        """Whether ``family`` has fewer ready stem cells than the target."""
        return len(self.ready[family]) < self.target

    def add(self, stem: Stem) -> None:
        self.ready[stem.plan.family].append(stem)

    def take(
        self, family: RuntimeFamily, env_keys: tuple[str, ...], wanted: SandboxPlan
    ) -> tuple[Stem, dict[str, list[int]]] | None:
        """A ready stem cell whose plan serves ``wanted`` (removed from the pool), with the rlimits to lower.

        None: the ordinary start. A Python runner lowers its own RLIMIT_CPU at assignment, so a
        Python stem cell also serves a smaller CPU backstop (a timeout under 60 s).
        """
        if family == "nodejs" and any(key.startswith(NODE_BOOT_VARIABLES) for key in env_keys):
            self.misses += 1
            return None
        stems = self.ready[family]
        for index, stem in enumerate(stems):
            lower = rlimits_to_lower(stem.plan, wanted)
            if lower is not None:
                del stems[index]
                return stem, lower
        self.misses += 1
        return None

    def drain(self) -> list[Stem]:
        """Every ready stem cell, removed from the pool (for the caller to kill)."""
        stems = [stem for family in self.ready.values() for stem in family]
        for family in self.ready.values():
            family.clear()
        return stems

    def statistics(self) -> StemStatistics:
        return StemStatistics(
            {family: len(stems) for family, stems in self.ready.items()}, self.hits, self.misses, self.attach_failures
        )
