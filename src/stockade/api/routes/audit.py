"""``/namespaces/{ns}/audit``: read, verify and export the namespace's audit chain (read-only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.api.context import authenticate, endpoint, namespace_param, query_int, services_of
from stockade.api.problems import JsonResponse
from stockade.security.authz import Permission
from stockade.services import AuditLog

__all__ = ["routes"]


async def _chain(request: Request) -> str:
    credentials = await authenticate(request)
    namespace = namespace_param(request, credentials)
    await services_of(request).access.require(credentials.identity, namespace, Permission.AUDIT, f"{namespace}/audit")
    return namespace


@endpoint
async def entries(request: Request) -> Response:
    """Entries after ``?since=SEQ`` (at most ``?limit=``, default 200, up to 1000)."""
    chain = await _chain(request)
    since = max(0, query_int(request, "since", 0))
    limit = min(max(1, query_int(request, "limit", 200)), 1000)
    records = await services_of(request).audit.entries(chain, since_seq=since, limit=limit)
    return JsonResponse([AuditLog.record_to_json(r) for r in records])


@endpoint
async def verify(request: Request) -> Response:
    """Walk the chain and report its head and any problem."""
    chain = await _chain(request)
    return JsonResponse((await services_of(request).audit.verify(chain)).to_json())


_BASE = "/api/v1/namespaces/{ns}/audit"
routes = [
    Route(_BASE, entries, methods=["GET"]),
    Route(_BASE + "/verify", verify, methods=["GET"]),
]
