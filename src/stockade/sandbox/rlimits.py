"""Rlimits: per-process resource limits, inherited by everything the sandbox starts.

In root mode the cgroup carries the real memory, process and CPU limits; rlimits add per-process
backstops there and are the only limits in unprivileged mode (see ``report`` in linux.py for what
that cannot enforce). The plan computes the values (``plan._rlimits``); this step applies them.
"""

from __future__ import annotations

import resource

from stockade.sandbox.plan import SandboxPlan

__all__ = ["apply", "describe"]


def apply(plan: SandboxPlan) -> None:
    """Setup step: set every rlimit of the plan (soft and hard, so nothing inside can raise them)."""
    for name, soft, hard in plan.rlimits:
        resource.setrlimit(getattr(resource, name), (soft, hard))


def describe(plan: SandboxPlan) -> dict[str, tuple[int, int]]:
    """The plan's rlimits by name (for reports and tests)."""
    return {name: (soft, hard) for name, soft, hard in plan.rlimits}
