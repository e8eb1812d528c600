"""``stockade controller``: the REST API, web actions and gateway, dispatching runs to invokers.

Stateless: state is in the store (``store.url``, PostgreSQL) and runs go through NATS JetStream
(``nats.url``) to ``stockade invoker`` processes. Any number behind a load balancer.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stockade import server
from stockade.cluster import DispatchRunner
from stockade.roles import process_id
from stockade.services import Services

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the API with a JetStream dispatcher as the action runner."""
    parser = server.parser("stockade controller", "Start a Stockade controller (scale-out; runs go to invokers).")
    parser.add_argument("--nats", help="nats://host:port of the NATS server (or nats.url in the settings)")
    parser.add_argument("--id", help="this controller's id (or nats.process_id; default host name and pid)")
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    settings = server.prepare(args)
    if settings is None:
        return 2
    if not settings.nats.url:
        print("stockade controller: nats.url (or --nats) is required", file=sys.stderr)
        return 2
    if settings.store.url == "sqlite":
        print(
            "stockade controller: WARNING: store.url is sqlite; controllers and invokers on other hosts need "
            "PostgreSQL (store.url = postgresql://...)",
            file=sys.stderr,
        )
    dispatcher = DispatchRunner(settings.nats, process_id(settings, "controller"))

    async def connect(services: Services) -> None:
        await dispatcher.start(services.vault)
        print(
            f"stockade controller {dispatcher.controller_id}: dispatching through {settings.nats.url}", file=sys.stderr
        )

    return server.serve(settings, args, dispatcher, on_open=[connect], on_close=[dispatcher.close])


if __name__ == "__main__":
    sys.exit(main())
