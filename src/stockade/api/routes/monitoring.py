"""Monitoring over HTTP: Prometheus metrics, security events, alerts, webhooks and alert rules.

- ``GET /metrics``: the Prometheus text format, for callers of the platform's default namespace or
  ``Authorization: Bearer <observability.metrics_token>``.
- ``GET /api/v1/namespaces/{ns}/events?type=&since=&upto=&severity=&limit=``: stored security
  events, newest first (the default namespace also sees platform events, e.g. unknown keys).
- ``GET /api/v1/namespaces/{ns}/alerts?since=&severity=&limit=``; ``GET .../alerts/deadletters``.
- ``GET|POST .../alerts/webhooks``, ``DELETE .../alerts/webhooks/{id}``.
- ``GET .../alerts/rules``, ``PUT|DELETE .../alerts/rules/{id}``.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.api.context import (
    RouteServices,
    authenticate,
    endpoint,
    namespace_param,
    query_int,
    read_json,
    services_of,
)
from stockade.api.problems import JsonResponse
from stockade.errors import BadRequestError, ForbiddenError, UnauthenticatedError
from stockade.observability.events import Severity
from stockade.observability.metrics import CONTENT_TYPE_LATEST
from stockade.security.authz import Permission
from stockade.services import Credentials
from stockade.services.events import valid_type_filter
from stockade.store import AlertQuery, EventQuery

__all__ = ["may_read_metrics", "routes"]

MAX_LIMIT = 200


async def may_read_metrics(services: RouteServices, credentials: Credentials) -> bool:
    """Who may scrape /metrics besides the bearer token: holders of MONITOR (owners, auditors) in
    the platform's administrative namespace (the metrics cover every namespace)."""
    return await services.access.allows(credentials.identity, services.settings.default_namespace, Permission.MONITOR)


@endpoint
async def metrics(request: Request) -> Response:
    """The Prometheus exposition of this process's metrics."""
    services = services_of(request)
    token = services.settings.observability.metrics_token
    authorization = request.headers.get("authorization", "")
    if token and authorization[:7].lower() == "bearer ":
        # Invariant: compared in constant time, so response timing reveals nothing of the token.
        if not hmac.compare_digest(authorization[7:].strip().encode(), token.encode()):
            raise UnauthenticatedError()
    else:
        credentials = await authenticate(request)
        if not await may_read_metrics(services, credentials):
            raise ForbiddenError("Only the platform's administrative namespace may read metrics.")
    return Response(services.monitoring.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _limit(request: Request) -> int:
    limit = query_int(request, "limit", 50)
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequestError(f"The query parameter 'limit' was malformed:\nuse 1 to {MAX_LIMIT}")
    return limit


def _severity(request: Request) -> int:
    raw = request.query_params.get("severity")
    if not raw:
        return 0
    try:
        return int(Severity.parse(raw))
    except ValueError as exc:
        raise BadRequestError(f"The query parameter 'severity' was malformed:\n{exc}") from None


def _optional_ms(request: Request, name: str) -> int | None:
    return query_int(request, name, 0) if request.query_params.get(name) else None


async def _caller(request: Request) -> tuple[Credentials, str]:
    credentials = await authenticate(request)
    return credentials, namespace_param(request, credentials)


@endpoint
async def list_events(request: Request) -> Response:
    """Security events of a namespace, newest first."""
    credentials, namespace = await _caller(request)
    services = services_of(request)
    await services.monitoring.alerts.require(credentials.identity, namespace, write=False)
    types = tuple(t for t in request.query_params.getlist("type") for t in t.split(",") if t)
    for raw in types:
        if not valid_type_filter(raw):
            raise BadRequestError(f"The query parameter 'type' was malformed:\nunknown event type '{raw[:64]}'")
    # The administrative namespace also owns the platform's events (no namespace known).
    namespaces = (namespace, "") if namespace == services.settings.default_namespace else (namespace,)
    query = EventQuery(
        namespaces=namespaces,
        types=types,
        since_ms=_optional_ms(request, "since"),
        upto_ms=_optional_ms(request, "upto"),
        min_severity=_severity(request),
        limit=_limit(request),
    )
    return JsonResponse([e.to_json() for e in await services.monitoring.events.list(query)])


@endpoint
async def list_alerts(request: Request) -> Response:
    """Alerts of a namespace, newest first."""
    credentials, namespace = await _caller(request)
    query = AlertQuery(
        namespace=namespace,
        since_ms=_optional_ms(request, "since"),
        min_severity=_severity(request),
        limit=_limit(request),
    )
    return JsonResponse(await services_of(request).monitoring.alerts.list_alerts(credentials.identity, query))


@endpoint
async def dead_letters(request: Request) -> Response:
    """Alerts that could not be delivered to the namespace's webhooks."""
    credentials, namespace = await _caller(request)
    alerts = services_of(request).monitoring.alerts
    return JsonResponse(await alerts.list_dead_letters(credentials.identity, namespace, _limit(request)))


@endpoint
async def webhooks(request: Request) -> Response:
    """GET the namespace's webhooks; POST ``{"url", "secret", "minSeverity"?}`` adds one."""
    credentials, namespace = await _caller(request)
    alerts = services_of(request).monitoring.alerts
    if request.method == "GET":
        return JsonResponse(await alerts.list_webhooks(credentials.identity, namespace))
    body = await read_json(request, limit_bytes=16 * 1024)
    return JsonResponse(await alerts.add_webhook(credentials.identity, namespace, body))


@endpoint
async def webhook_entity(request: Request) -> Response:
    """DELETE one webhook."""
    credentials, namespace = await _caller(request)
    alerts = services_of(request).monitoring.alerts
    await alerts.delete_webhook(credentials.identity, namespace, request.path_params["id"])
    return JsonResponse({"id": request.path_params["id"], "deleted": True})


@endpoint
async def rules(request: Request) -> Response:
    """The platform's rules and the namespace's own."""
    credentials, namespace = await _caller(request)
    return JsonResponse(await services_of(request).monitoring.alerts.list_rules(credentials.identity, namespace))


@endpoint
async def rule_entity(request: Request) -> Response:
    """PUT a rule document (the id is the URL's); DELETE it."""
    credentials, namespace = await _caller(request)
    alerts = services_of(request).monitoring.alerts
    rule_id = request.path_params["id"]
    if request.method == "DELETE":
        await alerts.delete_rule(credentials.identity, namespace, rule_id)
        return JsonResponse({"id": rule_id, "deleted": True})
    body = await read_json(request, limit_bytes=16 * 1024)
    return JsonResponse(await alerts.put_rule(credentials.identity, namespace, rule_id, body))


_BASE = "/api/v1/namespaces/{ns}"
routes = [
    Route("/metrics", metrics, methods=["GET"]),
    Route(_BASE + "/events", list_events, methods=["GET"]),
    Route(_BASE + "/alerts", list_alerts, methods=["GET"]),
    Route(_BASE + "/alerts/deadletters", dead_letters, methods=["GET"]),
    Route(_BASE + "/alerts/webhooks", webhooks, methods=["GET", "POST"]),
    Route(_BASE + "/alerts/webhooks/{id}", webhook_entity, methods=["DELETE"]),
    Route(_BASE + "/alerts/rules", rules, methods=["GET"]),
    Route(_BASE + "/alerts/rules/{id}", rule_entity, methods=["PUT", "DELETE"]),
]
