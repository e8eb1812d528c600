"""Starlette adapter: ``/api/gw/{namespace}{basepath}{relpath}`` → the gateway pipeline.

The app composes these routes next to the API's (``Platform.routes``, see server.py); the
gateway keeps one ``Gateway`` per app, on ``app.state``, created on first use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from stockade.edge import read_body
from stockade.gateway.pipeline import Gateway, GatewayRequest
from stockade.security.sources import client_address, parse_networks
from stockade.services import Services

__all__ = ["gateway_routes"]

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _gateway(request: Request) -> Gateway:
    state = request.app.state
    gateway: Gateway | None = getattr(state, "gateway", None)
    if gateway is None:
        services: Services = state.services
        gateway = state.gateway = Gateway(services)
    return gateway


def _body_reader(request: Request) -> Callable[[int], Awaitable[bytes]]:
    async def read(limit_bytes: int) -> bytes:
        """The body, 413 past ``limit_bytes`` (the edge's one bounded reader)."""
        return await read_body(request, limit_bytes)

    return read


def _client(request: Request) -> str:
    """The client address: the TCP peer, or what a trusted proxy forwarded (``auth.trusted_proxies``)."""
    peer = request.client.host if request.client is not None else ""
    trusted = parse_networks(request.app.state.services.settings.auth.trusted_proxies)
    return client_address(peer, request.headers.get("x-forwarded-for"), trusted)


async def serve(request: Request) -> Response:
    """Run the gateway pipeline for one request."""
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    gateway_request = GatewayRequest(
        method=request.method,
        raw_path=raw_path.split(b"?", 1)[0].decode("latin-1"),
        query_string=request.url.query,
        headers={k.lower(): v for k, v in request.headers.items()},
        client_host=_client(request),
        scheme=request.url.scheme,
        transaction_id=request.scope.get("state", {}).get("transaction_id", ""),
        read_body=_body_reader(request),
    )
    answer = await _gateway(request).handle(gateway_request)
    response = Response(answer.body, status_code=answer.status)
    # Action-set names and values were vetted (edge.check_action_headers): tokens, Latin-1, no controls.
    response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers] + [
        (b"content-length", str(len(answer.body)).encode())
    ]
    return response


def gateway_routes() -> list[BaseRoute]:
    """The gateway's routes, to compose into the app."""
    return [Route("/api/gw/{rest:path}", serve, methods=_METHODS)]
