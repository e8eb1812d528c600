"""Tags on actions: the ``tags`` annotation (a list of short names), and bounded metric labels.

Tags group actions for operators: activations can be listed by tag (``?tag=``), invocation
metrics are labelled by tag, and alert rules can match tags. Because tags are chosen by users,
the metric label set is capped: the first ``cap`` distinct tags seen by a process keep their
name; later ones are counted under ``_other`` (docs/design/monitoring.md).
"""

from __future__ import annotations

import re
from typing import ClassVar, Final

from stockade.domain import JSON
from stockade.errors import BadRequestError

__all__ = ["MAX_TAGS", "OTHER_TAG", "TAGS_ANNOTATION", "TagLabels", "parse_tags", "tags_of"]

TAGS_ANNOTATION: Final = "tags"
MAX_TAGS: Final = 10
OTHER_TAG: Final = "_other"
_TAG = re.compile(r"\A[a-z0-9][a-z0-9._-]{0,47}\Z")


def parse_tags(raw: JSON) -> tuple[str, ...]:
    """Validate a ``tags`` annotation: at most 10 distinct lower-case names of up to 48 characters."""
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise BadRequestError(f"The annotation '{TAGS_ANNOTATION}' must be an array of strings.")
    tags = tuple(dict.fromkeys(t for t in raw if isinstance(t, str)))
    if len(tags) > MAX_TAGS:
        raise BadRequestError(f"The annotation '{TAGS_ANNOTATION}' allows at most {MAX_TAGS} tags.")
    for tag in tags:
        if not _TAG.match(tag):
            raise BadRequestError(
                f"Tag '{tag[:60]}' is not valid: use 1-48 characters a-z, 0-9, '.', '_' or '-', starting with a letter or digit."
            )
    return tags


def tags_of(raw: JSON) -> tuple[str, ...]:
    """The tags of a stored annotation value (validated at deploy; anything odd yields none)."""
    if not isinstance(raw, list):
        return ()
    return tuple(t for t in raw[:MAX_TAGS] if isinstance(t, str) and _TAG.match(t))


class TagLabels:
    """Maps tags to metric label values, keeping at most ``cap`` distinct names."""

    DEFAULT_CAP: ClassVar[int] = 50

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        self.cap = cap
        self._known: set[str] = set()

    def label(self, tag: str) -> str:
        """``tag`` while there is room (or it already has a label), else ``_other``."""
        if tag in self._known:
            return tag
        if len(self._known) < self.cap:
            self._known.add(tag)
            return tag
        return OTHER_TAG
