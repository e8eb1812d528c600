"""Web actions: HTTP request → action arguments, and activation result → HTTP response.

Pure functions over plain data (no HTTP framework): ``web_arguments`` builds the ``__ow_*``
arguments as OpenWhisk does (§8.3), ``web_response`` maps a result to status, headers and
body for each content extension (§8.4). The API route does the I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, final

from stockade.domain import JSON, Activation, ActivationStatus
from stockade.edge import JsonLimits, check_action_headers, parse_json
from stockade.errors import BadRequestError, NotFoundError, PlatformError
from stockade.services.invoke import RESERVED_WEB_KEYS

__all__ = [
    "EXTENSIONS",
    "RESERVED_WEB_KEYS",
    "UnsafeResponseError",
    "WebRequest",
    "WebResponse",
    "response_problem",
    "split_extension",
    "web_arguments",
    "web_response",
]

EXTENSIONS = (".json", ".html", ".http", ".svg", ".text")
_JSON_TYPES = ("application/json",)
_TEXT_PREFIXES = ("text/",)
_TEXT_TYPES = frozenset(
    {"application/xml", "application/javascript", "application/x-www-form-urlencoded", "image/svg+xml"}
)
ERROR_PROCESSING = "There was an error processing your request."
MISSING_PROPERTY = "Response does not include requested property."
INVALID_HTTP = "Response is not valid 'message/http'."


class WebResponseError(BadRequestError):
    """The action's result cannot be turned into the requested content type (400)."""


class UnsafeResponseError(WebResponseError):
    """The action's headers cannot be sent safely: OpenWhisk's 400 for a bad header; ``reason`` says why.

    A header name that is not a token, a value with CR, LF, NUL or another control character,
    or a Location that is neither http(s) nor relative (edge/headers.py).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(INVALID_HTTP)
        self.reason = reason


@final
@dataclass(frozen=True, slots=True)
class WebRequest:
    """The parts of an HTTP request a web action sees."""

    method: str
    headers: Mapping[str, str]  # lower-cased names
    path: str  # the rest after the action name, "" when none
    query_string: str
    body: bytes
    user: str | None = None  # caller's namespace when authenticated
    json_limits: JsonLimits = field(default_factory=JsonLimits)


@final
@dataclass(frozen=True, slots=True)
class WebResponse:
    """What the API sends back."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def split_extension(action: str) -> tuple[str, str]:
    """``name.json`` → (``name``, ``.json``); no known extension → ``.http``."""
    for ext in EXTENSIONS:
        if action.endswith(ext) and len(action) > len(ext):
            return action[: -len(ext)], ext
    return action, ".http"


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_json_media(media: str) -> bool:
    return media in _JSON_TYPES or media.endswith("+json")


def _is_text_media(media: str) -> bool:
    return media.startswith(_TEXT_PREFIXES) or media in _TEXT_TYPES


def web_arguments(request: WebRequest, *, raw: bool) -> tuple[dict[str, JSON], frozenset[str]]:
    """The arguments a web action receives, and the keys the client itself supplied."""
    args: dict[str, JSON] = {}
    media = _media_type(request.headers.get("content-type", ""))
    if raw:
        args["__ow_query"] = request.query_string
        if not request.body:
            args["__ow_body"] = ""
        elif _is_text_media(media) and not _is_json_media(media):
            args["__ow_body"] = request.body.decode("utf-8", errors="replace")
        else:
            args["__ow_body"] = base64.b64encode(request.body).decode()
    supplied: frozenset[str] = frozenset()
    if not raw:
        args.update(urllib.parse.parse_qsl(request.query_string, keep_blank_values=True))
        body_args, named_by_client = (
            _body_arguments(request.body, media, request.json_limits) if request.body else ({}, True)
        )
        # Invariant: keys the client named (query, object or form body) are "supplied" and may
        # not be reserved or sealed; an __ow_body the platform made from a non-object body is not.
        supplied = frozenset(args) | (frozenset(body_args) if named_by_client else frozenset())
        args.update(body_args)
    args["__ow_method"] = request.method.lower()
    args["__ow_headers"] = dict(request.headers)
    args["__ow_path"] = request.path
    if request.user is not None:
        args["__ow_user"] = request.user
    return args, supplied


def _body_arguments(body: bytes, media: str, limits: JsonLimits) -> tuple[dict[str, JSON], bool]:
    """The arguments a body adds, and whether their keys were named by the client.

    A body declared JSON is parsed strictly (400 when it is not RFC 8259 JSON within ``limits``);
    an undeclared body that is not such JSON reaches the action base64-encoded, unparsed.
    """
    if _is_json_media(media) or not media:
        try:
            value = parse_json(body, limits)
        except PlatformError:
            if _is_json_media(media):
                raise
            return {"__ow_body": base64.b64encode(body).decode()}, False
        return (dict(value), True) if isinstance(value, dict) else ({"__ow_body": value}, False)
    if media == "application/x-www-form-urlencoded":
        text = body.decode("utf-8", errors="replace")
        return dict(urllib.parse.parse_qsl(text, keep_blank_values=True)), True
    if _is_text_media(media):
        return {"__ow_body": body.decode("utf-8", errors="replace")}, False
    return {"__ow_body": base64.b64encode(body).decode()}, False


def _projection(result: JSON, activation: Activation) -> JSON:
    """R: the whole result on success, the error value on application error."""
    status = activation.response.status
    if status is ActivationStatus.SUCCESS:
        return result
    if status is ActivationStatus.APPLICATION_ERROR:
        if isinstance(result, dict) and "error" in result:
            return result["error"]
        raise NotFoundError(MISSING_PROPERTY)
    raise BadRequestError(ERROR_PROCESSING)


def _text(value: JSON) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2)
    return json.dumps(value)


def web_response(activation: Activation, extension: str) -> WebResponse:
    """Map an activation to an HTTP response for ``extension`` (PlatformError when it cannot)."""
    value = _projection(activation.response.result, activation)
    if extension == ".json":
        if not isinstance(value, dict | list):
            raise WebResponseError("Response is not valid 'application/json'.")
        return WebResponse(200, [("content-type", "application/json")], _json_bytes(value))
    if extension == ".html":
        html = value.get("body", value.get("html")) if isinstance(value, dict) else value
        if not isinstance(html, str):
            raise WebResponseError("Response is not valid 'text/html'.")
        return WebResponse(200, [("content-type", "text/html; charset=UTF-8")], html.encode())
    if extension == ".svg":
        svg = value.get("body", value.get("svg")) if isinstance(value, dict) else None
        if not isinstance(svg, str):
            raise WebResponseError("Response is not valid 'image/svg+xml'.")
        return WebResponse(200, [("content-type", "image/svg+xml")], svg.encode())
    if extension == ".text":
        if isinstance(value, dict):
            if "body" in value:
                text = value["body"]
            elif "text" in value:
                text = value["text"]
            else:
                raise NotFoundError(MISSING_PROPERTY)
        else:
            text = value
        return WebResponse(200, [("content-type", "text/plain")], _text(text).encode())
    return _http_response(value)


def _json_bytes(value: JSON) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _header_values(value: Any) -> list[str]:
    if isinstance(value, list):
        return [v for item in value for v in _header_values(item)]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, str | int | float):
        return [str(value)]
    raise WebResponseError("Response is not valid 'message/http'.")


def _http_response(value: JSON) -> WebResponse:
    """The ``.http`` mapping: ``{headers, statusCode, body}``."""
    if not isinstance(value, dict):
        raise WebResponseError("Response is not valid 'message/http'.")
    raw_headers = value.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise WebResponseError("Response is not valid 'message/http'.")
    headers = [(str(k).lower(), v) for k, raw in raw_headers.items() for v in _header_values(raw)]
    reason = check_action_headers(headers)
    if reason is not None:
        raise UnsafeResponseError(reason)
    status_raw = value.get("statusCode")
    body = value.get("body")
    empty = body is None or body == ""
    if status_raw is None:
        status = 204 if empty else 200
    elif isinstance(status_raw, int) and not isinstance(status_raw, bool):
        status = status_raw
    elif isinstance(status_raw, str) and status_raw.isdigit():
        status = int(status_raw)
    else:
        raise WebResponseError("Response is not valid 'message/http'.")
    # A final response: no interim 1xx (a 101 would hand the connection over), nothing past 599.
    if not 200 <= status <= 599:
        raise WebResponseError("Response is not valid 'message/http'.")
    if empty:
        return WebResponse(status, headers, b"")
    declared = next((v for k, v in headers if k == "content-type"), None)
    media = _media_type(declared) if declared is not None else None
    if declared is not None and not media:
        raise WebResponseError("Response did not specify a known content-type.")
    if not isinstance(body, str):
        if media is None or _is_json_media(media):
            if declared is None:
                headers.append(("content-type", "application/json"))
            return WebResponse(status, headers, _json_bytes(body))
        raise WebResponseError("Response type in header did not match generated content type.")
    if media is None:
        headers.append(("content-type", "text/html; charset=UTF-8"))
        return WebResponse(status, headers, body.encode())
    if _is_text_media(media):
        return WebResponse(status, headers, body.encode())
    if _is_json_media(media):
        decoded = _try_base64(body)
        return WebResponse(status, headers, decoded if decoded is not None else body.encode())
    decoded = _try_base64(body)
    if decoded is None:
        raise WebResponseError("Response type in header did not match generated content type.")
    return WebResponse(status, headers, decoded)


def response_problem(activation: Activation, extension: str) -> str | None:
    """Why the ``.http`` response of ``activation`` has headers that cannot be sent (None: none).

    Checked before the activation is recorded, so the record says why the client got a 400.
    """
    if extension != ".http":
        return None
    try:
        value = _projection(activation.response.result, activation)
    except PlatformError:
        return None
    raw_headers = value.get("headers") if isinstance(value, dict) else None
    if not isinstance(raw_headers, dict):
        return None
    try:
        headers = [(str(k).lower(), v) for k, raw in raw_headers.items() for v in _header_values(raw)]
    except WebResponseError:
        return None
    return check_action_headers(headers)


def _try_base64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def error_web_response(exc: PlatformError) -> WebResponse:
    """A PlatformError raised while mapping, as the web layer answers it."""
    return WebResponse(exc.status, [("content-type", "application/json")], _json_bytes({"error": exc.message}))
