"""PlatformError → OpenWhisk error response: ``{"error": message, "code": transaction id}``."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from stockade.errors import InternalError, PlatformError, ThrottledError

__all__ = ["JsonResponse", "error_response"]

_AUTH_CHALLENGE = 'Basic realm="OpenWhisk secure realm",charset=UTF-8'


class JsonResponse(Response):
    """Compact JSON (no spaces), UTF-8, as OpenWhisk answers."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise ``content``."""
        return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def error_response(exc: PlatformError, transaction_id: str, headers: dict[str, str] | None = None) -> JsonResponse:
    """The OpenWhisk error envelope for ``exc``; 401s carry the Basic challenge."""
    extra = dict(headers or {})
    if isinstance(exc, ThrottledError):
        extra.setdefault("Retry-After", str(exc.retry_after_s))
    if exc.status >= 500 and exc.status not in (502, 503, 507):
        # Invariant: clients never see internals; the detail was logged where it was raised.
        # 502 (IntegrityError: the action was refused) and 503 carry messages written for clients.
        exc = InternalError()
    if exc.status == 401:
        extra["WWW-Authenticate"] = _AUTH_CHALLENGE
    return JsonResponse({"error": exc.message, "code": transaction_id}, status_code=exc.status, headers=extra)
