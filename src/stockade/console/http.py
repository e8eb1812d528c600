"""Starlette adapter of the web console: ``/console/...`` pages over the services.

Every page resumes the session (``ConsoleSessions.resume``) and asks the same service, with the
same permission check, as the API route that serves the same data; nothing here decides access.
Every POST must come from this origin and carry the session's CSRF token. Templates autoescape
everything, so names, logs, results and annotations show as text.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final
from urllib.parse import parse_qs, quote

import structlog
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from stockade.console.charts import charts_for
from stockade.console.security import (
    apply_headers,
    cookie_name,
    login_token_matches,
    new_login_token,
    same_origin,
    set_login_cookie,
    set_session_cookie,
)
from stockade.domain import Identity, is_valid_name, kv_to_json, validate_namespace
from stockade.errors import (
    BadRequestError,
    ForbiddenError,
    InternalError,
    NotFoundError,
    PayloadTooLargeError,
    PlatformError,
    UnauthenticatedError,
    UnsupportedMediaTypeError,
)
from stockade.observability.events import EVENT_TYPES, EventType, SecurityEvent, Severity
from stockade.security.authz import Permission
from stockade.services import AuditEvent, AuditLog, ConsoleSessions, Services
from stockade.services.events import valid_type_filter
from stockade.store import ActivationQuery, AlertQuery, EventQuery

__all__ = ["console_routes"]

log = structlog.get_logger("stockade.console")

CSRF_REFUSED: Final = "The request was refused: it did not come from a console page of this origin."
MAX_FORM_BYTES: Final = 16 * 1024
PAGE_SIZE: Final = 30
CHART_WINDOW_MS: Final = 24 * 3_600_000
SEVERITIES: Final = tuple(s.label for s in Severity)
_STATIC: Final = {"console.css": "text/css; charset=utf-8"}
_DATE_RE: Final = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")

_env = Environment(
    loader=PackageLoader("stockade.console", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(ms: Any) -> str:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


_env.filters["when"] = _when
_env.filters["pretty"] = _pretty
_env.filters["urlpart"] = lambda v: quote(str(v), safe="")


@dataclass(frozen=True, slots=True)
class Ctx:
    """One console request: who, which session, the services."""

    request: Request
    services: Services
    identity: Identity
    token: str
    form: dict[str, str]

    @property
    def csrf(self) -> str:
        """The session's CSRF token, for forms."""
        return ConsoleSessions.csrf_token(self.token)

    def namespace(self) -> str:
        """The URL's namespace (``_``: the caller's own)."""
        raw: str = self.request.path_params.get("ns", "_")
        return self.identity.namespace if raw == "_" else validate_namespace(raw)

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        """A page with the common frame."""
        return _render(template, status, identity=self.identity, csrf=self.csrf, **values)


def _render(template: str, status: int = 200, **values: Any) -> Response:
    values.setdefault("identity", None)
    values.setdefault("csrf", "")
    values.setdefault("ns", values["identity"].namespace if values["identity"] is not None else "")
    values.setdefault("section", "")
    html = _env.get_template(template).render(**values)
    return Response(html, status_code=status, media_type="text/html; charset=utf-8")


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _error(request: Request, exc: PlatformError, identity: Identity | None = None) -> Response:
    if exc.status >= 500 and exc.status != 503:
        exc = InternalError()
    tid = request.scope.get("state", {}).get("transaction_id", "")
    if _wants_html(request):
        return _render(
            "error.html", exc.status, identity=identity, message=exc.message, http_status=exc.status, code=tid
        )
    return JSONResponse({"error": exc.message, "code": tid}, status_code=exc.status)


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else ""


async def _read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body, at most MAX_FORM_BYTES; 415 for anything else."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise UnsupportedMediaTypeError("The console accepts application/x-www-form-urlencoded forms only.")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_FORM_BYTES:
        raise PayloadTooLargeError(f"Request larger than allowed: {int(length)} > {MAX_FORM_BYTES} bytes.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLargeError(f"Request larger than allowed: {len(body)} > {MAX_FORM_BYTES} bytes.")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise BadRequestError("The form could not be decoded.") from None
    return {k: v[0] for k, v in parsed.items()}


Handler = Callable[[Ctx], Awaitable[Response]]


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Resume the session (303 to sign-in for a browser, 401 otherwise); POSTs need same origin + CSRF."""

    async def wrapped(request: Request) -> Response:
        services: Services = request.app.state.services
        identity: Identity | None = None
        try:
            token = request.cookies.get(cookie_name(request)) or ""
            identity = await services.console.resume(token)
            form: dict[str, str] = {}
            if request.method == "POST":
                if not same_origin(request):
                    raise ForbiddenError(CSRF_REFUSED)
                form = await _read_form(request)
                if not ConsoleSessions.csrf_matches(token, form.get("csrf")):
                    raise ForbiddenError(CSRF_REFUSED)
            response = await handler(Ctx(request, services, identity, token, form))
        except UnauthenticatedError as exc:
            if request.method == "GET" and _wants_html(request):
                response = RedirectResponse("/console/login", status_code=303)
            else:
                response = _error(request, exc)
        except PlatformError as exc:
            if exc.status in (403, 429):
                _record_refusal(request, services, identity, exc)
            response = _error(request, exc, identity)
        return apply_headers(response)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def _record_refusal(request: Request, services: Services, identity: Identity | None, exc: PlatformError) -> None:
    """A console refusal is a security event and an audit entry, like the API's."""
    raw_ns = str(request.path_params.get("ns", ""))
    namespace = identity.namespace if identity is not None and raw_ns in ("", "_") else raw_ns
    if namespace and not is_valid_name(namespace):
        namespace = identity.namespace if identity is not None else ""
    subject = identity.subject if identity is not None else "anonymous"
    reason = "csrf" if exc.message == CSRF_REFUSED else "permission"
    path = request.url.path[:300]
    services.monitoring.events.emit(
        SecurityEvent(
            type=EventType.AUTHORIZATION_DENIED if exc.status == 403 else EventType.RATE_LIMITED,
            severity=Severity.MEDIUM if exc.status == 403 else Severity.LOW,
            time_ms=services.clock.now_ms(),
            namespace=namespace,
            subject=subject,
            source="console",
            details={"method": request.method, "path": path, "client": _client(request), "reason": reason},
        )
    )
    services.audit.record(
        AuditEvent(
            namespace, subject, f"console {request.method}", path, str(exc.status), _client(request), {"reason": reason}
        )
    )
    log.info("console.refused", path=path, subject=subject, reason=reason)


# -- sign-in and out -----------------------------------------------------------------------------


async def login_form(request: Request) -> Response:
    """The sign-in form (API key or JWT)."""
    token = new_login_token()
    response = _render("login.html", login_token=token, error="")
    set_login_cookie(response, request, token)
    return apply_headers(response)


async def login(request: Request) -> Response:
    """Exchange an API key (``uuid:key``) or a JWT for a session cookie."""
    services: Services = request.app.state.services
    try:
        if not same_origin(request):
            raise ForbiddenError(CSRF_REFUSED)
        form = await _read_form(request)
        if not login_token_matches(request, form.get("login_token")):
            raise ForbiddenError(CSRF_REFUSED)
        credential = form.get("credential", "").strip()
        if not credential or len(credential) > 8192:
            raise UnauthenticatedError("Enter an API key (uuid:key) or a JWT.")
        if credential.count(".") == 2 and ":" not in credential:
            authorization = f"Bearer {credential}"
        else:
            authorization = "Basic " + base64.b64encode(credential.encode()).decode()
        session = await services.console.sign_in(authorization, source=_client(request))
    except PlatformError as exc:
        if exc.status in (401, 403, 429) and _wants_html(request) and exc.message != CSRF_REFUSED:
            token = new_login_token()
            message = exc.message if exc.status != 401 else "Sign-in failed: the key or token was not accepted."
            response = _render("login.html", exc.status, login_token=token, error=message)
            set_login_cookie(response, request, token)
            return apply_headers(response)
        if exc.status == 403:
            _record_refusal(request, services, None, exc)
        return apply_headers(_error(request, exc))
    response = RedirectResponse(f"/console/ns/{quote(session.identity.namespace, safe='')}", status_code=303)
    ttl_s = max(1, (session.expires_ms - services.clock.now_ms()) // 1000)
    set_session_cookie(response, request, session.token, int(ttl_s))
    response.delete_cookie("stockade_console_login", path="/console")
    return apply_headers(response)


@page
async def logout(ctx: Ctx) -> Response:
    """End the session."""
    await ctx.services.console.sign_out(ctx.token, ctx.identity, source=_client(ctx.request))
    response = RedirectResponse("/console/login", status_code=303)
    set_session_cookie(response, ctx.request, "", 0)
    return response


async def home(request: Request) -> Response:
    """To the caller's namespace, or to sign-in."""
    services: Services = request.app.state.services
    try:
        identity = await services.console.resume(request.cookies.get(cookie_name(request)) or "")
    except UnauthenticatedError:
        return apply_headers(RedirectResponse("/console/login", status_code=303))
    return apply_headers(RedirectResponse(f"/console/ns/{quote(identity.namespace, safe='')}", status_code=303))


async def static(request: Request) -> Response:
    """The console's own stylesheet (no external assets)."""
    name = request.path_params["file"]
    media = _STATIC.get(name)
    if media is None:
        return apply_headers(_error(request, NotFoundError()))
    body = (resources.files("stockade.console") / "static" / name).read_bytes()
    response = Response(body, media_type=media)
    apply_headers(response)
    response.headers["cache-control"] = "no-cache"
    return response


# -- posture and actions -------------------------------------------------------------------------


@page
async def posture(ctx: Ctx) -> Response:
    """The namespace's posture: settings, actions and their risk facts, what to fix first."""
    namespace = ctx.namespace()
    found = await ctx.services.posture.of(ctx.identity, namespace)
    return ctx.render("posture.html", ns=namespace, section="posture", posture=found)


def _action_key(raw: str) -> str:
    parts = raw.split("/")
    if len(parts) > 2 or not all(is_valid_name(p) for p in parts):
        raise BadRequestError("The action name was malformed: use name or package/name.")
    return raw


@page
async def action(ctx: Ctx) -> Response:
    """One action: its risk facts and charts of its recent activations."""
    namespace = ctx.namespace()
    key = _action_key(ctx.request.path_params["name"])
    found = await ctx.services.posture.of(ctx.identity, namespace)
    facts = next((a for a in found.actions if a.key == key), None)
    if facts is None:
        raise NotFoundError()
    charts: tuple[Any, ...] = ()
    charts_hidden = ""
    if await ctx.services.access.allows(ctx.identity, namespace, Permission.READ_ACTIVATIONS):
        now = ctx.services.clock.now_ms()
        recent = await ctx.services.activations.list(
            ActivationQuery(
                namespace=namespace, entity_path=f"{namespace}/{key}", since_ms=now - CHART_WINDOW_MS, limit=500
            )
        )
        charts = charts_for(recent, now, CHART_WINDOW_MS)
    else:
        charts_hidden = "Charts need the read_activations permission."
    return ctx.render(
        "action.html", ns=namespace, section="posture", facts=facts, charts=charts, charts_hidden=charts_hidden
    )


# -- activations ---------------------------------------------------------------------------------


def _day_ms(raw: str | None, field: str, *, end: bool = False) -> int | None:
    if not raw:
        return None
    if not _DATE_RE.match(raw):
        raise BadRequestError(f"The query parameter '{field}' was malformed:\nuse YYYY-MM-DD")
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise BadRequestError(f"The query parameter '{field}' was malformed:\nuse YYYY-MM-DD") from None
    return int(day.timestamp() * 1000) + (86_400_000 - 1 if end else 0)


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise BadRequestError("The query parameter 'page' was malformed:\nuse 1 to 10000")
    return int(raw)


@page
async def activations(ctx: Ctx) -> Response:
    """Activations with filters (action, day range) and paging."""
    namespace = ctx.namespace()
    await ctx.services.access.require(ctx.identity, namespace, Permission.READ_ACTIVATIONS, f"{namespace}/activations")
    params = ctx.request.query_params
    name = params.get("name", "").strip()
    entity = f"{namespace}/{_action_key(name)}" if name else None
    number = _page_number(ctx.request)
    query = ActivationQuery(
        namespace=namespace,
        entity_path=entity,
        since_ms=_day_ms(params.get("since"), "since"),
        upto_ms=_day_ms(params.get("upto"), "upto", end=True),
        skip=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE + 1,
    )
    found = await ctx.services.activations.list(query)
    filters = {"name": name, "since": params.get("since", ""), "upto": params.get("upto", "")}
    return ctx.render(
        "activations.html",
        ns=namespace,
        section="activations",
        rows=found[:PAGE_SIZE],
        page=number,
        has_next=len(found) > PAGE_SIZE,
        filters=filters,
    )


@page
async def activation(ctx: Ctx) -> Response:
    """One activation: result, logs, duration and annotations."""
    namespace = ctx.namespace()
    await ctx.services.access.require(ctx.identity, namespace, Permission.READ_ACTIVATIONS, f"{namespace}/activations")
    found = await ctx.services.activations.get(namespace, ctx.request.path_params["id"])
    return ctx.render(
        "activation.html",
        ns=namespace,
        section="activations",
        a=found,
        annotations=kv_to_json(found.annotations),
    )


# -- events and alerts ---------------------------------------------------------------------------


def _severity(raw: str | None) -> int:
    if not raw:
        return 0
    try:
        return int(Severity.parse(raw))
    except ValueError:
        raise BadRequestError(
            f"The query parameter 'severity' was malformed:\nuse one of {', '.join(SEVERITIES)}"
        ) from None


@page
async def events(ctx: Ctx) -> Response:
    """Security events, newest first, filtered by type, severity and day range."""
    namespace = ctx.namespace()
    services = ctx.services
    await services.monitoring.alerts.require(ctx.identity, namespace, write=False)
    params = ctx.request.query_params
    kind = params.get("type", "")
    if kind and not valid_type_filter(kind):
        raise BadRequestError("The query parameter 'type' was malformed:\nunknown event type")
    namespaces = (namespace, "") if namespace == services.settings.default_namespace else (namespace,)
    found = await services.monitoring.events.list(
        EventQuery(
            namespaces=namespaces,
            types=(kind,) if kind else (),
            since_ms=_day_ms(params.get("since"), "since"),
            upto_ms=_day_ms(params.get("upto"), "upto", end=True),
            min_severity=_severity(params.get("severity")),
            limit=200,
        )
    )
    filters = {
        "type": kind,
        "severity": params.get("severity", ""),
        "since": params.get("since", ""),
        "upto": params.get("upto", ""),
    }
    return ctx.render(
        "events.html",
        ns=namespace,
        section="events",
        rows=[e.to_json() for e in found],
        types=sorted(EVENT_TYPES),
        severities=SEVERITIES,
        filters=filters,
    )


@page
async def alerts(ctx: Ctx) -> Response:
    """Alerts, newest first, with their acknowledgment."""
    namespace = ctx.namespace()
    params = ctx.request.query_params
    service = ctx.services.monitoring.alerts
    rows = await service.list_alerts(
        ctx.identity,
        AlertQuery(
            namespace=namespace,
            since_ms=_day_ms(params.get("since"), "since"),
            min_severity=_severity(params.get("severity")),
            limit=200,
        ),
    )
    acks = await service.acknowledgments(ctx.identity, namespace, [str(r["id"]) for r in rows])
    status = params.get("status", "")
    if status not in ("", "open", "acknowledged"):
        raise BadRequestError("The query parameter 'status' was malformed:\nuse open or acknowledged")
    if status:
        rows = [r for r in rows if (str(r["id"]) in acks) == (status == "acknowledged")]
    filters = {"severity": params.get("severity", ""), "since": params.get("since", ""), "status": status}
    return ctx.render(
        "alerts.html", ns=namespace, section="alerts", rows=rows, acks=acks, severities=SEVERITIES, filters=filters
    )


@page
async def alert(ctx: Ctx) -> Response:
    """One alert, its evidence and its acknowledgment."""
    namespace = ctx.namespace()
    found, evidence, ack = await ctx.services.monitoring.alerts.alert_detail(
        ctx.identity, namespace, ctx.request.path_params["id"]
    )
    return ctx.render(
        "alert.html",
        ns=namespace,
        section="alerts",
        a=found.to_json(),
        evidence=[e.to_json() for e in evidence],
        ack=ack,
    )


@page
async def acknowledge(ctx: Ctx) -> Response:
    """Acknowledge an alert (POST, CSRF-checked)."""
    namespace = ctx.namespace()
    alert_id = ctx.request.path_params["id"]
    await ctx.services.monitoring.alerts.acknowledge(ctx.identity, namespace, alert_id, ctx.form.get("note", ""))
    return RedirectResponse(
        f"/console/ns/{quote(namespace, safe='')}/alerts/{quote(alert_id, safe='')}", status_code=303
    )


# -- audit ---------------------------------------------------------------------------------------


async def _audit_chain(ctx: Ctx) -> str:
    namespace = ctx.namespace()
    await ctx.services.access.require(ctx.identity, namespace, Permission.AUDIT, f"{namespace}/audit")
    return namespace


@page
async def audit(ctx: Ctx) -> Response:
    """The chain's verification and its entries (paged by sequence number)."""
    chain = await _audit_chain(ctx)
    raw = ctx.request.query_params.get("since", "0")
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequestError("The query parameter 'since' was malformed:\nuse a sequence number")
    verification = await ctx.services.audit.verify(chain)
    records = await ctx.services.audit.entries(chain, since_seq=int(raw), limit=100)
    entries = [AuditLog.record_to_json(r) for r in records]
    return ctx.render(
        "audit.html",
        ns=chain,
        section="audit",
        verification=verification,
        entries=entries,
        next_since=entries[-1]["seq"] if len(entries) == 100 else None,
    )


@page
async def audit_export(ctx: Ctx) -> Response:
    """The whole chain as JSON lines (a download)."""
    chain = await _audit_chain(ctx)
    services = ctx.services

    async def lines() -> AsyncIterator[bytes]:
        async for record in services.audit.iterate(chain):
            yield (
                json.dumps(AuditLog.record_to_json(record), separators=(",", ":"), ensure_ascii=False) + "\n"
            ).encode()

    filename = re.sub(r"[^A-Za-z0-9_.-]", "_", chain) or "platform"
    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"content-disposition": f'attachment; filename="audit-{filename}.jsonl"'},
    )


def console_routes() -> list[BaseRoute]:
    """The console's routes, to compose into the app (server.py)."""
    base = "/console/ns/{ns}"
    return [
        Route("/console", home, methods=["GET"]),
        Route("/console/", home, methods=["GET"]),
        Route("/console/static/{file}", static, methods=["GET"]),
        Route("/console/login", login_form, methods=["GET"]),
        Route("/console/login", login, methods=["POST"]),
        Route("/console/logout", logout, methods=["POST"]),
        Route(base, posture, methods=["GET"]),
        Route(base + "/actions/{name:path}", action, methods=["GET"]),
        Route(base + "/activations", activations, methods=["GET"]),
        Route(base + "/activations/{id}", activation, methods=["GET"]),
        Route(base + "/events", events, methods=["GET"]),
        Route(base + "/alerts", alerts, methods=["GET"]),
        Route(base + "/alerts/{id}", alert, methods=["GET"]),
        Route(base + "/alerts/{id}/ack", acknowledge, methods=["POST"]),
        Route(base + "/audit", audit, methods=["GET"]),
        Route(base + "/audit/export", audit_export, methods=["GET"]),
    ]
