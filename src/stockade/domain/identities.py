"""Identities: who is calling, in which namespace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, final

__all__ = ["Identity", "IdentityKind", "Namespace"]


@final
@dataclass(frozen=True, slots=True)
class Namespace:
    """A tenant: the unit of ownership, limits and (later) encryption keys."""

    name: str
    uuid: str
    created: int = 0


IdentityKind = Literal["key", "action_token", "jwt", "owner"]


@final
@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller: a subject acting in a namespace.

    ``kind``: an API key; a short-lived token an action received (``action_token``); a JWT
    bearer; or ``owner`` for web actions running as their namespace. ``scope`` limits what a
    token may invoke (FQN patterns); None means the subject's roles decide.
    """

    subject: str
    namespace: str
    key_uuid: str
    kind: IdentityKind = "key"
    scope: tuple[str, ...] | None = None
    # For JWT callers: the role their issuer grants in its namespace.
    role: str | None = None
