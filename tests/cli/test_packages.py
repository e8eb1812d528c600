"""`stockade package ...`: create, update, bind, get, list, delete."""

from __future__ import annotations

import pytest

PACKAGES = "/api/v1/namespaces/_/packages"


def test_create_sends_parameters_annotations_and_shared(cli, api):
    result = cli("package", "create", "utils", "-p", "region", "eu", "-a", "description", "tools", "--shared", "yes")
    assert result.out == "ok: created package utils\n"
    assert (api.last.method, api.last.path, api.last.query) == ("PUT", f"{PACKAGES}/utils", {})
    assert api.last.body == {
        "parameters": [{"key": "region", "value": "eu"}],
        "annotations": [{"key": "description", "value": "tools"}],
        "publish": True,
    }


def test_update_overwrites_and_sends_only_given_fields(cli, api):
    result = cli("package", "update", "/guest/utils", "--shared", "no")
    assert result.out == "ok: updated package /guest/utils\n"
    assert (api.last.path, api.last.query) == ("/api/v1/namespaces/guest/packages/utils", {"overwrite": "true"})
    assert api.last.body == {"publish": False}


def test_create_with_nothing_sends_an_empty_body(cli, api):
    cli("package", "create", "p")
    assert api.last.body == {}


@pytest.mark.parametrize(
    ("source", "binding"),
    [
        ("/whisk.system/utils", {"namespace": "whisk.system", "name": "utils"}),
        ("utils", {"namespace": "_", "name": "utils"}),
    ],
)
def test_bind_puts_a_binding(cli, api, source, binding):
    result = cli("package", "bind", source, "myutils", "-p", "x", "1")
    assert result.out == "ok: created binding myutils\n"
    assert (api.last.method, api.last.path, api.last.query) == ("PUT", f"{PACKAGES}/myutils", {})
    assert api.last.body == {"parameters": [{"key": "x", "value": 1}], "binding": binding}


def test_bind_to_missing_package_exits_2(cli, api):
    api.error(400, "Binding references a package that does not exist.", "rb")
    result = cli("package", "bind", "nope", "b")
    assert result.code == 2
    assert result.err == "error: Binding references a package that does not exist. (code: rb)\n"


PACKAGE = {
    "namespace": "guest",
    "name": "myutils",
    "version": "0.0.1",
    "publish": False,
    "binding": {"namespace": "whisk.system", "name": "utils"},
    "parameters": [{"key": "x", "value": 1}],
    "annotations": [],
    "actions": [{"name": "cat"}, {"name": "sort"}],
    "feeds": [],
    "updated": 1700000000000,
}


def test_get_prints_a_summary(cli, api):
    api.reply(200, PACKAGE)
    result = cli("package", "get", "myutils")
    assert (api.last.method, api.last.path) == ("GET", f"{PACKAGES}/myutils")
    assert result.out.splitlines() == [
        "package /guest/myutils",
        "  version:     0.0.1",
        "  updated:     2023-11-14 22:13:20",
        "  shared:      no",
        "  binding:     /whisk.system/utils",
        "  parameters:  x=1",
        "  annotations: (none)",
        "  actions:     cat, sort",
        "  feeds:       (none)",
    ]


def test_get_json(cli, api):
    api.reply(200, PACKAGE)
    assert cli("--json", "package", "get", "myutils").json == PACKAGE


def test_list_prints_visibility_and_binding(cli, api):
    api.reply(
        200,
        [
            {"namespace": "guest", "name": "a", "publish": True, "binding": False, "version": "0.0.1", "updated": 0},
            {"namespace": "guest", "name": "b", "publish": False, "version": "0.0.2", "updated": 0,
             "binding": {"namespace": "whisk.system", "name": "utils"}},
        ],
    )  # fmt: skip
    result = cli("package", "list", "--limit", "50")
    assert (api.last.path, api.last.query) == (PACKAGES, {"limit": "50"})
    assert result.out.splitlines() == [
        "NAME      VISIBILITY  BINDING              VERSION  UPDATED",
        "/guest/a  shared                           0.0.1    1970-01-01 00:00:00",
        "/guest/b  private     /whisk.system/utils  0.0.2    1970-01-01 00:00:00",
    ]


def test_list_of_another_namespace(cli, api):
    api.reply(200, [])
    cli("package", "list", "/whisk.system")
    assert api.last.path == "/api/v1/namespaces/whisk.system/packages"


@pytest.mark.parametrize(("flags", "query"), [([], {}), (["--force"], {"force": "true"})])
def test_delete(cli, api, flags, query):
    result = cli("package", "delete", "utils", *flags)
    assert (api.last.method, api.last.path, api.last.query) == ("DELETE", f"{PACKAGES}/utils", query)
    assert result.out == "ok: deleted package utils\n"


def test_delete_non_empty_exits_5(cli, api):
    api.error(409, "Package not empty (contains 1 entity). Set force param or delete package contents.")
    assert cli("package", "delete", "utils").code == 5


def test_packaged_names_are_refused(cli, api):
    assert cli("package", "get", "a/b").code == 2
    assert api.calls == []


def test_list_json(cli, api):
    api.reply(200, [PACKAGE])
    assert cli("package", "list", "--json").json == [PACKAGE]
