"""What each route needs, declared once per (path, method), enforced in one place.

``guard_routes`` wraps every route of the app: before the handler runs, the caller is
authenticated and the declared permission checked (``AccessService.allows``) in the namespace the
route names. A route or a method without a declaration stops the app from being built, so a new
route cannot be served by accident without a decision on who may call it. Refusals are OpenWhisk's
403 naming only what the URL already names, the same whether or not the target exists. Services
still check the object-level rules (code reads, public packages, scoped tokens' exact actions).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from stockade.api.context import Handler, authenticate, report_refusal, services_of, transaction_id
from stockade.api.problems import error_response
from stockade.domain import validate_namespace
from stockade.errors import ForbiddenError, PlatformError
from stockade.security.authz import Permission
from stockade.services.access import forbidden

__all__ = ["Need", "RouteDeclarationError", "Scope", "guard_routes"]


class Scope(enum.Enum):
    """Where a route's permission is checked."""

    PUBLIC = "public"  # no credentials needed; the handler decides (web actions, gateway, info)
    AUTHENTICATED = "authenticated"  # any valid credentials
    NAMESPACE = "namespace"  # the permission in the URL's {ns} ("_" = the caller's)
    CALLER = "caller"  # the permission in the caller's own namespace (no {ns} in the URL)
    PLATFORM = "platform"  # the permission in the platform's administrative namespace


@final
@dataclass(frozen=True, slots=True)
class Need:
    """One route method's requirement."""

    scope: Scope
    permission: Permission | None = None
    # Other namespaces' callers reach public packages here: the service decides for them.
    shared: bool = False
    # Holders of the permission in the platform's administrative namespace may also call it.
    or_platform: bool = False
    # Why a PUBLIC route is public (documentation, shown by the matrix test on failure).
    reason: str = ""


class RouteDeclarationError(RuntimeError):
    """A route or one of its methods has no permission declaration."""


def _key(route: Route, method: str) -> tuple[str, str]:
    return (route.path, method)


def _resource(request: Request, namespace: str) -> str:
    params = request.path_params
    name = params.get("name")
    if name is not None:
        package = params.get("pkg")
        return f"{namespace}/{package}/{name}" if package else f"{namespace}/{name}"
    tail = request.url.path.split(f"/{params.get('ns', '')}/", 1)[-1].split("/", 1)[0]
    return f"{namespace}/{tail}" if tail else namespace


async def _enforce(request: Request, need: Need) -> None:
    credentials = await authenticate(request)
    if need.scope is Scope.AUTHENTICATED or need.permission is None:
        return
    services = services_of(request)
    identity = credentials.identity
    admin = services.settings.default_namespace
    if need.scope is Scope.PLATFORM:
        if not await services.access.allows(identity, admin, need.permission, coarse=True):
            raise ForbiddenError()
        return
    raw = request.path_params.get("ns", "_") if need.scope is Scope.NAMESPACE else "_"
    namespace = identity.namespace if raw == "_" else validate_namespace(raw)
    if await services.access.allows(identity, namespace, need.permission, coarse=True):
        return
    if need.shared and namespace != identity.namespace and identity.scope is None:
        return  # a public package of another namespace, perhaps: the service answers (403 if not)
    if need.or_platform and await services.access.allows(identity, admin, need.permission, coarse=True):
        return
    raise forbidden(_resource(request, namespace))


def _guard(handler: Handler, needs: Mapping[str, Need]) -> Handler:
    async def guarded(request: Request) -> Response:
        need = needs.get(request.method) or needs["GET"]  # HEAD is served as GET
        if need.scope is not Scope.PUBLIC:
            try:
                await _enforce(request, need)
            except PlatformError as exc:
                report_refusal(request, exc)
                return error_response(exc, transaction_id(request))
        return await handler(request)

    guarded.__name__ = getattr(handler, "__name__", "guarded")
    guarded.__doc__ = handler.__doc__
    return guarded


def guard_routes(routes: list[BaseRoute], table: Mapping[tuple[str, str], Need]) -> list[BaseRoute]:
    """Every route wrapped by its declared needs; RouteDeclarationError names any undeclared one."""
    guarded: list[BaseRoute] = []
    missing: list[str] = []
    for route in routes:
        if not isinstance(route, Route):
            missing.append(f"{type(route).__name__} {getattr(route, 'path', '?')}")
            continue
        methods = sorted((route.methods or set()) - {"HEAD"})
        needs = {m: table[_key(route, m)] for m in methods if _key(route, m) in table}
        missing += [f"{m} {route.path}" for m in methods if m not in needs]
        if len(needs) == len(methods):
            guarded.append(Route(route.path, _guard(route.endpoint, needs), methods=methods, name=route.name))
    if missing:
        raise RouteDeclarationError("routes without a permission declaration: " + "; ".join(missing))
    return guarded
