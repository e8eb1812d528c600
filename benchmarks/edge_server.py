"""Benchmark-only: serve an app on one HTTP server candidate (docs/design/http-edge.md).

``python edge_server.py APP CANDIDATE PORT [DATA_DIR]``: APP is ``baseline`` (baseline_app.py)
or ``stockade`` (the platform with the in-process runner, so the sandbox is not measured);
CANDIDATE is one of ``CANDIDATES``. ``stockade`` runs only on ``h11`` (how the starting commit
served, uvicorn's pure-Python parser) and ``hardened`` (edge/server.py, what Stockade serves on).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvicorn

CANDIDATES = ("h11", "httptools", "httptools-uvloop", "hardened", "hardened-uvloop", "granian", "hypercorn")


def _stockade_app(port: int, data_dir: Path) -> tuple[Any, Any]:
    from stockade.api.app import Platform, create_app, default_store
    from stockade.config import load_settings
    from stockade.server import write_wskprops
    from stockade.testing import InProcessRunner

    settings = load_settings(env={"STOCKADE_DATA_DIR": str(data_dir), "STOCKADE_LOG_LEVEL": "warning"})
    settings = replace(
        settings,
        api=replace(settings.api, port=port),
        limits=replace(settings.limits, invocations_per_minute=10**9, concurrent_invocations=10**6),
    )

    async def boot(services: Any) -> None:
        key = await services.namespaces.create("guest")
        write_wskprops(data_dir / "wskprops", settings.api.base_url, key.token, "guest")

    platform = Platform(settings=settings, store=default_store(settings), runner=InProcessRunner(), on_open=[boot])
    return create_app(platform), settings


def main() -> None:
    app_name, candidate, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if candidate not in CANDIDATES:
        raise SystemExit(f"unknown candidate {candidate}")
    if app_name == "stockade":
        app, settings = _stockade_app(port, Path(sys.argv[4]))
    else:
        from stockade.config import Settings

        from baseline_app import app

        base = Settings()
        settings = replace(base, api=replace(base.api, port=port))
    loop = "uvloop" if candidate.endswith("-uvloop") else "asyncio"
    if candidate.startswith("hardened"):
        from stockade.edge.server import server_config

        config = server_config(app, settings)
        config.loop = loop
        uvicorn.Server(config).run()
    elif candidate in ("h11", "httptools", "httptools-uvloop"):
        http = "h11" if candidate == "h11" else "httptools"
        uvicorn.run(app, host="127.0.0.1", port=port, http=http, loop=loop, log_level="warning", access_log=False)
    elif candidate == "hypercorn":
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.loglevel = "WARNING"
        asyncio.run(serve(app, config))  # type: ignore[arg-type]
    else:
        from granian.constants import Interfaces
        from granian.server import Server

        target = "baseline_app:app" if app_name == "baseline" else None
        if target is None:
            raise SystemExit("granian serves the baseline app only here")
        Server(target, address="127.0.0.1", port=port, interface=Interfaces.ASGI, log_enabled=False).serve()


if __name__ == "__main__":
    main()
