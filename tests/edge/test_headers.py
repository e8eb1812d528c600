"""edge.headers: one set of secure headers, and vetting of action-controlled headers."""

import pytest

from stockade.edge import HSTS, HTML_CSP, check_action_headers, secure_headers


def test_secure_headers_fill_in_what_is_missing():
    added = dict(secure_headers([], content_type="application/json", https=False))
    assert added == {
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
    }


def test_a_response_keeps_its_own_values():
    added = dict(secure_headers(["x-frame-options", "cache-control"], content_type="", https=False))
    assert "x-frame-options" not in added
    assert "cache-control" not in added


def test_html_gets_a_csp_and_tls_gets_hsts():
    added = dict(secure_headers([], content_type="text/html; charset=UTF-8", https=True))
    assert added["content-security-policy"] == HTML_CSP
    assert added["strict-transport-security"] == HSTS


@pytest.mark.parametrize(
    "headers",
    [
        [("x-a", "1")],
        [("content-type", "text/html; charset=UTF-8"), ("set-cookie", "a=b; Path=/")],
        [("location", "https://example.com/x?y=1#z")],
        [("location", "http://example.com")],
        [("location", "/relative/path")],
        [("location", "relative")],
        [("location", "?q=1")],
        [("x-tab", "a\tb"), ("x-latin", "caf\xe9")],
    ],
)
def test_acceptable_action_headers(headers):
    assert check_action_headers(headers) is None


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ([("x-a", "1\r\nSet-Cookie: evil=1")], "control"),
        ([("x-a", "1\nx")], "control"),
        ([("x-a", "1\rx")], "control"),
        ([("x-a", "a\x00b")], "control"),
        ([("x-a", "a\x7fb")], "control"),
        ([("x-a", "snow\u2603")], "non-Latin-1"),
        ([("x a", "1")], "not a token"),
        ([("x-a\r\nx-b", "1")], "not a token"),
        ([("", "1")], "not a token"),
        ([("x:a", "1")], "not a token"),
        ([("location", "javascript:alert(1)")], "scheme"),
        ([("location", "JaVaScRiPt:alert(1)")], "scheme"),
        ([("location", "data:text/html,<script>")], "scheme"),
        ([("location", "java\tscript:alert(1)")], "whitespace"),
        ([("location", " javascript:alert(1)")], "whitespace"),
        ([("location", "vbscript:x")], "scheme"),
        ([(f"x-{i}", "v") for i in range(101)], "more than 100"),
        ([("x-a", "v" * 9000)], "longer than"),
    ],
)
def test_refused_action_headers(headers, why):
    reason = check_action_headers(headers)
    assert reason is not None
    assert why in reason
