"""OpenWhisk's result rules: success, application error, developer error, oversized results."""

from __future__ import annotations

import json

import pytest

from stockade.domain import ActivationStatus
from stockade.invoker import RunOutcome, classify_result


@pytest.mark.parametrize(
    ("result", "status", "body"),
    [
        ({"a": 1}, ActivationStatus.SUCCESS, {"a": 1}),
        ([1, 2], ActivationStatus.SUCCESS, [1, 2]),
        ({"error": "x", "more": 1}, ActivationStatus.APPLICATION_ERROR, {"error": "x"}),
        ({"error": None}, ActivationStatus.APPLICATION_ERROR, {"error": None}),
        (
            "text",
            ActivationStatus.DEVELOPER_ERROR,
            {"error": 'The action did not produce a valid JSON or JSON Array response: "text"'},
        ),
    ],
)
def test_classification(result, status, body):
    response = classify_result(result, frame_bytes=10, max_result_bytes=1000)
    assert response.status is status
    assert response.result == body


def test_result_at_the_limit_is_accepted():
    result = {"d": "x" * 10}
    size = len(json.dumps(result, separators=(",", ":")))
    response = classify_result(result, frame_bytes=size + 20, max_result_bytes=size)
    assert response.status is ActivationStatus.SUCCESS


def test_oversized_result_prefix_never_splits_a_character():
    result = {"d": "é" * 20}
    encoded = json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode()
    response = classify_result(result, frame_bytes=len(encoded) + 20, max_result_bytes=8)
    assert response.status is ActivationStatus.APPLICATION_ERROR
    # 8 bytes = '{"d":"' (6) + one 2-byte é.
    assert response.result == {
        "error": f"The action produced a response that exceeded the allowed length: {len(encoded)} > 8 bytes. "
        'The truncated response was: {"d":"é'
    }


def test_oversized_error_result_is_still_the_truncation_error():
    response = classify_result({"error": "y" * 50}, frame_bytes=100, max_result_bytes=20)
    assert response.result["error"].startswith("The action produced a response that exceeded the allowed length")


def test_duration_includes_init():
    from stockade.domain import ActivationResponse

    outcome = RunOutcome(ActivationResponse(ActivationStatus.SUCCESS, {}), [], 100, 160, 5, init_time_ms=40)
    assert outcome.duration_ms == 60
