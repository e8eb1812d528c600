"""The one error hierarchy: every failure a client can see is a PlatformError.

Each class carries its HTTP status and CLI exit code, so the API edge maps any error to an
OpenWhisk-shaped body (``{"error": message, "code": transaction_id}``) without a lookup table,
and the CLI maps it to an exit code.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadRequestError",
    "ConflictError",
    "DeployBlockedError",
    "ForbiddenError",
    "IntegrityError",
    "InternalError",
    "MalformedRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PlatformError",
    "ServiceUnavailableError",
    "StorageFullError",
    "StoreBusyError",
    "StoreError",
    "ThrottledError",
    "UnauthenticatedError",
    "UnsupportedMediaTypeError",
]


class PlatformError(Exception):
    """Base of every error Stockade reports to a client."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    exit_code: ClassVar[int] = 1
    default_message: ClassVar[str] = "There was an internal server error."

    def __init__(self, message: str | None = None) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(self.message)


class BadRequestError(PlatformError):
    """The request is well formed but its content is not acceptable (400)."""

    status = 400
    code = "bad_request"
    exit_code = 2
    default_message = "The request content was malformed."


class MalformedRequestError(BadRequestError):
    """The request body could not be decoded; the message is prefixed as OpenWhisk does."""

    code = "malformed_request"

    def __init__(self, detail: str) -> None:
        super().__init__(f"The request content was malformed:\n{detail}")


class DeployBlockedError(BadRequestError):
    """The deploy gate found blocking findings (400, code ``deploy_blocked``).

    OpenWhisk has no such error; Stockade answers 400 because the request content (the action)
    is refused, so existing clients show the message. The message lists the findings and how to
    accept the risk (``?acceptRisk=<reason>``, CLI ``--accept-risk``).
    """

    code = "deploy_blocked"
    exit_code = 2


class UnauthenticatedError(PlatformError):
    """Credentials are missing or invalid (401)."""

    status = 401
    code = "unauthenticated"
    exit_code = 3
    default_message = "The supplied authentication is invalid"


class ForbiddenError(PlatformError):
    """The caller is authenticated but not allowed (403)."""

    status = 403
    code = "forbidden"
    exit_code = 3
    default_message = "The supplied authentication is not authorized to access this resource."


class NotFoundError(PlatformError):
    """The entity does not exist (404)."""

    status = 404
    code = "not_found"
    exit_code = 4
    default_message = "The requested resource does not exist."


class ConflictError(PlatformError):
    """The entity exists, or changed concurrently (409)."""

    status = 409
    code = "conflict"
    exit_code = 5
    default_message = "resource already exists"


class PayloadTooLargeError(PlatformError):
    """A body, parameter set or code blob is over its limit (413)."""

    status = 413
    code = "payload_too_large"
    exit_code = 2
    default_message = "Request larger than allowed."


class UnsupportedMediaTypeError(PlatformError):
    """The body is not JSON (415)."""

    status = 415
    code = "unsupported_media_type"
    exit_code = 2
    default_message = "The request's Content-Type is not supported. Expected:\napplication/json"


class ThrottledError(PlatformError):
    """A rate or concurrency limit refused the request (429)."""

    status = 429
    code = "throttled"
    exit_code = 6
    default_message = "Too many requests."

    def __init__(self, message: str | None = None, retry_after_s: int = 1) -> None:
        super().__init__(message)
        # Every 429 carries a Retry-After header: seconds until a retry can succeed.
        self.retry_after_s = max(1, int(retry_after_s))


class InternalError(PlatformError):
    """A platform fault (500); the message never carries internals."""


class StoreError(InternalError):
    """The store failed in a way the caller cannot fix."""

    code = "store_error"


class IntegrityError(PlatformError):
    """What would run does not match what was deployed (edited in the database): refused (502)."""

    status = 502
    code = "integrity_failed"
    exit_code = 7  # like every 5xx in the CLI
    default_message = (
        "The action failed its integrity check: what is stored differs from what was deployed, so it was "
        "not run. The event was recorded; redeploy the action (delete and create it) after investigating."
    )


class StorageFullError(StoreError):
    """The store refuses writes (disk full, read-only): 507; reads and runs keep working."""

    status = 507
    code = "insufficient_storage"
    exit_code = 7
    default_message = "The platform cannot store this change now (its storage is full or read-only); retry later."


class StoreBusyError(StoreError):
    """Another process held the store's write lock past the wait: 503, nothing was written; retry later."""

    status = 503
    code = "unavailable"
    exit_code = 7
    default_message = "The platform's store is busy (its write lock is held elsewhere); retry later."


class ServiceUnavailableError(PlatformError):
    """No capacity to run the request now (503)."""

    status = 503
    code = "unavailable"
    exit_code = 7
    default_message = "The server is currently unavailable (because it is overloaded or down for maintenance)."
