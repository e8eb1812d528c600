"""Name forms typed by users and the REST paths built from them."""

from __future__ import annotations

import pytest

from stockade.cli.client import CliError
from stockade.cli.names import (
    QualifiedName,
    collection_path,
    parse_action_name,
    parse_entity_name,
    parse_namespace,
    parse_package_ref,
    segment,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", QualifiedName("_", "hello")),
        ("pkg/hello", QualifiedName("_", "hello", "pkg")),
        ("/guest/hello", QualifiedName("guest", "hello")),
        ("/guest/pkg/hello", QualifiedName("guest", "hello", "pkg")),
        ("guest/pkg/hello", QualifiedName("guest", "hello", "pkg")),
    ],
)
def test_parse_action_name_accepts_the_js_client_forms(text, expected):
    assert parse_action_name(text, "_") == expected


@pytest.mark.parametrize("text", ["", "/", "/guest", "a//b", "/a/b/c/d", "a/b/c/d", "hello/"])
def test_parse_action_name_rejects_other_forms_with_exit_2(text):
    with pytest.raises(CliError) as info:
        parse_action_name(text, "_")
    assert info.value.exit_code == 2


def test_parse_action_name_uses_the_default_namespace():
    assert parse_action_name("pkg/a", "guest").fqn == "/guest/pkg/a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("t", QualifiedName("_", "t")), ("/guest/t", QualifiedName("guest", "t"))],
)
def test_parse_entity_name_accepts_name_and_ns_name(text, expected):
    assert parse_entity_name(text, "_", "trigger") == expected


@pytest.mark.parametrize("text", ["pkg/t", "/guest/pkg/t", "/guest", ""])
def test_parse_entity_name_rejects_packaged_names(text):
    with pytest.raises(CliError, match="not a valid trigger name"):
        parse_entity_name(text, "_", "trigger")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("pkg", ("_", "pkg")), ("/guest", ("guest", None)), ("/guest/pkg", ("guest", "pkg"))],
)
def test_parse_package_ref(text, expected):
    assert parse_package_ref(text, "_") == expected


def test_parse_package_ref_rejects_deeper_paths():
    with pytest.raises(CliError):
        parse_package_ref("a/b", "_")


def test_parse_namespace_strips_one_leading_slash():
    assert parse_namespace("/whisk.system") == "whisk.system"
    assert parse_namespace("guest") == "guest"
    with pytest.raises(CliError):
        parse_namespace("/a/b")


def test_segments_are_percent_encoded():
    assert segment("a b&c/d@e") == "a%20b%26c%2Fd%40e"


def test_paths_encode_every_segment():
    name = QualifiedName("my ns", "do it", "p&q")
    assert name.path("actions") == "namespaces/my%20ns/actions/p%26q/do%20it"
    assert name.key == "p&q/do it"
    assert name.fqn == "/my ns/p&q/do it"
    assert collection_path("_", "rules") == "namespaces/_/rules"
