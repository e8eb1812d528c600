"""Store contract for the deploy gate: advisories, scan reports, deployed versions, scan policies.

Runs on every engine through the ``store`` fixture (SQLite always, PostgreSQL when available).
"""

from __future__ import annotations

from stockade.store import AdvisoryRecord, Put

INJECTION = "x'); DROP TABLE advisories;--"


def advisory(advisory_id, *packages, modified="2024-01-01T00:00:00Z", summary="s"):
    doc = {"id": advisory_id, "modified": modified, "summary": summary, "affected": []}
    return AdvisoryRecord(advisory_id, modified, doc, tuple(packages))


async def test_upsert_reports_created_updated_and_unchanged(store):
    first = await store.upsert_advisories(
        [advisory("A-1", ("PyPI", "requests")), advisory("A-2", ("npm", "lodash"), ("npm", "lodash"))], 10
    )
    assert (sorted(first.created), first.updated, first.unchanged) == (["A-1", "A-2"], (), ())
    second = await store.upsert_advisories(
        [advisory("A-1", ("PyPI", "requests")), advisory("A-2", ("npm", "lodash-es"), summary="changed")], 20
    )
    assert (second.created, second.updated, second.unchanged) == ((), ("A-2",), ("A-1",))
    assert await store.count_advisories() == 2
    # The update replaced the package keys.
    assert await store.find_advisories("npm", ["lodash"]) == []
    assert [d["id"] for d in await store.find_advisories("npm", ["lodash-es"])] == ["A-2"]


async def test_find_by_ecosystem_and_names_returns_each_advisory_once(store):
    await store.upsert_advisories(
        [
            advisory("B-2", ("PyPI", "django"), ("PyPI", "django-rest")),
            advisory("B-1", ("PyPI", "django")),
            advisory("B-3", ("npm", "django")),
        ],
        1,
    )
    docs = await store.find_advisories("PyPI", ["django", "django-rest", "django"])
    assert [d["id"] for d in docs] == ["B-1", "B-2"]
    assert await store.find_advisories("PyPI", []) == []
    assert await store.find_advisories("PyPI", [INJECTION]) == []
    names = [f"pkg-{i}" for i in range(1200)]  # more than one IN chunk
    await store.upsert_advisories([advisory("C-1", ("PyPI", "pkg-1150"))], 2)
    assert [d["id"] for d in await store.find_advisories("PyPI", names)] == ["C-1"]


async def test_a_batch_repeating_an_id_keeps_the_last_copy(store):
    outcome = await store.upsert_advisories([advisory("D-1", ("npm", "a")), advisory("D-1", ("npm", "b"))], 1)
    assert outcome.created == ("D-1",)
    assert [d["id"] for d in await store.find_advisories("npm", ["b"])] == ["D-1"]
    assert await store.find_advisories("npm", ["a"]) == []
    assert (await store.upsert_advisories([], 2)).created == ()


async def test_scan_reports_per_action_version(store):
    assert await store.get_scan_report("ns1", "hello", "0.0.1") is None
    await store.put_scan_report("ns1", "hello", "0.0.1", {"decision": "passed"}, 5)
    await store.put_scan_report("ns1", "hello", "0.0.2", {"decision": "accepted"}, 6)
    await store.put_scan_report("ns1", "hello", "0.0.1", {"decision": "passed", "rescanned": 7}, 7)
    assert await store.get_scan_report("ns1", "hello", "0.0.1") == {"decision": "passed", "rescanned": 7}
    assert (await store.get_scan_report("ns1", "hello", "0.0.2"))["decision"] == "accepted"
    assert await store.get_scan_report("ns2", "hello", "0.0.1") is None
    assert await store.get_scan_report("ns1", INJECTION, "0.0.1") is None


async def test_deployed_action_versions_page_in_key_order(store):
    writes = [
        Put(ns, name, collection, {"name": name, "version": version}, 1)
        for ns, name, collection, version in [
            ("b", "x", "actions", "0.0.3"),
            ("a", "pkg/z", "actions", "0.0.1"),
            ("a", "y", "actions", "0.0.2"),
            ("a", "pkg", "packages", "0.0.1"),
            ("a", "t", "triggers", "0.0.1"),
        ]
    ]
    await store.apply(writes)
    everything = await store.list_deployed_action_versions()
    assert [(r.namespace, r.name, r.version) for r in everything] == [
        ("a", "pkg/z", "0.0.1"),
        ("a", "y", "0.0.2"),
        ("b", "x", "0.0.3"),
    ]
    first = await store.list_deployed_action_versions(limit=2)
    rest = await store.list_deployed_action_versions(after=(first[-1].namespace, first[-1].name), limit=2)
    assert first + rest == everything
    assert await store.list_deployed_action_versions(after=("b", "x")) == []


async def test_scan_policies_set_read_and_reset(store):
    assert await store.get_scan_policy("ns1") is None
    await store.put_scan_policy("ns1", {"block": ["critical"], "warn": ["high"]}, 1)
    await store.put_scan_policy("ns1", {"block": ["critical", "high"], "warn": []}, 2)
    assert await store.get_scan_policy("ns1") == {"block": ["critical", "high"], "warn": []}
    assert await store.delete_scan_policy("ns1") is True
    assert await store.delete_scan_policy("ns1") is False
    assert await store.get_scan_policy("ns1") is None


async def test_advisory_sync_state_and_coverage(store):
    from stockade.store import AdvisorySync

    assert await store.advisory_coverage() == {}
    assert await store.list_advisory_sync() == []
    await store.upsert_advisories([advisory("C-1", ("PyPI", "requests")), advisory("C-2", ("PyPI", "idna"))], 100)
    await store.upsert_advisories([advisory("C-3", ("npm", "lodash"))], 200)
    assert await store.advisory_coverage() == {"PyPI": (2, 100), "npm": (1, 200)}
    await store.put_advisory_sync(AdvisorySync("PyPI", 500, "https://b/PyPI/all.zip", '"e1"', "", 2))
    await store.put_advisory_sync(AdvisorySync("PyPI", 700, "https://b/PyPI/all.zip", '"e2"', "Mon", 2))
    await store.put_advisory_sync(AdvisorySync("npm", 50, INJECTION, INJECTION, INJECTION, 1))
    assert [(s.ecosystem, s.synced, s.etag) for s in await store.list_advisory_sync()] == [
        ("PyPI", 700, '"e2"'),
        ("npm", 50, INJECTION),
    ]
    # The newest of the last sync and the last import.
    assert await store.advisory_coverage() == {"PyPI": (2, 700), "npm": (1, 200)}
