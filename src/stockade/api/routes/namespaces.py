"""``/api/v1/namespaces``: the caller's namespace and its limits."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade.api.context import authenticate, endpoint, namespace_param, services_of
from stockade.api.problems import JsonResponse
from stockade.security.authz import Permission

__all__ = ["routes"]


@endpoint
async def list_namespaces(request: Request) -> Response:
    """``["<caller ns>"]``."""
    credentials = await authenticate(request)
    return JsonResponse([credentials.identity.namespace])


@endpoint
async def namespace_limits(request: Request) -> Response:
    """The namespace's limits in OpenWhisk's shape."""
    credentials = await authenticate(request)
    namespace = namespace_param(request, credentials)
    await services_of(request).access.require(credentials.identity, namespace, Permission.READ, namespace)
    limits = services_of(request).settings.limits
    # The namespace's own throttles when the operator set any (stockade admin limits-set).
    per_minute, concurrent, fires = services_of(request).throttle.limits(namespace)
    return JsonResponse(
        {
            "invocationsPerMinute": per_minute,
            "concurrentInvocations": concurrent,
            "firesPerMinute": fires,
            "minActionMemory": limits.min_action_memory_mb,
            "maxActionMemory": limits.max_action_memory_mb,
            "minActionLogs": 0,
            "maxActionLogs": limits.max_action_logs_mb,
            "minActionTimeout": limits.min_action_timeout_ms,
            "maxActionTimeout": limits.max_action_timeout_ms,
            "minActionConcurrency": 1,
            "maxActionConcurrency": limits.max_action_concurrency,
            "maxParameterSize": f"{limits.max_parameters_bytes // (1024 * 1024)} MB",
            "maxActionInstances": concurrent,
        }
    )


routes = [
    Route("/api/v1/namespaces", list_namespaces, methods=["GET"]),
    Route("/api/v1/namespaces/{ns}/limits", namespace_limits, methods=["GET"]),
]
