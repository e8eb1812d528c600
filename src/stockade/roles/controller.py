"""``stockade controller``: the REST API, web actions and gateway, dispatching runs to invokers.

Stateless: state is in the store (``store.url``, PostgreSQL) and runs go through NATS JetStream
(``nats.url``) to ``stockade invoker`` processes. Any number behind a load balancer.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

import structlog

from stockade import server
from stockade.cluster import DispatchRunner
from stockade.roles import process_id, role_settings
from stockade.services import Services

__all__ = ["main"]

log = structlog.get_logger("stockade.controller")

JANITOR_PERIOD_S: Final = 5.0


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the API with a JetStream dispatcher as the action runner."""
    parser = server.parser("stockade controller", "Start a Stockade controller (scale-out; runs go to invokers).")
    parser.add_argument("--nats", help="nats://host:port of the NATS server (or nats.url in the settings)")
    parser.add_argument("--id", help="this controller's id (or nats.process_id; default host name and pid)")
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    settings = role_settings(args, "controller")
    if settings is None:
        return 2
    controller_id = process_id(settings, "controller")
    # The id goes into every journal row this controller accepts (services read it from settings).
    settings = replace(settings, nats=replace(settings.nats, process_id=controller_id))
    dispatcher = DispatchRunner(settings.nats, controller_id)
    janitor: list[asyncio.Task[None]] = []

    async def connect(services: Services) -> None:
        await dispatcher.start(services.vault)
        janitor.append(asyncio.create_task(_janitor(services, dispatcher)))
        print(f"stockade controller {controller_id}: dispatching through {settings.nats.url}", file=sys.stderr)

    async def close() -> None:
        for task in janitor:
            task.cancel()
        await dispatcher.close()

    return server.serve(settings, args, dispatcher, on_open=[connect], on_close=[close])


async def _janitor(services: Services, dispatcher: DispatchRunner) -> None:
    """Recover the journal rows of controllers that are gone (and, at start, this one's earlier life).

    A controller's rows are left alone while its heartbeat key lives; once it has expired, the
    non-blocking ones run again under their ids (at least once) and the blocking ones are closed
    as internal errors (at most once), exactly as a standalone restart does.
    """
    first = True
    while True:
        try:
            try:
                live = set(await dispatcher.live_controllers())
            except Exception:
                # Not knowing who is alive is not "nobody is": recover nothing this round.
                log.warning("controller.membership_unavailable")
                await asyncio.sleep(JANITOR_PERIOD_S)
                continue
            if first:
                live.discard(dispatcher.controller_id)
            else:
                live.add(dispatcher.controller_id)
            counts = await services.invoke.recover(live_owners=frozenset(live))
            if counts["rerun"] or counts["closed"] or first:
                log.info("controller.recovered", live=sorted(live), **counts)
            first = False
        except Exception:
            log.exception("controller.janitor_failed")
        await asyncio.sleep(JANITOR_PERIOD_S)


if __name__ == "__main__":
    sys.exit(main())
