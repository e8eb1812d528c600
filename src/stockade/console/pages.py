"""The console's pages: posture and actions, activations, events and alerts, audit.

Each page calls the same service, with the same permission check, as the API route that serves
the same data; nothing here decides access.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from stockade.console.charts import charts_for
from stockade.console.frame import Ctx, page
from stockade.domain import is_valid_name, kv_to_json
from stockade.errors import BadRequestError, NotFoundError
from stockade.observability.events import EVENT_TYPES, Severity
from stockade.security.authz import Permission
from stockade.services import AuditLog
from stockade.services.events import valid_type_filter
from stockade.store import ActivationQuery, AlertQuery, EventQuery

__all__ = [
    "acknowledge",
    "action",
    "activation",
    "activations",
    "alert",
    "alerts",
    "audit",
    "audit_export",
    "events",
    "posture",
]


PAGE_SIZE: Final = 30
CHART_WINDOW_MS: Final = 24 * 3_600_000
SEVERITIES: Final = tuple(s.label for s in Severity)
_DATE_RE: Final = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")


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
