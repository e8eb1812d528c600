"""The run contract: what one atomic run is asked (``RunRequest``) and what it reports (``RunOutcome``).

One typed request carries everything the invoker needs, decided once by the invoke use case: the
invoking namespace (the warm pool's key), the activation deadline and the action's parsed policy.
The same records cross the process boundary in scale-out (``stockade controller`` → ``stockade
invoker``), where parameters, init values and environment travel inside one sealed envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import final

from stockade.domain.actions import Action
from stockade.domain.activations import ActivationResponse
from stockade.domain.entities import JSON
from stockade.domain.policy import ActionPolicy

__all__ = ["RunOutcome", "RunRequest"]


@final
@dataclass(frozen=True, slots=True)
class RunRequest:
    """One activation to run: the action, its merged parameters and its environment."""

    action: Action
    # Merged parameters (package < action < request), init parameters removed; opened values.
    parameters: Mapping[str, JSON]
    activation_id: str
    # Per-activation __OW_* variables and secrets; the invoker sets __OW_DEADLINE itself.
    activation_env: Mapping[str, str] = field(default_factory=dict)
    # Init parameters, stringified; fixed for the sandbox's lifetime.
    init_env: Mapping[str, str] = field(default_factory=dict)
    # The invoking identity's namespace (pool key); empty means the action's own.
    namespace: str = ""
    # The activation deadline (epoch ms) set at acceptance; None: none beyond the action's timeout.
    deadline_ms: int | None = None
    # The action's policy, parsed once by the invoke use case; None: parse the annotation here.
    # A policy that does not parse grants nothing (``ActionPolicy()``).
    policy: ActionPolicy | None = None
    # Blocking invokes run at most once (a lost run ends as a whisk internal error); the others
    # (non-blocking invokes, trigger fires) at least once, deduplicated by activation id.
    at_most_once: bool = True

    @property
    def pool_namespace(self) -> str:
        """The namespace whose warm sandboxes may serve this run."""
        return self.namespace or self.action.path.namespace


@final
@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What happened: the response, logs, timings (epoch ms) and integrity findings."""

    response: ActivationResponse
    logs: list[str]
    start_ms: int  # init start when cold, run start when warm
    end_ms: int
    wait_time_ms: int  # from the call until a sandbox was ready (includes starting one)
    init_time_ms: int | None = None  # None when a warm sandbox served the run
    timed_out: bool = False
    # Integrity findings after the run (code modified, main replaced, stray processes); the
    # sandbox was destroyed when there are any.
    findings: tuple[str, ...] = ()
    sandbox_id: str | None = None

    @property
    def duration_ms(self) -> int:
        """end - start, including init."""
        return max(0, self.end_ms - self.start_ms)
