"""Per-namespace overrides of the OpenWhisk throttles, set by the platform operator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, final

from stockade.errors import BadRequestError

__all__ = ["MAX_THROTTLE", "NamespaceLimits"]

MAX_THROTTLE: Final = 1_000_000_000


@final
@dataclass(frozen=True, slots=True)
class NamespaceLimits:
    """A namespace's own throttles; None keeps the platform default. 0 suspends the namespace."""

    namespace: str
    invocations_per_minute: int | None = None
    concurrent_invocations: int | None = None
    fires_per_minute: int | None = None
    updated: int = 0

    def __post_init__(self) -> None:
        for value in (self.invocations_per_minute, self.concurrent_invocations, self.fires_per_minute):
            if value is not None and (isinstance(value, bool) or not 0 <= value <= MAX_THROTTLE):
                raise BadRequestError(f"A namespace limit must be between 0 and {MAX_THROTTLE}.")

    @property
    def is_empty(self) -> bool:
        """True when every throttle is the platform default."""
        return (
            self.invocations_per_minute is None
            and self.concurrent_invocations is None
            and self.fires_per_minute is None
        )
