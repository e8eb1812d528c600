"""``?sealed=true`` on a GET of an action, package or trigger: transfer tokens beside fingerprints.

For ``stockade export``: each sealed parameter of the caller's own namespace gains ``"sealed":
<token>``, a ciphertext only this platform can open and only back into this namespace (see
``ParameterVault.transfer_token``). Asking needs WRITE in the namespace, the permission that could
use the value anyway; values of other namespaces (published packages) never get one.
"""

from __future__ import annotations

from starlette.requests import Request

from stockade.api.context import query_bool, services_of
from stockade.domain import JSON, Identity, KeyValues, Sealed
from stockade.security.authz import Permission

__all__ = ["add_transfer_tokens"]


async def add_transfer_tokens(
    request: Request, identity: Identity, namespace: str, doc: dict[str, JSON], values: KeyValues
) -> dict[str, JSON]:
    """``doc`` with tokens on its sealed parameters when the request asks (``?sealed=true``)."""
    if not query_bool(request, "sealed"):
        return doc
    services = services_of(request)
    await services.access.require(identity, namespace, Permission.WRITE, namespace)
    tokens: dict[str, str] = {}
    for kv in values:
        if isinstance(kv.value, Sealed) and kv.value.context[0] == namespace:
            tokens[kv.key] = await services.vault.transfer_token(namespace, kv.value)
    parameters = doc.get("parameters")
    if isinstance(parameters, list):
        doc["parameters"] = [
            {**item, "sealed": tokens[item["key"]]} if isinstance(item, dict) and item.get("key") in tokens else item
            for item in parameters
        ]
    return doc
