"""``?sealed=true`` on a GET of an action, package or trigger: transfer tokens beside fingerprints.

For ``stockade export``: each sealed parameter of the caller's own namespace gains ``"sealed":
<token>``, a ciphertext only this platform can open and only back into this namespace (see
``ParameterVault.transfer_token``). Asking needs WRITE in the namespace, the permission that could
use the value anyway (checked by ``TransferTokens``); values of other namespaces never get one.
"""

from __future__ import annotations

from starlette.requests import Request

from stockade.api.context import query_bool, services_of
from stockade.domain import JSON, Identity, KeyValues

__all__ = ["add_transfer_tokens"]


async def add_transfer_tokens(
    request: Request, identity: Identity, namespace: str, doc: dict[str, JSON], values: KeyValues
) -> dict[str, JSON]:
    """``doc`` with tokens on its sealed parameters when the request asks (``?sealed=true``)."""
    if not query_bool(request, "sealed"):
        return doc
    tokens = await services_of(request).transfer.tokens_for(identity, namespace, values)
    parameters = doc.get("parameters")
    if isinstance(parameters, list):
        doc["parameters"] = [
            {**item, "sealed": tokens[item["key"]]} if isinstance(item, dict) and item.get("key") in tokens else item
            for item in parameters
        ]
    return doc
