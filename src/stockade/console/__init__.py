"""The web console: ``/console``, server-rendered pages over the services (docs/design/console.md).

An edge like ``api`` and ``gateway``: it calls services, never the store; composed into the app
by server.py through ``Platform.routes``.
"""

from stockade.console.http import console_routes

__all__ = ["console_routes"]
