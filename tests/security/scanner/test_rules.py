"""Scanner policy files are validated on load."""

import json
import shutil
from importlib import resources

import pytest

from stockade.security.scanner import RulesError, load_rulebook


@pytest.fixture
def rules_dir(tmp_path):
    source = resources.files("stockade.security.scanner") / "rules"
    target = tmp_path / "rules"
    target.mkdir()
    for entry in source.iterdir():
        if entry.name.endswith(".json"):
            (target / entry.name).write_text(entry.read_text())
    return target


def rewrite(folder, name, change):
    data = json.loads((folder / name).read_text())
    change(data)
    (folder / name).write_text(json.dumps(data))


def test_the_packaged_rules_load_and_every_rule_has_a_reason(rules_dir):
    book = load_rulebook(rules_dir)
    assert "dependency.vulnerable" in book.rules
    assert all(len(rule.reason) >= 10 for rule in book.rules.values())


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("rules.json", lambda d: d["rules"][0].update(severity="urgent"), "invalid at rules/0/severity"),
        ("rules.json", lambda d: d["rules"][0].pop("reason"), "'reason' is a required property"),
        ("rules.json", lambda d: d["rules"].append(dict(d["rules"][0])), "twice"),
        ("bandit.json", lambda d: d["tests"][0].pop("ignore"), "invalid"),
        ("bandit.json", lambda d: d["fallback"].update(rule="py.nope"), "unknown rule 'py.nope'"),
        ("javascript.json", lambda d: d["eslint"][0].update(message_pattern="("), "regular expression"),
        ("secrets.json", lambda d: d["parameter_keys"].update(pattern="["), "regular expression"),
        ("limits.json", lambda d: d["limits"].pop("max_entries"), "missing ['max_entries']"),
        ("limits.json", lambda d: d["limits"]["max_entries"].update(value=0), "invalid"),
        ("policy.json", lambda d: d["egress_annotations"].update(values=[]), "invalid"),
    ],
)
def test_invalid_rules_fail_loudly_on_load(rules_dir, name, change, message):
    rewrite(rules_dir, name, change)
    with pytest.raises(RulesError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        load_rulebook(rules_dir)


def test_a_missing_or_unreadable_rules_file_fails_loudly(rules_dir):
    (rules_dir / "bandit.json").write_text("{not json")
    with pytest.raises(RulesError, match="cannot read scanner rules bandit.json"):
        load_rulebook(rules_dir)
    shutil.rmtree(rules_dir)
    with pytest.raises(RulesError, match="cannot read"):
        load_rulebook(rules_dir)
