"""The seam between invoking and running: what runs one atomic action, and what it reports."""

from __future__ import annotations

from typing import Protocol

from stockade.domain import JSON, Action, ActivationResponse

__all__ = ["ActionRunner", "RunOutcomeLike"]


class RunOutcomeLike(Protocol):
    """What an invoker reports about one run."""

    @property
    def response(self) -> ActivationResponse: ...
    @property
    def logs(self) -> list[str]: ...
    @property
    def start_ms(self) -> int: ...
    @property
    def end_ms(self) -> int: ...
    @property
    def init_time_ms(self) -> int | None: ...
    @property
    def wait_time_ms(self) -> int: ...
    @property
    def timed_out(self) -> bool: ...
    @property
    def findings(self) -> tuple[str, ...]: ...


class ActionRunner(Protocol):
    """Runs one atomic action (the invoker, or a remote dispatcher in scale-out)."""

    async def run_action(
        self,
        action: Action,
        params: dict[str, JSON],
        init_env: dict[str, str],
        activation_env: dict[str, str],
        activation_id: str,
    ) -> RunOutcomeLike:
        """Run ``action`` once with ``params``."""
