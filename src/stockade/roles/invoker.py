"""``stockade invoker``: hosts the sandboxes; takes runs from NATS JetStream, no HTTP API.

Reads actions (verified against their integrity stamps) and data keys from the store
(``store.url``), opens each run's sealed envelope in memory only, runs it in the local sandbox
backend and answers the controller that sent it. SIGTERM: stop fetching, finish the runs in
flight, leave the cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from stockade import server
from stockade.api.app import default_store
from stockade.cluster import InvokerWorker
from stockade.config import Settings
from stockade.domain import SystemClock
from stockade.invoker import EgressProxy, Invoker
from stockade.roles import process_id, role_settings
from stockade.sandbox import SandboxBackend
from stockade.services import build_services

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stockade invoker", description="Start a Stockade invoker (scale-out).")
    parser.add_argument("--config", type=Path, help="settings file (TOML)")
    parser.add_argument("--data-dir", type=Path, help="where local state lives (default ~/.stockade)")
    parser.add_argument("--store", help="a postgresql:// URL (or store.url in the settings)")
    parser.add_argument("--nats", help="nats://host:port of the NATS server (or nats.url in the settings)")
    parser.add_argument("--id", help="this invoker's id (or nats.process_id; default host name and pid)")
    parser.add_argument("--sandbox", choices=["linux", "insecure_process"], help="sandbox backend (default linux)")
    parser.add_argument("--log-format", choices=["json", "console"], default="console")
    # Options of `stockade up` that an invoker has no use for, so that one settings parser serves.
    parser.set_defaults(host=None, port=None, namespace=None, tls_cert=None, tls_key=None, self_signed=False)
    return parser


async def _run(settings: Settings, backend: SandboxBackend, invoker: Invoker, egress: EgressProxy | None) -> None:
    store = default_store(settings)
    await store.open()
    try:
        services = build_services(settings, store, invoker, SystemClock())
        await services.vault.verify()
        if egress is not None:
            egress.set_event_sink(services.monitoring.events)
        worker = InvokerWorker(
            settings.nats, process_id(settings, "invoker"), invoker, services.catalog, services.vault
        )
        await worker.start()
        print(f"stockade invoker {worker.invoker_id}: taking runs from {settings.nats.url}", file=sys.stderr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print(f"stockade invoker {worker.invoker_id}: draining", file=sys.stderr)
        await worker.stop()
    finally:
        await invoker.close()
        if egress is not None:
            await egress.close()
        await backend.close()
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run an invoker until SIGTERM."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    settings = role_settings(args, "invoker")
    if settings is None:
        return 2
    backend = server.start_backend(settings)
    if backend is None:
        return 2
    egress = EgressProxy() if settings.invoker.sandbox_backend != "insecure_process" else None
    invoker = Invoker.from_settings(settings, backend, egress=egress)
    asyncio.run(_run(settings, backend, invoker, egress))
    return 0


if __name__ == "__main__":
    sys.exit(main())
