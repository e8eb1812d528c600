"""Tags: validation at deploy, tolerant reading, and the bounded metric label set."""

from __future__ import annotations

import pytest

from stockade.errors import BadRequestError
from stockade.observability.tags import MAX_TAGS, OTHER_TAG, TagLabels, parse_tags, tags_of


def test_valid_tags_are_deduplicated_in_order():
    assert parse_tags(["payments", "edge", "payments", "v1.2_x-y"]) == ("payments", "edge", "v1.2_x-y")


@pytest.mark.parametrize(
    "raw",
    ["payments", [1], ["UPPER"], ["has space"], ["-lead"], ["x" * 49], [f"t{i}" for i in range(MAX_TAGS + 1)]],
)
def test_invalid_tags_are_refused(raw):
    with pytest.raises(BadRequestError):
        parse_tags(raw)


def test_stored_values_are_read_tolerantly():
    assert tags_of(["ok", "Not OK", 3]) == ("ok",)
    assert tags_of("ok") == ()


def test_the_label_set_is_capped_and_overflow_goes_to_other():
    labels = TagLabels(cap=2)
    assert [labels.label(t) for t in ("a", "b", "c", "a", "d")] == ["a", "b", OTHER_TAG, "a", OTHER_TAG]
