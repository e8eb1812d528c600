"""The API gateway: routes of a namespace's APIs served at ``/api/gw/{namespace}{basepath}{relpath}``.

Every request passes route matching, CORS, authentication (none, API key, JWT with scopes), a
body size limit, a JSON Schema, token buckets (per client, per route) and quotas (per client per
day and month) before its action runs as the route's namespace. Route records and their
validation live in ``stockade.domain`` (the store and the management API need them too).
"""

from stockade.gateway.buckets import BucketTable
from stockade.gateway.http import gateway_routes
from stockade.gateway.matching import RouteMatch, RouteTable
from stockade.gateway.pipeline import Gateway, GatewayRequest, GatewayResponse, client_of

__all__ = [
    "BucketTable",
    "Gateway",
    "GatewayRequest",
    "GatewayResponse",
    "RouteMatch",
    "RouteTable",
    "client_of",
    "gateway_routes",
]
