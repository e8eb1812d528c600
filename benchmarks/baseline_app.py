"""Benchmark baseline: the same trivial function called in-process behind a minimal ASGI
endpoint, served by the same stack as Stockade (uvicorn + Starlette)."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def main(args: dict) -> dict:
    """The benchmark action's body."""
    return {"greeting": "hello " + str(args.get("name", "world"))}


async def invoke(request: Request) -> Response:
    body = await request.body()
    args = json.loads(body) if body else {}
    return Response(json.dumps(main(args), separators=(",", ":")), media_type="application/json")


app = Starlette(routes=[Route("/invoke", invoke, methods=["POST"])])
