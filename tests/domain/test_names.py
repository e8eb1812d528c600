import pytest

from stockade.domain import (
    EntityPath,
    is_valid_name,
    parse_activation_id,
    parse_fqn,
    validate_entity_name,
    validate_namespace,
)
from stockade.errors import BadRequestError


@pytest.mark.parametrize("name", ["a", "hello", "a b", "a&b", "x@y.z", "a-b", "_x", "a" * 256])
def test_valid_names(name):
    assert is_valid_name(name)


@pytest.mark.parametrize("name", ["", " a", "a ", "a!b", "a/b", "-a", "é", "a" * 257, "a\nb"])
def test_invalid_names(name):
    assert not is_valid_name(name)


def test_entity_name_errors_use_openwhisk_messages():
    with pytest.raises(BadRequestError, match="The name of the entity contains illegal characters."):
        validate_entity_name("a!b")
    with pytest.raises(BadRequestError, match=r"Name segement longer than allowed: 257 > 256."):
        validate_entity_name("a" * 257)
    with pytest.raises(BadRequestError, match="The namespace contains illegal characters."):
        validate_namespace("a b ")
    with pytest.raises(BadRequestError, match=r"Namespace longer than allowed: 300 > 256."):
        validate_namespace("n" * 300)
    assert validate_namespace("guest") == "guest"


def test_activation_ids():
    assert parse_activation_id("a" * 32) == "a" * 32
    with pytest.raises(BadRequestError, match="Activation id length is 3 but must be 32."):
        parse_activation_id("abc")
    with pytest.raises(BadRequestError, match="The activation id is not valid."):
        parse_activation_id("A" * 32)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", EntityPath("me", "hello")),
        ("pkg/hello", EntityPath("me", "hello", "pkg")),
        ("/ns/hello", EntityPath("ns", "hello")),
        ("/ns/pkg/hello", EntityPath("ns", "hello", "pkg")),
        ("ns/pkg/hello", EntityPath("ns", "hello", "pkg")),
        ("/_/hello", EntityPath("me", "hello")),
    ],
)
def test_parse_fqn(text, expected):
    assert parse_fqn(text, "me") == expected


@pytest.mark.parametrize("text", ["", "/", "/ns", "a//b", "/a/b/c/d", "/ns/a!"])
def test_parse_fqn_rejects(text):
    with pytest.raises(BadRequestError):
        parse_fqn(text, "me")


def test_entity_path_forms():
    path = EntityPath("ns", "act", "pkg")
    assert path.path == "ns/pkg"
    assert path.key == "pkg/act"
    assert path.fqn == "/ns/pkg/act"
    assert path.relative == "ns/pkg/act"
    assert str(path) == "/ns/pkg/act"
    plain = EntityPath("ns", "act")
    assert (plain.path, plain.key, plain.fqn) == ("ns", "act", "/ns/act")
