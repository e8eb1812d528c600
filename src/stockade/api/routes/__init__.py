"""One module per OpenWhisk resource; ``all_routes`` in matching order."""

from starlette.routing import BaseRoute

from stockade.api.routes import (
    access,
    actions,
    activations,
    apis,
    audit,
    info,
    monitoring,
    namespaces,
    packages,
    rules,
    scans,
    secrets,
    triggers,
    web,
)

__all__ = ["all_routes"]


def all_routes() -> list[BaseRoute]:
    """Every route of the API."""
    return [
        *info.routes,
        *namespaces.routes,
        *actions.routes,
        *activations.routes,
        *packages.routes,
        *triggers.routes,
        *rules.routes,
        *scans.routes,
        *secrets.routes,
        *access.routes,
        *audit.routes,
        *monitoring.routes,
        # Before web.routes: the OpenWhisk client's routes API lives under /api/v1/web/whisk.system/apimgmt.
        *apis.routes,
        *web.routes,
    ]
