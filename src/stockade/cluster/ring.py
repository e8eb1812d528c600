"""Placement: a consistent-hash ring of live invokers (docs/design/scale-out.md §4).

An action's home is where its key (``namespace/package/action``, without version) lands; 64 virtual
nodes per invoker, so an invoker that comes or goes moves only its own share of the keys.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable

__all__ = ["VNODES", "HashRing"]

VNODES = 64


def _point(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    """Immutable ring over a set of member ids."""

    def __init__(self, members: Iterable[str], vnodes: int = VNODES) -> None:
        self.members = frozenset(members)
        points = sorted((_point(f"{member}#{i}"), member) for member in self.members for i in range(vnodes))
        self._keys = [point for point, _ in points]
        self._owners = [owner for _, owner in points]

    def candidates(self, key: str, limit: int = 3) -> list[str]:
        """The home of ``key``, then its ring successors (distinct members), at most ``limit``."""
        if not self._keys:
            return []
        found: list[str] = []
        start = bisect.bisect(self._keys, _point(key))
        for offset in range(len(self._keys)):
            owner = self._owners[(start + offset) % len(self._keys)]
            if owner not in found:
                found.append(owner)
                if len(found) >= limit or len(found) == len(self.members):
                    break
        return found
