"""create_app: the ASGI control plane, wired once from settings (or injected parts in tests)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from stockade.api.context import transaction_id
from stockade.api.middleware import ApiMiddleware
from stockade.api.permissions import guard_routes
from stockade.api.problems import error_response
from stockade.api.routes import all_routes
from stockade.api.routes.permissions import ROUTE_PERMISSIONS
from stockade.config import Settings
from stockade.domain import Clock, SystemClock
from stockade.errors import NotFoundError, PlatformError
from stockade.observability.metrics import Metrics
from stockade.observability.tracing import Tracer, build_tracer
from stockade.security import Keyring
from stockade.services import ActionRunner, Services, build_services
from stockade.store import Store, open_store

__all__ = ["Platform", "create_app"]

ROUTE_NOT_FOUND = "The requested resource could not be found."
log = structlog.get_logger("stockade.api")


@dataclass(slots=True)
class Platform:
    """The parts ``create_app`` wires; tests may pass their own."""

    settings: Settings
    store: Store
    runner: ActionRunner
    clock: Clock = field(default_factory=SystemClock)
    # The master keyring; None loads it from settings (created on first start).
    keyring: Keyring | None = None
    # Benchmark-only: False skips authorization checks (never reachable from settings).
    enforce_access: bool = True
    # Called on shutdown after activations drain (e.g. to close the invoker and its sandboxes).
    on_close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Called once the store is open, before serving (e.g. bootstrap of the default namespace).
    on_open: list[Callable[[Services], Awaitable[None]]] = field(default_factory=list)
    # The app's metrics registry; None creates one (never prometheus_client's global registry).
    metrics: Metrics | None = None
    # OpenTelemetry tracer (shared with the invoker); None builds one when settings turn tracing on.
    tracer: Tracer | None = None
    # Routes served next to the API's (the API gateway's, composed by server.py: api cannot import it).
    routes: list[BaseRoute] = field(default_factory=list)


async def _not_found(request: Request, exc: Exception) -> Response:
    """Unknown routes and unsupported verbs both end as OpenWhisk's 404."""
    return error_response(NotFoundError(ROUTE_NOT_FOUND), transaction_id(request))


def create_app(platform: Platform) -> Starlette:
    """The ASGI app over ``platform``; the store opens and closes with the app's lifespan."""
    tracer = platform.tracer
    if tracer is None and platform.settings.observability.tracing_enabled:
        tracer, _provider = build_tracer()
    services = build_services(
        platform.settings,
        platform.store,
        platform.runner,
        platform.clock,
        platform.keyring,
        enforce_access=platform.enforce_access,
        metrics=platform.metrics,
        tracer=tracer,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await platform.store.open()
        try:
            # Read-only check: a wrong master key stops the start before anything is written.
            await services.vault.verify()
            # Once per database: stamp actions stored before integrity stamps existed.
            await services.integrity.backfill()
        except PlatformError as exc:
            log.error("startup.refused", reason=exc.message)
            await platform.store.close()
            raise
        await services.throttle.restore(platform.store)
        services.recorder.start()
        services.monitoring.start()
        await services.audit.start_durable()
        services.epoch.start()
        await services.limits.reload()
        # Every activation an earlier process accepted ends in exactly one terminal record.
        recovered = await services.invoke.recover()
        if any(recovered.values()):
            log.warning("startup.recovered_activations", **recovered)
        services.advisory_sync.start()
        for hook in platform.on_open:
            await hook(services)
        try:
            yield
        finally:
            await services.invoke.drain()
            await services.advisory_sync.close()
            await services.apis.close()
            await services.monitoring.close()
            await services.recorder.close()
            await services.epoch.close()
            await services.audit.close()
            for close in platform.on_close:
                with contextlib.suppress(Exception):
                    await close()
            await platform.store.close()

    app = Starlette(
        # Every route runs behind its declared permission; an undeclared route stops the app here.
        routes=guard_routes([*platform.routes, *all_routes()], ROUTE_PERMISSIONS),
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _not_found, HTTPException: _http_error},
    )
    # A path matches or is a 404: no slash redirects (they turned an encoded slash in a name into
    # another entity's path, with a Location built from the Host header).
    app.router.redirect_slashes = False
    app.state.services = services
    app.state.tracer = tracer
    app.add_middleware(ApiMiddleware)
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status in (404, 405):
        return await _not_found(request, exc)
    error = PlatformError(str(getattr(exc, "detail", "")) or None)
    return error_response(error, transaction_id(request))


def default_store(settings: Settings) -> Store:
    """The store the settings name."""
    return open_store(settings.store.url, settings.data_dir)
