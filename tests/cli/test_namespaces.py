"""`stockade namespace ...`: list, and get via the four list calls."""

from __future__ import annotations


def test_list(cli, api):
    api.reply(200, ["guest"])
    result = cli("namespace", "list")
    assert (api.last.method, api.last.path) == ("GET", "/api/v1/namespaces")
    assert result.out == "NAMESPACE\nguest\n"


def test_list_json(cli, api):
    api.reply(200, ["guest"])
    assert cli("namespace", "list", "--json").json == ["guest"]


def _queue_contents(api):
    api.reply(200, [{"namespace": "guest", "name": "utils", "publish": True}])
    api.reply(200, [{"namespace": "guest/utils", "name": "cat", "publish": False}])
    api.reply(200, [])
    api.reply(200, [{"namespace": "guest", "name": "r1"}])


def test_get_lists_the_four_collections(cli, api):
    _queue_contents(api)
    result = cli("namespace", "get")
    assert [(c.method, c.path, c.query) for c in api.calls] == [
        ("GET", f"/api/v1/namespaces/_/{collection}", {"limit": "200"})
        for collection in ("packages", "actions", "triggers", "rules")
    ]
    assert result.out.splitlines() == [
        "Entities in namespace: guest",
        "packages",
        "  /guest/utils  shared",
        "actions",
        "  /guest/utils/cat  private",
        "triggers",
        "rules",
        "  /guest/r1  private",
    ]


def test_get_json_combines_the_lists(cli, api):
    _queue_contents(api)
    result = cli("--json", "namespace", "get", "/guest")
    assert api.calls[0].path == "/api/v1/namespaces/guest/packages"
    assert set(result.json) == {"packages", "actions", "triggers", "rules"}
    assert result.json["triggers"] == []


def test_get_of_an_empty_namespace_keeps_the_underscore(cli, api):
    for _ in range(4):
        api.reply(200, [])
    assert cli("namespace", "get").out.splitlines()[0] == "Entities in namespace: _"
