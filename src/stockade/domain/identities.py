"""Identities: who is calling, in which namespace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

__all__ = ["Identity", "Namespace"]


@final
@dataclass(frozen=True, slots=True)
class Namespace:
    """A tenant: the unit of ownership, limits and (later) encryption keys."""

    name: str
    uuid: str
    created: int = 0


@final
@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller: a subject acting in a namespace through one key."""

    subject: str
    namespace: str
    key_uuid: str
