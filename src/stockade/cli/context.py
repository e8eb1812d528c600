"""What every command receives (settings, client, output, clock) and the shared argparse plumbing."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from stockade.cli.client import Client
from stockade.cli.names import QualifiedName, parse_action_name, parse_entity_name
from stockade.cli.output import Output
from stockade.cli.props import Props

__all__ = [
    "Clock",
    "Context",
    "Handler",
    "Subparsers",
    "SystemClock",
    "add_command",
    "add_global_options",
    "add_global_options_to_commands",
    "add_group",
    "add_list_options",
    "list_params",
]

# argparse exposes no public name for the object ``add_subparsers`` returns.
Subparsers = argparse._SubParsersAction
Handler = Callable[["Context", argparse.Namespace], int]


class Clock(Protocol):
    """Time as commands see it; tests pass a fake so ``poll`` runs without sleeping."""

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for deadlines."""

    def now_ms(self) -> int:
        """Wall-clock epoch milliseconds, the unit of activation ``start`` and ``since``."""


class SystemClock:
    """The real clock."""

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        time.sleep(seconds)

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def now_ms(self) -> int:
        """``time.time()`` in milliseconds."""
        return int(time.time() * 1000)


@dataclass
class Context:
    """One CLI run: resolved settings, output streams, and injectable I/O for tests."""

    props: Props
    out: Output
    transport: httpx.BaseTransport | None = None
    clock: Clock = field(default_factory=SystemClock)
    _client: Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        """The REST client, created on first use (``up`` and ``--help`` never need one)."""
        if self._client is None:
            self._client = Client(
                self.props.base_url,
                self.props.auth,
                insecure=self.props.insecure,
                sign=self.props.sign,
                transport=self.transport,
                now_s=lambda: int(self.clock.now_ms() / 1000),
            )
        return self._client

    @property
    def namespace(self) -> str:
        """The default namespace for names without one (``_`` unless NAMESPACE is set)."""
        return self.props.namespace

    def action_name(self, text: str) -> QualifiedName:
        """Parse an action name against the default namespace."""
        return parse_action_name(text, self.namespace)

    def entity_name(self, text: str, noun: str) -> QualifiedName:
        """Parse a package, trigger or rule name against the default namespace."""
        return parse_entity_name(text, self.namespace, noun)

    def close(self) -> None:
        """Close the client if one was opened."""
        if self._client is not None:
            self._client.close()


def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Add the options every command accepts.

    The top-level parser owns the real defaults; leaf parsers add the same options with
    ``SUPPRESS`` defaults so ``stockade action list --json`` works without clobbering
    ``stockade --json action list``.
    """
    default_none = argparse.SUPPRESS if suppress else None
    default_false = argparse.SUPPRESS if suppress else False
    group = parser.add_argument_group("global options")
    group.add_argument("--apihost", default=default_none, metavar="HOST", help="API host (overrides APIHOST)")
    group.add_argument("--auth", default=default_none, metavar="UUID:KEY", help="credentials (overrides AUTH)")
    group.add_argument(
        "-i",
        "--insecure",
        action="store_true",
        default=default_false,
        help="skip TLS certificate verification (not recommended)",
    )
    group.add_argument(
        "--sign",
        action="store_true",
        default=default_false,
        help="sign requests with HMAC instead of sending the key (or SIGN=hmac in wskprops)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default_false,
        help="print raw JSON responses instead of tables",
    )


def add_command(
    subparsers: Subparsers[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    help_text: str,
) -> argparse.ArgumentParser:
    """Add a leaf command that runs ``handler``; ``build_parser`` adds the global options last."""
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    return parser


def add_global_options_to_commands(parser: argparse.ArgumentParser) -> None:
    """Give every leaf command the global options, after its own (so they read last in help)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                if child.get_default("handler") is not None:
                    add_global_options(child, suppress=True)
                else:
                    add_global_options_to_commands(child)


def add_group(
    subparsers: Subparsers[argparse.ArgumentParser], name: str, help_text: str
) -> Subparsers[argparse.ArgumentParser]:
    """Add a command group (``action``, ``rule``, ...) and return its verb subparsers."""
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    verbs: Subparsers[argparse.ArgumentParser] = parser.add_subparsers(
        dest=f"{name}_command", metavar="COMMAND", required=True
    )
    return verbs


def add_list_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--limit`` and ``--skip`` (the server allows 0..200 and ≥ 0)."""
    parser.add_argument("--limit", type=int, metavar="N", help="return at most N entities (server default 30)")
    parser.add_argument("--skip", type=int, metavar="N", help="skip the first N entities")


def list_params(args: argparse.Namespace) -> dict[str, str | int]:
    """Query parameters for ``--limit``/``--skip`` when given."""
    params: dict[str, str | int] = {}
    if args.limit is not None:
        params["limit"] = int(args.limit)
    if args.skip is not None:
        params["skip"] = int(args.skip)
    return params
