"""FrozenClock: time that moves only when a test says so."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

__all__ = ["FrozenClock"]


@final
@dataclass(slots=True)
class FrozenClock:
    """A Clock whose time is set by the test."""

    now: int = 1_700_000_000_000
    mono: float = 1000.0

    def now_ms(self) -> int:
        """The frozen epoch ms."""
        return self.now

    def monotonic(self) -> float:
        """The frozen monotonic seconds."""
        return self.mono

    def advance(self, ms: int) -> None:
        """Move both clocks forward."""
        self.now += ms
        self.mono += ms / 1000
