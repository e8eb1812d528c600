"""LiveClient: an app served by Stockade's hardened HTTP server on loopback, behind TestClient's API.

With ``STOCKADE_TEST_LIVE=1`` the ``api`` fixtures (tests/conftest.py) serve each test's app
this way, so a test package runs against a live server: real sockets, the real HTTP/1.1 parser,
and server-side errors logged instead of raised into the test (tests/security/test_live_server.py
runs tests/security so and reads the log).
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
import time
from dataclasses import replace
from typing import Any

import httpx
import uvicorn

from stockade.config import Settings
from stockade.edge.server import server_config


class LivePortal:
    """``TestClient.portal.call``: run a function (awaiting what it returns) on the server's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def call(self, fn: Any, *args: Any) -> Any:
        async def run() -> Any:
            result = fn(*args)
            return await result if inspect.isawaitable(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=60)


class LiveClient(httpx.Client):
    """An httpx client for ``app`` served on 127.0.0.1 by edge/server.py in a thread."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        base = Settings()
        settings = replace(base, api=replace(base.api, port=port))
        super().__init__(base_url=f"http://127.0.0.1:{port}", timeout=120)
        self.app = app
        self._server = uvicorn.Server(server_config(app, settings))
        self._thread = threading.Thread(target=self._server.run, name=f"live-{port}", daemon=True)
        self.portal: LivePortal | None = None

    def __enter__(self) -> LiveClient:
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.01)
        self.portal = LivePortal(self._server_loop())
        return self

    def _server_loop(self) -> asyncio.AbstractEventLoop:
        for server in self._server.servers:
            return server.get_loop()
        raise RuntimeError("the live server has no listening socket")

    def __exit__(self, *exc: object) -> None:
        self.close()
        self._server.should_exit = True
        self._thread.join(timeout=60)
