"""The OpenWhisk client's routes API (``whisk.system/apimgmt``): apidocs in, swagger out.

``createApi`` bodies (one endpoint, or a whole swagger document with ``x-openwhisk``
operations) become routes; ``getApi`` answers group a namespace's routes by base path into the
client's ``{"id", "key", "value": {namespace, gwApiActivated, tenantId, gwApiUrl, apidoc}}``
items, with a swagger 2.0 ``apidoc``. The ``authkey`` the client puts in the apidoc (its own API
key) is ignored: never stored, never echoed. Routes run as their namespace.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Final

from stockade.domain import (
    JSON,
    RESPONSE_TYPES,
    ApiRoute,
    EntityPath,
    RouteOptions,
    normalise_base_path,
    normalise_relative_path,
    parse_fqn,
)
from stockade.errors import BadRequestError

__all__ = ["OPENWHISK_ROUTE_OPTIONS", "api_items", "cli_api", "routes_from_apidoc"]

# What a route made through the OpenWhisk client gets: the upstream gateway's behaviour (open,
# CORS for any origin). Stockade's own API and CLI add authentication, limits and quotas.
OPENWHISK_ROUTE_OPTIONS: Final = RouteOptions(cors_origins=("*",))


def _object(value: JSON, what: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BadRequestError(f"{what} field cannot be parsed. Ensure it is valid JSON.") from None
    if not isinstance(value, dict):
        raise BadRequestError(f"{what} is required.")
    return value


def _response_type(raw: str | None) -> str:
    value = (raw or "json").lower()
    if value not in RESPONSE_TYPES:
        raise BadRequestError(f"The response type must be one of {', '.join(RESPONSE_TYPES)}.")
    return value


def _route(
    namespace: str, base: str, rel: str, verb: str, action: EntityPath, response_type: str, api_name: str
) -> ApiRoute:
    return ApiRoute(
        namespace=namespace,
        base_path=normalise_base_path(base),
        rel_path=normalise_relative_path(rel),
        verb=verb.upper(),
        action=action,
        response_type=_response_type(response_type),  # type: ignore[arg-type]  # checked just above
        api_name=api_name,
        options=OPENWHISK_ROUTE_OPTIONS,
    )


def routes_from_apidoc(namespace: str, body: JSON, response_type: str | None) -> list[ApiRoute]:
    """The routes a ``createApi`` body asks for (``namespace``: the caller's; ``_`` means it)."""
    if not isinstance(body, dict):
        raise BadRequestError("apidoc is required.")
    doc = _object(body.get("apidoc"), "apidoc")
    if doc.get("swagger") is not None:
        if doc.get("gatewayBasePath"):
            raise BadRequestError(
                "swagger and gatewayBasePath are mutually exclusive and cannot be specified together."
            )
        return _routes_from_swagger(namespace, _object(doc["swagger"], "swagger"), response_type)
    for key in ("gatewayBasePath", "gatewayPath", "gatewayMethod"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise BadRequestError(f"apidoc is missing the {key} field")
    action = doc.get("action")
    if not isinstance(action, dict):
        raise BadRequestError("apidoc is missing the action field.")
    name, action_ns = action.get("name"), action.get("namespace")
    if not isinstance(name, str) or not name:
        raise BadRequestError("action is missing the name field.")
    if not isinstance(action_ns, str) or not action_ns:
        raise BadRequestError("action is missing the namespace field.")
    target = parse_fqn(f"/{namespace if action_ns == '_' else action_ns}/{name.strip('/')}", namespace)
    api_name = doc.get("apiName") if isinstance(doc.get("apiName"), str) else ""
    return [
        _route(
            namespace,
            doc["gatewayBasePath"],
            doc["gatewayPath"],
            doc["gatewayMethod"],
            target,
            response_type or "json",
            str(api_name),
        )
    ]


def _routes_from_swagger(namespace: str, swagger: dict[str, Any], response_type: str | None) -> list[ApiRoute]:
    base = swagger.get("basePath")
    paths = swagger.get("paths")
    info = swagger.get("info")
    if not isinstance(base, str) or not base:
        raise BadRequestError("swagger is missing the basePath field.")
    if not isinstance(paths, dict):
        raise BadRequestError("swagger is missing the paths field.")
    if not isinstance(info, dict):
        raise BadRequestError("swagger is missing the info field.")
    title = info.get("title") if isinstance(info.get("title"), str) else ""
    routes = []
    for rel, operations in paths.items():
        if not isinstance(operations, dict):
            raise BadRequestError("swagger paths must map each path to its operations.")
        for verb, operation in operations.items():
            target = operation.get("x-openwhisk") if isinstance(operation, dict) else None
            if not isinstance(target, dict) or not isinstance(target.get("action"), str):
                raise BadRequestError(f"swagger operation {verb} {rel} has no x-openwhisk action.")
            action_ns = target.get("namespace") if isinstance(target.get("namespace"), str) else "_"
            package = target.get("package") if isinstance(target.get("package"), str) else ""
            name = f"{package}/{target['action']}" if package and package != "default" else target["action"]
            url = str(target.get("url") or "")
            extension = url.rsplit(".", 1)[-1] if "." in url.rsplit("/", 1)[-1] else None
            routes.append(
                _route(
                    namespace,
                    base,
                    str(rel),
                    str(verb),
                    parse_fqn(f"/{namespace if action_ns == '_' else action_ns}/{name}", namespace),
                    response_type or extension or "json",
                    str(title),
                )
            )
    if not routes:
        raise BadRequestError("swagger defines no operations.")
    return routes


def _swagger(base: str, routes: Sequence[ApiRoute], base_url: str) -> dict[str, JSON]:
    """A swagger 2.0 document of one base path's routes, with OpenWhisk's ``x-openwhisk`` operations."""
    paths: dict[str, JSON] = {}
    for route in routes:
        action = route.action
        operations = paths.setdefault(route.rel_path, {})
        assert isinstance(operations, dict)
        operations[route.verb.lower()] = {
            "operationId": f"{route.verb.lower()}_{route.rel_path}",
            "x-openwhisk": {
                "namespace": action.namespace,
                "package": action.package or "",
                "action": action.name,
                "url": f"{base_url}/api/v1/web/{action.namespace}/{action.package or 'default'}/{action.name}.{route.response_type}",
            },
            "x-stockade": {"auth": route.options.auth, "responseType": route.response_type},
            "responses": {"default": {"description": "Default response"}},
        }
    title = next((r.api_name for r in routes if r.api_name), base)
    return {"swagger": "2.0", "info": {"title": title, "version": "1.0.0"}, "basePath": base, "paths": paths}


def cli_api(namespace: str, base: str, routes: Sequence[ApiRoute], gateway_url: str, base_url: str) -> dict[str, JSON]:
    """What ``createApi`` answers, and the ``value`` of each ``getApi`` item."""
    return {
        "namespace": namespace,
        "gwApiActivated": True,
        "tenantId": namespace,
        "gwApiUrl": gateway_url,
        "apidoc": _swagger(base, routes, base_url),
    }


def api_items(
    namespace: str,
    routes: Sequence[ApiRoute],
    gateway_url: Callable[[str], str],
    base_url: str,
    *,
    basepath: str | None = None,
    relpath: str | None = None,
    operation: str | None = None,
) -> list[JSON]:
    """``getApi``'s ``apis``: one item per base path; ``basepath`` not starting with ``/`` is an API name."""
    groups: dict[str, list[ApiRoute]] = defaultdict(list)
    for route in routes:
        groups[route.base_path].append(route)
    items: list[JSON] = []
    for base, members in sorted(groups.items()):
        if basepath:
            if basepath.startswith("/"):
                if normalise_base_path(basepath) != base:
                    continue
            elif not any(r.api_name == basepath for r in members):
                continue
        if relpath:
            rel = normalise_relative_path(relpath)
            members = [r for r in members if r.rel_path == rel and (not operation or r.verb == operation.upper())]
        if not members:
            continue
        items.append(
            {
                "id": f"API:{namespace}:{base}",
                "key": namespace,
                "value": cli_api(namespace, base, members, gateway_url(base), base_url),
            }
        )
    return items
