"""Time as an injected dependency: services and the invoker take a Clock."""

from __future__ import annotations

import time
from typing import Protocol, final

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Wall-clock milliseconds and a monotonic reading."""

    def now_ms(self) -> int:
        """Epoch milliseconds."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes back."""


@final
class SystemClock:
    """The real clock."""

    def now_ms(self) -> int:
        """Epoch milliseconds."""
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()
