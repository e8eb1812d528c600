"""Benchmark-only server: the standalone platform with authorization enforced or skipped.

``python authz_server.py PORT DATA_DIR on|off BACKEND``. Skipping the checks is possible only
through this script (the Platform's ``enforce_access``), never through settings.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path

import uvicorn

from stockade.api.app import Platform, create_app, default_store
from stockade.config import load_settings
from stockade.invoker import Invoker
from stockade.server import build_backend, write_wskprops


def main() -> None:
    port, data_dir, enforce, backend_name = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "on", sys.argv[4]
    settings = load_settings(env={"STOCKADE_DATA_DIR": str(data_dir), "STOCKADE_LOG_LEVEL": "warning"})
    settings = replace(
        settings,
        api=replace(settings.api, port=port),
        limits=replace(settings.limits, invocations_per_minute=10**9, concurrent_invocations=1000),
        invoker=replace(settings.invoker, sandbox_backend=backend_name),  # type: ignore[arg-type]
    )
    backend = build_backend(settings)
    invoker = Invoker.from_settings(settings, backend)

    async def boot(services):  # type: ignore[no-untyped-def]
        key = await services.namespaces.create("guest")
        write_wskprops(data_dir / "wskprops", settings.api.base_url, key.token, "guest")

    async def close() -> None:
        await invoker.close()
        await backend.close()

    platform = Platform(
        settings=settings,
        store=default_store(settings),
        runner=invoker,
        on_open=[boot],
        on_close=[close],
        enforce_access=enforce,
    )
    config = uvicorn.Config(create_app(platform), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
