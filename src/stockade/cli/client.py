"""A thin synchronous REST client for ``/api/v1``, and the CLI's error type.

The client speaks HTTP only: it never imports the server. Error bodies follow OpenWhisk's
envelope ``{"error": message, "code": request_id}`` and become :class:`CliError`, which carries
the exit code the CLI returns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Generator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, final

import httpx

from stockade.signing import signature_headers

__all__ = [
    "EXIT_FAILED_ACTIVATION",
    "EXIT_UNREACHABLE",
    "CliError",
    "Client",
    "Json",
    "Reply",
    "cli_version",
    "error_from_reply",
    "exit_code_for_status",
    "is_error_envelope",
]

# JSON as decoded by ``json.loads``; kept as ``Any`` because entity shapes vary by resource.
Json = Any

EXIT_FAILED_ACTIVATION = 1
EXIT_UNREACHABLE = 8
# Blocking invokes wait up to 60 s on the server (OpenWhisk's fixed wait), so reads must outlast it.
READ_TIMEOUT_S = 75.0
CONNECT_TIMEOUT_S = 10.0


def cli_version() -> str:
    """The installed ``stockade`` distribution version."""
    try:
        return metadata.version("stockade")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def exit_code_for_status(status: int) -> int:
    """Map an HTTP error status to the CLI exit code (see ``stockade --help``)."""
    if status in (401, 403):
        return 3
    if status == 404:
        return 4
    if status == 409:
        return 5
    if status == 429:
        return 6
    if status >= 500:
        return 7
    if status >= 400:
        # 400, 413 and 415 (and any other client error) mean the request itself was wrong.
        return 2
    return 0


class CliError(Exception):
    """A failure the CLI reports as ``error: <message> (code: <request id>)`` and an exit code."""

    def __init__(
        self,
        message: str,
        *,
        exit_code: int = 1,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.status = status
        self.request_id = request_id

    def render(self) -> str:
        """The one-line stderr form."""
        if self.request_id:
            return f"error: {self.message} (code: {self.request_id})"
        return f"error: {self.message}"


@final
@dataclass(frozen=True, slots=True)
class Reply:
    """A decoded response: status, JSON body (``None`` when not JSON) and the raw text."""

    status: int
    data: Json
    text: str
    request_id: str | None
    activation_id: str | None

    @property
    def is_json(self) -> bool:
        """True when the body decoded as JSON."""
        return self.data is not None


def _decode(response: httpx.Response) -> Reply:
    """Turn an httpx response into a :class:`Reply`."""
    text = response.text
    data: Json = None
    if text.strip():
        try:
            data = json.loads(text)
        except ValueError:
            data = None
    return Reply(
        status=response.status_code,
        data=data,
        text=text,
        request_id=response.headers.get("x-request-id"),
        activation_id=response.headers.get("x-openwhisk-activation-id"),
    )


def is_error_envelope(reply: Reply) -> bool:
    """True when the body is OpenWhisk's ``{"error", "code"}`` envelope rather than a result."""
    data = reply.data
    if not isinstance(data, dict) or set(data) != {"error", "code"}:
        return False
    if not isinstance(data["error"], str) or not isinstance(data["code"], str):
        return False
    # An action may return {"error", "code"} itself; the envelope's code echoes X-Request-ID.
    return reply.request_id is None or data["code"] == reply.request_id


def error_from_reply(reply: Reply) -> CliError:
    """Build the CLI error for a failed response."""
    data = reply.data
    request_id = reply.request_id
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        message = data["error"]
        if isinstance(data.get("code"), str):
            request_id = data["code"]
    else:
        reason = httpx.codes.get_reason_phrase(reply.status) or "error"
        snippet = reply.text.strip()[:200]
        message = f"HTTP {reply.status} {reason}" + (f": {snippet}" if snippet else "")
    return CliError(
        message,
        exit_code=exit_code_for_status(reply.status),
        status=reply.status,
        request_id=request_id,
    )


def _hint(exc: httpx.TransportError) -> str:
    """A next step for the user, chosen by the kind of transport failure."""
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return " (use -i/--insecure to skip TLS verification; not recommended)"
    if isinstance(exc, httpx.ConnectError):
        return " (is the server running? start one with `stockade up`)"
    return ""


class SignedAuth(httpx.Auth):
    """Signs each request with the key's HMAC signing key (see stockade.signing); the key never travels."""

    requires_request_body = True

    def __init__(self, user: str, key: str, now_s: Callable[[], int]) -> None:
        self._user = user
        self._key = key
        self._now_s = now_s

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the Authorization header."""
        url = request.url
        headers = signature_headers(
            self._user,
            self._key,
            request.method,
            url.raw_path.decode("ascii").split("?", 1)[0],
            url.query.decode("ascii"),
            request.content,
            self._now_s(),
        )
        request.headers.update(headers)
        yield request


class Client:
    """Calls the OpenWhisk-compatible REST API with Basic auth (or HMAC-signed requests)."""

    def __init__(
        self,
        base_url: str,
        auth: str | None,
        *,
        insecure: bool = False,
        sign: bool = False,
        transport: httpx.BaseTransport | None = None,
        now_s: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        if not auth:
            raise CliError(
                "no credentials: set AUTH=uuid:key in the wskprops file or pass --auth",
                exit_code=3,
            )
        user, sep, key = auth.partition(":")
        if not sep or not user or not key:
            # Invariant: the key is never echoed, even when malformed.
            raise CliError("AUTH must have the form uuid:key", exit_code=3)
        self.base_url = base_url.rstrip("/")
        self.apihost = self.base_url.removesuffix("/api/v1")
        self._http = httpx.Client(
            base_url=f"{self.base_url}/",
            auth=SignedAuth(user, key, now_s) if sign else httpx.BasicAuth(user, key),
            verify=not insecure,
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            transport=transport,
            headers={"User-Agent": f"stockade-cli/{cli_version()}", "Accept": "application/json"},
        )

    def close(self) -> None:
        """Release pooled connections."""
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Json = None,
        accept: Collection[int] = (),
    ) -> Reply:
        """Send one request; statuses ≥ 400 not in ``accept`` raise :class:`CliError`.

        ``path`` is relative to ``/api/v1`` and already percent-encoded.
        """
        try:
            response = self._http.request(
                method,
                path,
                params=dict(params) if params else None,
                json=body if body is not None else None,
            )
        except httpx.TimeoutException as exc:
            raise CliError(
                f"timed out talking to APIHOST {self.apihost}: {type(exc).__name__}",
                exit_code=EXIT_UNREACHABLE,
            ) from exc
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach APIHOST {self.apihost}: {str(exc) or type(exc).__name__}{_hint(exc)}",
                exit_code=EXIT_UNREACHABLE,
            ) from exc
        reply = _decode(response)
        if reply.status >= 400 and reply.status not in accept:
            raise error_from_reply(reply)
        return reply

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Reply:
        """``GET`` a resource."""
        return self.request("GET", path, params=params)

    def put(self, path: str, body: Json, *, overwrite: bool = False) -> Reply:
        """``PUT`` an entity; ``overwrite`` turns a create into an update."""
        return self.request("PUT", path, params={"overwrite": "true"} if overwrite else None, body=body)

    def post(self, path: str, body: Json, params: Mapping[str, str | int] | None = None) -> Reply:
        """``POST`` (invoke, fire, enable/disable)."""
        return self.request("POST", path, params=params, body=body)

    def delete(self, path: str, params: Mapping[str, str | int] | None = None) -> Reply:
        """``DELETE`` an entity."""
        return self.request("DELETE", path, params=params)
