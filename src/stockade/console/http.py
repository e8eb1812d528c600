"""The console's routes (``console_routes``), sign-in, sign-out and its stylesheet.

Sign-in exchanges an API key or a JWT for a session (``ConsoleSessions.sign_in``); its form is
protected by a double-submit token and the same-origin check. The pages are in ``pages.py``,
the per-request frame (session, CSRF, rendering, errors) in ``frame.py``.
"""

from __future__ import annotations

import base64
from importlib import resources
from typing import Final
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from stockade.console.frame import (
    CSRF_REFUSED,
    Ctx,
    client_address,
    error_response,
    page,
    read_form,
    record_refusal,
    render,
    wants_html,
)
from stockade.console.pages import (
    acknowledge,
    action,
    activation,
    activations,
    alert,
    alerts,
    audit,
    audit_export,
    events,
    posture,
)
from stockade.console.security import (
    apply_headers,
    cookie_name,
    login_token_matches,
    new_login_token,
    same_origin,
    set_login_cookie,
    set_session_cookie,
)
from stockade.errors import ForbiddenError, NotFoundError, PlatformError, UnauthenticatedError
from stockade.services import Services

__all__ = ["console_routes"]

_STATIC: Final = {"console.css": "text/css; charset=utf-8"}


# -- sign-in and out -----------------------------------------------------------------------------


async def login_form(request: Request) -> Response:
    """The sign-in form (API key or JWT)."""
    token = new_login_token()
    response = render("login.html", login_token=token, error="")
    set_login_cookie(response, request, token)
    return apply_headers(response)


async def login(request: Request) -> Response:
    """Exchange an API key (``uuid:key``) or a JWT for a session cookie."""
    services: Services = request.app.state.services
    try:
        if not same_origin(request):
            raise ForbiddenError(CSRF_REFUSED)
        form = await read_form(request)
        if not login_token_matches(request, form.get("login_token")):
            raise ForbiddenError(CSRF_REFUSED)
        credential = form.get("credential", "").strip()
        if not credential or len(credential) > 8192:
            raise UnauthenticatedError("Enter an API key (uuid:key) or a JWT.")
        if credential.count(".") == 2 and ":" not in credential:
            authorization = f"Bearer {credential}"
        else:
            authorization = "Basic " + base64.b64encode(credential.encode()).decode()
        session = await services.console.sign_in(authorization, source=client_address(request))
    except PlatformError as exc:
        if exc.status in (401, 403, 429) and wants_html(request) and exc.message != CSRF_REFUSED:
            token = new_login_token()
            message = exc.message if exc.status != 401 else "Sign-in failed: the key or token was not accepted."
            response = render("login.html", exc.status, login_token=token, error=message)
            set_login_cookie(response, request, token)
            return apply_headers(response)
        if exc.status == 403:
            record_refusal(request, services, None, exc)
        return apply_headers(error_response(request, exc))
    response = RedirectResponse(f"/console/ns/{quote(session.identity.namespace, safe='')}", status_code=303)
    ttl_s = max(1, (session.expires_ms - services.clock.now_ms()) // 1000)
    set_session_cookie(response, request, session.token, int(ttl_s))
    response.delete_cookie("stockade_console_login", path="/console")
    return apply_headers(response)


@page
async def logout(ctx: Ctx) -> Response:
    """End the session."""
    await ctx.services.console.sign_out(ctx.token, ctx.identity, source=client_address(ctx.request))
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
        return apply_headers(error_response(request, NotFoundError()))
    body = (resources.files("stockade.console") / "static" / name).read_bytes()
    response = Response(body, media_type=media)
    apply_headers(response)
    response.headers["cache-control"] = "no-cache"
    return response


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
