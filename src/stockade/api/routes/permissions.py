"""The permission every route method needs: one row per (path, method), next to the route table.

Rows are data; ``api/permissions.py`` enforces them for every route in one place, and the app
refuses to start while a served route has no row (tests/security/test_route_matrix.py checks the
outcome of every row for every kind of caller). Adding a route means adding its rows here.
"""

from __future__ import annotations

from stockade.api.permissions import Need, Scope
from stockade.security.authz import Permission as P

__all__ = ["ROUTE_PERMISSIONS"]

_NS = "/api/v1/namespaces/{ns}"
_APIMGMT = "/api/v1/web/whisk.system/apimgmt"
_WEB_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def ns(permission: P, *, shared: bool = False, or_platform: bool = False) -> Need:
    """``permission`` in the URL's namespace."""
    return Need(Scope.NAMESPACE, permission, shared=shared, or_platform=or_platform)


def platform(permission: P) -> Need:
    """``permission`` in the platform's administrative namespace."""
    return Need(Scope.PLATFORM, permission)


def own(permission: P) -> Need:
    """``permission`` in the caller's own namespace."""
    return Need(Scope.CALLER, permission)


def public(reason: str) -> Need:
    """No credentials needed; ``reason`` says who decides instead."""
    return Need(Scope.PUBLIC, reason=reason)


AUTHENTICATED = Need(Scope.AUTHENTICATED)
_WEB = public("a web action is public unless it requires auth (require-whisk-auth), checked by the web route")
_CONSOLE = public(
    "console pages authenticate by session cookie and call the same services and permission checks as the"
    " API (tests/console/test_console_matrix.py checks every page for every caller)"
)
_CONSOLE_NS = "/console/ns/{ns}"
_GATEWAY = public("each gateway route declares its own auth (none, API key, JWT scopes), checked by the pipeline")

ROUTE_PERMISSIONS: dict[tuple[str, str], Need] = {
    # info
    ("/", "GET"): public("platform information"),
    ("/api/v1", "GET"): public("API information"),
    # namespaces
    ("/api/v1/namespaces", "GET"): AUTHENTICATED,
    (f"{_NS}/limits", "GET"): ns(P.READ),
    # actions
    (f"{_NS}/actions", "GET"): ns(P.READ),
    (f"{_NS}/actions/{{pkg}}/", "GET"): ns(P.READ, shared=True),
    (f"{_NS}/actions/{{name}}", "GET"): ns(P.READ),
    (f"{_NS}/actions/{{name}}", "PUT"): ns(P.WRITE),
    (f"{_NS}/actions/{{name}}", "DELETE"): ns(P.WRITE),
    (f"{_NS}/actions/{{name}}", "POST"): ns(P.INVOKE),
    (f"{_NS}/actions/{{pkg}}/{{name}}", "GET"): ns(P.READ, shared=True),
    (f"{_NS}/actions/{{pkg}}/{{name}}", "PUT"): ns(P.WRITE),
    (f"{_NS}/actions/{{pkg}}/{{name}}", "DELETE"): ns(P.WRITE),
    (f"{_NS}/actions/{{pkg}}/{{name}}", "POST"): ns(P.INVOKE, shared=True),
    # activations
    (f"{_NS}/activations", "GET"): ns(P.READ_ACTIVATIONS),
    (f"{_NS}/activations/{{id}}", "GET"): ns(P.READ_ACTIVATIONS),
    (f"{_NS}/activations/{{id}}/logs", "GET"): ns(P.READ_ACTIVATIONS),
    (f"{_NS}/activations/{{id}}/result", "GET"): ns(P.READ_ACTIVATIONS),
    # packages
    (f"{_NS}/packages", "GET"): ns(P.READ, shared=True),
    (f"{_NS}/packages/{{name}}", "GET"): ns(P.READ, shared=True),
    (f"{_NS}/packages/{{name}}", "PUT"): ns(P.WRITE),
    (f"{_NS}/packages/{{name}}", "DELETE"): ns(P.WRITE),
    # triggers
    (f"{_NS}/triggers", "GET"): ns(P.READ),
    (f"{_NS}/triggers/{{name}}", "GET"): ns(P.READ),
    (f"{_NS}/triggers/{{name}}", "PUT"): ns(P.WRITE),
    (f"{_NS}/triggers/{{name}}", "DELETE"): ns(P.WRITE),
    (f"{_NS}/triggers/{{name}}", "POST"): ns(P.INVOKE),
    # rules
    (f"{_NS}/rules", "GET"): ns(P.READ),
    (f"{_NS}/rules/{{name}}", "GET"): ns(P.READ),
    (f"{_NS}/rules/{{name}}", "PUT"): ns(P.WRITE),
    (f"{_NS}/rules/{{name}}", "DELETE"): ns(P.WRITE),
    (f"{_NS}/rules/{{name}}", "POST"): ns(P.WRITE),
    # the deploy gate: reports describe code; policies and advisories are the platform's
    (f"{_NS}/scans/{{name}}", "GET"): ns(P.READ_CODE),
    (f"{_NS}/scans/{{pkg}}/{{name}}", "GET"): ns(P.READ_CODE),
    (f"{_NS}/scanpolicy", "GET"): ns(P.READ),
    (f"{_NS}/scanpolicy", "PUT"): platform(P.ROLES),
    (f"{_NS}/scanpolicy", "DELETE"): platform(P.ROLES),
    ("/api/v1/admin/advisories", "GET"): platform(P.ROLES),
    ("/api/v1/admin/advisories", "POST"): platform(P.ROLES),
    ("/api/v1/admin/advisories/sync", "GET"): platform(P.ROLES),
    ("/api/v1/admin/advisories/sync", "POST"): platform(P.ROLES),
    # secrets
    (f"{_NS}/secrets", "GET"): ns(P.SECRETS),
    **{(f"{_NS}/secrets/{{name}}", m): ns(P.SECRETS) for m in ("GET", "PUT", "POST", "DELETE")},
    # roles, keys, namespace policy
    (f"{_NS}/roles", "GET"): ns(P.ROLES),
    (f"{_NS}/roles/{{subject}}", "PUT"): ns(P.ROLES),
    (f"{_NS}/roles/{{subject}}", "DELETE"): ns(P.ROLES),
    (f"{_NS}/keys", "GET"): ns(P.ROLES),
    (f"{_NS}/keys", "POST"): ns(P.ROLES),
    (f"{_NS}/keys/{{uuid}}", "DELETE"): ns(P.ROLES),
    (f"{_NS}/policy", "GET"): ns(P.READ),
    (f"{_NS}/policy", "PUT"): ns(P.ROLES),
    (f"{_NS}/policy/lint", "GET"): ns(P.READ),
    # audit
    (f"{_NS}/audit", "GET"): ns(P.AUDIT),
    (f"{_NS}/audit/verify", "GET"): ns(P.AUDIT),
    # monitoring: reading needs MONITOR (here or in the platform namespace), changing needs ROLES
    ("/metrics", "GET"): public("the metrics bearer token, or MONITOR in the platform namespace, checked by the route"),
    (f"{_NS}/events", "GET"): ns(P.MONITOR, or_platform=True),
    (f"{_NS}/alerts", "GET"): ns(P.MONITOR, or_platform=True),
    (f"{_NS}/alerts/deadletters", "GET"): ns(P.MONITOR, or_platform=True),
    (f"{_NS}/alerts/webhooks", "GET"): ns(P.MONITOR, or_platform=True),
    (f"{_NS}/alerts/webhooks", "POST"): ns(P.ROLES),
    (f"{_NS}/alerts/webhooks/{{id}}", "DELETE"): ns(P.ROLES),
    (f"{_NS}/alerts/rules", "GET"): ns(P.MONITOR, or_platform=True),
    (f"{_NS}/alerts/rules/{{id}}", "PUT"): ns(P.ROLES),
    (f"{_NS}/alerts/rules/{{id}}", "DELETE"): ns(P.ROLES),
    # API gateway management
    (f"{_NS}/apis", "GET"): ns(P.READ),
    (f"{_NS}/apis", "PUT"): ns(P.WRITE),
    (f"{_NS}/apis", "DELETE"): ns(P.WRITE),
    **{
        (f"{_APIMGMT}/{name}{ext}", method): own(permission)
        for name, method, permission in (
            ("getApi", "GET", P.READ),
            ("createApi", "POST", P.WRITE),
            ("deleteApi", "DELETE", P.WRITE),
        )
        for ext in ("", ".http")
    },
    # web actions and the gateway
    **{("/api/v1/web/{ns}/{pkg}/{action}", m): _WEB for m in _WEB_METHODS},
    **{("/api/v1/web/{ns}/{pkg}/{action}/{rest:path}", m): _WEB for m in _WEB_METHODS},
    **{("/api/gw/{rest:path}", m): _GATEWAY for m in _WEB_METHODS},
    # the web console
    **{
        (path, method): _CONSOLE
        for path, method in (
            ("/console", "GET"),
            ("/console/", "GET"),
            ("/console/static/{file}", "GET"),
            ("/console/login", "GET"),
            ("/console/login", "POST"),
            ("/console/logout", "POST"),
            (_CONSOLE_NS, "GET"),
            (f"{_CONSOLE_NS}/actions/{{name:path}}", "GET"),
            (f"{_CONSOLE_NS}/activations", "GET"),
            (f"{_CONSOLE_NS}/activations/{{id}}", "GET"),
            (f"{_CONSOLE_NS}/events", "GET"),
            (f"{_CONSOLE_NS}/alerts", "GET"),
            (f"{_CONSOLE_NS}/alerts/{{id}}", "GET"),
            (f"{_CONSOLE_NS}/alerts/{{id}}/ack", "POST"),
            (f"{_CONSOLE_NS}/audit", "GET"),
            (f"{_CONSOLE_NS}/audit/export", "GET"),
        )
    },
}
