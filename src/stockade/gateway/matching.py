"""Matching a request path to a namespace's routes: literal segments before ``{param}`` ones.

A route matches when its template (base path + relative path) has as many segments as the
request path and every literal segment is equal (case-sensitive); parameters take whole,
non-empty segments. Among matches the most literal wins, earlier segments first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import final

from stockade.domain import ApiRoute

__all__ = ["RouteMatch", "RouteTable"]


@final
@dataclass(frozen=True, slots=True)
class RouteMatch:
    """A route and the values of its path parameters; ``rel_path`` is the request's own."""

    route: ApiRoute
    params: dict[str, str]
    rel_path: str


@final
@dataclass(frozen=True, slots=True)
class _Compiled:
    route: ApiRoute
    # Per segment: the literal, or None for a parameter (whose name is in ``names``).
    literals: tuple[str | None, ...]
    names: tuple[str, ...]
    base_length: int


def _compile(route: ApiRoute) -> _Compiled:
    template = route.template
    literals = tuple(None if s.startswith("{") else s for s in template)
    names = tuple(s[1:-1] for s in template if s.startswith("{"))
    return _Compiled(route, literals, names, len([s for s in route.base_path.split("/") if s]))


class RouteTable:
    """The routes of one namespace, ready to match."""

    def __init__(self, routes: Sequence[ApiRoute]) -> None:
        compiled = [_compile(r) for r in routes]
        # Most literal first: a parameter sorts after a literal at the same position.
        compiled.sort(key=lambda c: tuple(0 if s is not None else 1 for s in c.literals))
        self._by_length: dict[int, list[_Compiled]] = {}
        for entry in compiled:
            self._by_length.setdefault(len(entry.literals), []).append(entry)

    def _candidates(self, segments: Sequence[str]) -> list[_Compiled]:
        return [
            entry
            for entry in self._by_length.get(len(segments), ())
            if all(lit is None or lit == seg for lit, seg in zip(entry.literals, segments, strict=True))
        ]

    def match(self, segments: Sequence[str], verb: str) -> RouteMatch | None:
        """The best route for ``segments`` (percent-decoded) and ``verb``, or None."""
        for entry in self._candidates(segments):
            if entry.route.verb != verb:
                continue
            values = [seg for lit, seg in zip(entry.literals, segments, strict=True) if lit is None]
            rel = "/" + "/".join(segments[entry.base_length :])
            return RouteMatch(entry.route, dict(zip(entry.names, values, strict=True)), rel)
        return None

    def verbs(self, segments: Sequence[str]) -> list[str]:
        """The verbs some route accepts at ``segments`` (empty: no route has this path)."""
        return sorted({entry.route.verb for entry in self._candidates(segments)})
