"""``GET /`` and ``GET /api/v1``: platform and API information (no auth)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockade import __version__
from stockade.api.context import services_of
from stockade.api.problems import JsonResponse
from stockade.domain import RUNTIMES

__all__ = ["routes"]

MB = 1024 * 1024


async def platform_info(request: Request) -> Response:
    """Limits and runtimes, in OpenWhisk's shape."""
    limits = services_of(request).settings.limits
    family_runtimes: dict[str, list[dict[str, object]]] = {}
    for runtime in RUNTIMES.values():
        family_runtimes.setdefault(runtime.family, []).append(
            {
                "kind": runtime.kind,
                "image": f"stockade/{runtime.kind.replace(':', '-')}",
                "deprecated": runtime.deprecated,
                "default": runtime.is_default,
                "attached": False,
                "requireMain": False,
            }
        )
    return JsonResponse(
        {
            "description": "OpenWhisk",
            "support": {"github": "https://github.com/apache/openwhisk/issues", "slack": "http://slack.openwhisk.org"},
            "api_paths": ["/api/v1"],
            "limits": {
                "actions_per_minute": limits.invocations_per_minute,
                "triggers_per_minute": limits.fires_per_minute,
                "concurrent_actions": limits.concurrent_invocations,
                "sequence_length": limits.max_sequence_length,
                "min_action_duration": limits.min_action_timeout_ms,
                "max_action_duration": limits.max_action_timeout_ms,
                "min_action_memory": limits.min_action_memory_mb * MB,
                "max_action_memory": limits.max_action_memory_mb * MB,
                "min_action_logs": 0,
                "max_action_logs": limits.max_action_logs_mb * MB,
                "default_min_action_duration": limits.min_action_timeout_ms,
                "default_max_action_duration": limits.max_action_timeout_ms,
                "default_min_action_memory": limits.min_action_memory_mb * MB,
                "default_max_action_memory": limits.max_action_memory_mb * MB,
                "default_min_action_logs": 0,
                "default_max_action_logs": limits.max_action_logs_mb * MB,
            },
            "runtimes": family_runtimes,
        }
    )


async def api_info(request: Request) -> Response:
    """API version information."""
    return JsonResponse(
        {
            "description": "OpenWhisk API",
            "api_version": "1.0.0",
            "api_version_path": "v1",
            "build": f"stockade-{__version__}",
            "buildno": __version__,
            "swagger_paths": {"ui": "/docs", "api-docs": "/api-docs"},
        }
    )


routes = [
    Route("/", platform_info, methods=["GET"]),
    Route("/api/v1", api_info, methods=["GET"]),
]
