"""Fixtures for CLI tests: a recording fake API behind httpx.MockTransport, and a CLI runner."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from stockade.cli.main import run

UUID = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502"
KEY = "123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"
AUTH = f"{UUID}:{KEY}"
APIHOST = "http://api.test:3233"


@dataclass
class Call:
    """One request the fake API received."""

    method: str
    url: str
    path: str  # percent-encoded, without the query
    query: dict[str, str]
    body: Any
    headers: httpx.Headers


class FakeApi:
    """Answers queued responses in order (default 200 ``{}``) and records every request."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._replies: list[httpx.Response] = []

    def reply(
        self,
        status: int = 200,
        body: Any = None,
        *,
        text: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Queue the next response."""
        if text is not None:
            response = httpx.Response(status, text=text, headers=headers)
        elif body is None:
            response = httpx.Response(status, headers=headers)
        else:
            response = httpx.Response(status, json=body, headers=headers)
        self._replies.append(response)

    def error(self, status: int, message: str, request_id: str = "req-123") -> None:
        """Queue an OpenWhisk error envelope."""
        self.reply(status, {"error": message, "code": request_id}, headers={"X-Request-ID": request_id})

    def handler(self, request: httpx.Request) -> httpx.Response:
        """The MockTransport handler."""
        content = request.read()
        body = json.loads(content) if content else None
        path = request.url.raw_path.decode("ascii").split("?", 1)[0]
        self.calls.append(Call(request.method, str(request.url), path, dict(request.url.params), body, request.headers))
        if self._replies:
            return self._replies.pop(0)
        return httpx.Response(200, json={})

    @property
    def last(self) -> Call:
        """The most recent request."""
        assert self.calls, "no request was sent"
        return self.calls[-1]


@dataclass
class Result:
    """The outcome of one CLI run."""

    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        """stdout parsed as JSON."""
        return json.loads(self.out)


@dataclass
class FakeClock:
    """A clock whose sleeps advance time instantly."""

    now: float = 1_700_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def now_ms(self) -> int:
        return int(self.now * 1000)


def basic_auth(auth: str = AUTH) -> str:
    """The Authorization header value for ``auth``."""
    return "Basic " + base64.b64encode(auth.encode()).decode()


@pytest.fixture
def props_file(tmp_path, monkeypatch):
    """A wskprops file pointing at the fake API, selected through $WSK_CONFIG_FILE."""
    path = tmp_path / "wskprops"
    path.write_text(f"APIHOST={APIHOST}\nAUTH={AUTH}\n")
    monkeypatch.setenv("WSK_CONFIG_FILE", str(path))
    return path


@pytest.fixture
def api() -> FakeApi:
    """The recording fake API."""
    return FakeApi()


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock for poll."""
    return FakeClock()


@pytest.fixture
def cli(api, props_file, clock):
    """Run the CLI against the fake API: ``cli("action", "list")`` → Result."""

    def _run(*argv: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = run(list(argv), transport=httpx.MockTransport(api.handler), stdout=out, stderr=err, clock=clock)
        return Result(code, out.getvalue(), err.getvalue())

    return _run
