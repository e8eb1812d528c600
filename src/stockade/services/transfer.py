"""Transfer tokens for export: sealed parameters carried out of the platform and back into their namespace.

A route may not reach the vault (``RouteServices``); this use case checks WRITE in the namespace,
the permission that could use the values anyway, and asks the vault for one token per sealed
parameter of that namespace. Values of other namespaces (published packages) never get one.
"""

from __future__ import annotations

from typing import final

from stockade.domain import Identity, KeyValues, Sealed
from stockade.security.authz import Permission
from stockade.services.access import AccessService
from stockade.services.vault import ParameterVault

__all__ = ["TransferTokens"]


@final
class TransferTokens:
    """``?sealed=true`` on a GET: a transfer token beside each sealed parameter's fingerprint."""

    def __init__(self, access: AccessService, vault: ParameterVault) -> None:
        self._access = access
        self._vault = vault

    async def tokens_for(self, identity: Identity, namespace: str, values: KeyValues) -> dict[str, str]:
        """Parameter name → transfer token, for the sealed values stored in ``namespace``."""
        await self._access.require(identity, namespace, Permission.WRITE, namespace)
        return {
            kv.key: await self._vault.transfer_token(namespace, kv.value)
            for kv in values
            if isinstance(kv.value, Sealed) and kv.value.context[0] == namespace
        }
