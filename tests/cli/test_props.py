"""wskprops parsing and the precedence of flags, file and defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.cli.props import (
    DEFAULT_APIHOST,
    Props,
    config_file_path,
    load_props,
    normalize_apihost,
    parse_props,
    read_props_file,
)


def test_parse_props_reads_key_value_lines():
    text = "APIHOST=https://example.com\nAUTH=u:k\nNAMESPACE=guest\n"
    assert parse_props(text) == {"APIHOST": "https://example.com", "AUTH": "u:k", "NAMESPACE": "guest"}


def test_parse_props_skips_comments_blanks_and_junk_and_trims():
    text = "# a comment\n\n  APIHOST = localhost:3233  \nnot a pair\n"
    assert parse_props(text) == {"APIHOST": "localhost:3233"}


def test_parse_props_splits_on_first_equals_only():
    """AUTH keys may contain '=' (base64-ish keys), so only the first '=' separates."""
    assert parse_props("AUTH=u:abc==\n") == {"AUTH": "u:abc=="}


def test_parse_props_strips_matching_quotes_and_last_key_wins():
    assert parse_props("AUTH='a:b'\nAUTH=\"c:d\"\nNAMESPACE=\"x'\n") == {"AUTH": "c:d", "NAMESPACE": "\"x'"}


def test_read_props_file_treats_a_missing_file_as_empty(tmp_path):
    assert read_props_file(tmp_path / "absent") == {}


def test_config_file_path_prefers_wsk_config_file():
    assert config_file_path({"WSK_CONFIG_FILE": "/etc/props", "HOME": "/home/u"}) == Path("/etc/props")


def test_config_file_path_falls_back_to_home_wskprops():
    assert config_file_path({"WSK_CONFIG_FILE": "", "HOME": "/home/u"}) == Path("/home/u/.wskprops")


def test_load_props_reads_the_file(tmp_path):
    path = tmp_path / "props"
    path.write_text("APIHOST=api.example.com\nAUTH=u:k\nNAMESPACE=guest\n")
    props = load_props(environ={"WSK_CONFIG_FILE": str(path)})
    assert (props.apihost, props.auth, props.namespace, props.insecure) == ("api.example.com", "u:k", "guest", False)
    assert props.source == path


def test_load_props_flags_override_the_file(tmp_path):
    path = tmp_path / "props"
    path.write_text("APIHOST=api.example.com\nAUTH=u:k\n")
    props = load_props(apihost="http://other:1", auth="x:y", insecure=True, environ={"WSK_CONFIG_FILE": str(path)})
    assert (props.apihost, props.auth, props.insecure) == ("http://other:1", "x:y", True)


def test_load_props_defaults_to_the_local_server(tmp_path):
    props = load_props(environ={"HOME": str(tmp_path)})
    assert props.apihost == DEFAULT_APIHOST == "http://127.0.0.1:3233"
    assert props.auth is None
    assert props.namespace == "_"


@pytest.mark.parametrize(
    ("apihost", "expected"),
    [
        ("localhost:3233", "https://localhost:3233"),
        ("http://localhost:3233/", "http://localhost:3233"),
        ("https://openwhisk.example.com", "https://openwhisk.example.com"),
        (" 10.0.0.1 ", "https://10.0.0.1"),
    ],
)
def test_normalize_apihost_keeps_an_explicit_scheme_and_defaults_to_https(apihost, expected):
    assert normalize_apihost(apihost) == expected


def test_props_base_url_appends_the_api_root():
    assert Props(apihost="localhost:3233").base_url == "https://localhost:3233/api/v1"


def test_props_repr_never_shows_the_key():
    assert "secret-key" not in repr(Props(auth="uuid:secret-key"))
