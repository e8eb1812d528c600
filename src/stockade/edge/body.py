"""The one bounded body reader for the REST API, web actions and the gateway.

A body is refused (413) past its limit by ``Content-Length`` first, then by what actually
arrived: a body without (or lying about) ``Content-Length`` is never buffered past the limit.
The body is read once and kept on the request (a signed request's body is read while
authenticating, then again by the handler).
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from stockade.errors import BadRequestError, PayloadTooLargeError

__all__ = ["ClientGoneError", "read_body"]


class ClientGoneError(BadRequestError):
    """The client closed the connection (or was timed out) before its body arrived (400)."""

    code = "client_gone"


def _too_large(size: int, limit_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"Request larger than allowed: {size} > {limit_bytes} bytes.")


async def read_body(request: Request, limit_bytes: int) -> bytes:
    """The raw body, 413 over ``limit_bytes``."""
    state = request.scope.setdefault("state", {})
    cached: bytes | None = state.get("body")
    if cached is not None:
        if len(cached) > limit_bytes:
            raise _too_large(len(cached), limit_bytes)
        return cached
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit_bytes:
        raise _too_large(int(length), limit_bytes)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit_bytes:
                raise _too_large(size, limit_bytes)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGoneError("The client closed the connection before sending its whole body.") from None
    body = b"".join(chunks)
    state["body"] = body
    return body
