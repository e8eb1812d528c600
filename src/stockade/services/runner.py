"""The seam between invoking and running: one typed run request in, one typed outcome back.

The local ``Invoker`` is an ``ActionRunner`` itself (standalone); in scale-out the controller's
``DispatchRunner`` is one too, sending the request sealed through JetStream to an invoker process.
"""

from __future__ import annotations

from typing import Protocol

from stockade.domain import RunOutcome, RunRequest

__all__ = ["ActionRunner", "RunOutcome", "RunRequest"]


class ActionRunner(Protocol):
    """Runs one atomic action (the invoker, or a remote dispatcher in scale-out)."""

    async def run_action(self, request: RunRequest) -> RunOutcome:
        """Run ``request.action`` once with ``request.parameters``."""
