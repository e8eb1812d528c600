"""The ASGI control plane: OpenWhisk REST resources over the services."""

from stockade.api.app import Platform, create_app

__all__ = ["Platform", "create_app"]
