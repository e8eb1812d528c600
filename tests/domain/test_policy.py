import pytest

from stockade.domain import ActionPolicy, fqn_matches, lint_policy, parse_policy
from stockade.errors import BadRequestError


@pytest.mark.parametrize(
    ("pattern", "fqn", "expected"),
    [
        ("/ns/pkg/a", "/ns/pkg/a", True),
        ("/ns/pkg/a", "/ns/pkg/b", False),
        ("/ns/pkg/*", "/ns/pkg/a", True),
        ("/ns/pkg/*", "/ns/pkg/sub/a", False),
        ("/ns/*", "/ns/a", True),
        ("/ns/*", "/ns/pkg/a", False),
        ("*", "/any/thing", True),
    ],
)
def test_fqn_patterns(pattern, fqn, expected):
    assert fqn_matches(pattern, fqn) is expected


def test_parse_policy_resolves_underscore_and_validates():
    policy = parse_policy({"invoke": ["/_/pkg/a", "*"], "egress": ["h:443"], "secrets": ["db"]}, "ns")
    assert policy.invoke == ("/ns/pkg/a", "*")
    assert policy.may_invoke("/ns/pkg/a")
    assert parse_policy(None, "ns") == ActionPolicy()
    for bad in ("x", {"invoke": "a"}, {"invoke": [""]}, {"invoke": ["relative"]}, {"unknown": []}, {"egress": [5]}):
        with pytest.raises(BadRequestError):
            parse_policy(bad, "ns")


def test_lint_flags_broad_and_useless_grants():
    findings = lint_policy(
        ActionPolicy(invoke=("*", "/ns/*", "/other/a"), egress=("*:443", "0.0.0.0/0"), secrets=("db*",)),
        "ns",
        provides_api_key=False,
    )
    text = "\n".join(findings)
    assert "'*' lets the action invoke every action" in text
    assert "covers a whole namespace" in text
    assert "reaches outside the namespace" in text
    assert "egress grant '*:443' is unrestricted" in text
    assert "egress grant '0.0.0.0/0' is unrestricted" in text
    assert "secrets grant 'db*' is a wildcard" in text
    assert lint_policy(ActionPolicy(), "ns", provides_api_key=True) == [
        "provide-api-key is set but the policy grants no invoke: the action's token can do nothing"
    ]
    assert lint_policy(ActionPolicy(invoke=("/ns/pkg/a",)), "ns", provides_api_key=True) == []
