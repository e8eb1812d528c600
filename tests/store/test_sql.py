"""The Store contract, run against SqlStore over every engine (SQLite always, PostgreSQL when marked)."""

from __future__ import annotations

import asyncio
from importlib import resources

import pytest

from stockade.domain import Activation, ActivationResponse, ActivationStatus, KeyValue, Namespace
from stockade.errors import ConflictError, StoreError
from stockade.store import ActivationQuery, Delete, KeyRecord, Put, SqlStore

CONCURRENT = "Concurrent modification to resource detected."
EXISTS = "resource already exists"
INJECTION = "x'); DROP TABLE entities;--"


def put(name, *, ns="ns1", collection="actions", updated=1, rev=None, doc=None):
    return Put(ns, name, collection, doc if doc is not None else {"name": name}, updated, rev)


def activation(n, *, ns="ns1", path="ns1/hello", start=1_000, name="hello"):
    return Activation(
        activation_id=f"{n:032x}",
        namespace=ns,
        subject="alice",
        name=name,
        version="0.0.1",
        start=start,
        end=start + 5,
        response=ActivationResponse(ActivationStatus.SUCCESS, {"n": n}),
        logs=("line 1", "line 2"),
        annotations=(KeyValue("kind", "python:3"),),
        cause=None,
        entity_path=path,
        extra={"waitTime": 3},
    )


async def warm_up(store):
    """Open enough pooled connections that the racing calls below really overlap."""
    await asyncio.gather(*(store.get_code("warm-up") for _ in range(6)))


def names(entities):
    return [e.name for e in entities]


def migration_versions(dialect: str) -> list[int]:
    folder = resources.files("stockade.store") / "migrations" / dialect
    return sorted(int(p.name.split("_", 1)[0]) for p in folder.iterdir() if p.name.endswith(".sql"))


# Migrations.


async def test_opening_twice_migrates_once_and_keeps_data(make_store, engine):
    first = await make_store()
    await first.create_namespace(Namespace("ns1", "uuid-1", 5))
    await first.close()

    second = await make_store()

    assert await second.get_namespace("ns1") == Namespace("ns1", "uuid-1", 5)
    rows = await second._db.fetchall("SELECT version FROM schema_migrations ORDER BY version")
    assert [r[0] for r in rows] == migration_versions(second._db.dialect)


async def test_a_failed_script_rolls_back_and_leaves_the_store_usable(store: SqlStore):
    with pytest.raises(StoreError) as caught:
        await store._db.executescript("CREATE TABLE scratch (x INTEGER); SELECT * FROM no_such_table;")

    assert "no_such_table" not in caught.value.message
    await store.create_namespace(Namespace("ns1", "uuid-1"))
    assert await store.get_namespace("ns1") is not None
    with pytest.raises(StoreError):  # the CREATE TABLE was rolled back with the failed statement
        await store._db.fetchone("SELECT COUNT(*) FROM scratch")


# Namespaces and keys.


async def test_namespaces_are_created_read_and_listed_by_name(store: SqlStore):
    await store.create_namespace(Namespace("zeta", "u-z", 2))
    await store.create_namespace(Namespace("alpha", "u-a", 1))

    assert await store.get_namespace("alpha") == Namespace("alpha", "u-a", 1)
    assert await store.get_namespace("missing") is None
    assert [n.name for n in await store.list_namespaces()] == ["alpha", "zeta"]


@pytest.mark.parametrize("duplicate", [Namespace("alpha", "u-other"), Namespace("other", "u-a")])
async def test_a_namespace_with_a_taken_name_or_uuid_conflicts(store: SqlStore, duplicate):
    await store.create_namespace(Namespace("alpha", "u-a"))

    with pytest.raises(ConflictError) as caught:
        await store.create_namespace(duplicate)

    assert caught.value.message == EXISTS
    assert [n.name for n in await store.list_namespaces()] == ["alpha"]


async def test_keys_are_stored_read_and_revoked_once(store: SqlStore):
    await store.create_namespace(Namespace("ns1", "u-1"))
    key = KeyRecord("key-1", b"\x00\xffhash", "alice", "ns1", 10)
    await store.put_key(key)
    await store.put_key(KeyRecord("key-2", b"h2", "alice", "ns1", 11))  # the subject exists by now

    assert await store.get_key("key-1") == key
    assert await store.get_key("missing") is None
    assert await store.revoke_key("key-1", 20) is True
    assert await store.revoke_key("key-1", 30) is False
    assert await store.revoke_key("missing", 30) is False
    assert (await store.get_key("key-1")).revoked == 20
    assert (await store.get_key("key-2")).revoked is None


async def test_a_key_with_a_taken_uuid_conflicts(store: SqlStore):
    await store.create_namespace(Namespace("ns1", "u-1"))
    await store.put_key(KeyRecord("key-1", b"h", "alice", "ns1", 10))

    with pytest.raises(ConflictError) as caught:
        await store.put_key(KeyRecord("key-1", b"other", "bob", "ns1", 11))

    assert caught.value.message == EXISTS
    assert (await store.get_key("key-1")).key_hash == b"h"


async def test_a_key_for_an_unknown_namespace_is_refused_without_a_conflict(store: SqlStore):
    with pytest.raises(StoreError):
        await store.put_key(KeyRecord("key-1", b"h", "alice", "nowhere", 10))

    assert await store.get_key("key-1") is None


async def test_keys_for_one_new_subject_can_be_stored_concurrently(store: SqlStore):
    """The subject is created on first use, and racing first uses do not conflict."""
    await store.create_namespace(Namespace("ns1", "u-1"))
    await warm_up(store)

    await asyncio.gather(*(store.put_key(KeyRecord(f"key-{i}", b"h", "carol", "ns1", i)) for i in range(6)))

    assert all([await store.get_key(f"key-{i}") for i in range(6)])


# Entities.


async def test_entities_are_created_then_updated_with_the_revision_read(store: SqlStore):
    assert await store.apply([put("a", updated=1, doc={"v": 1})]) == [1]
    created = await store.get_entity("ns1", "a")
    assert (created.collection, created.revision, created.updated, created.doc) == ("actions", 1, 1, {"v": 1})

    assert await store.apply([put("a", updated=2, rev=1, doc={"v": 2})]) == [2]

    updated = await store.get_entity("ns1", "a")
    assert (updated.revision, updated.updated, updated.doc) == (2, 2, {"v": 2})
    assert await store.get_entity("ns1", "missing") is None


@pytest.mark.parametrize(
    "write",
    [put("a", updated=3, rev=1), Delete("ns1", "a", 1), put("missing", rev=1), Delete("ns1", "missing", 1)],
    ids=["stale-update", "stale-delete", "update-missing", "delete-missing"],
)
async def test_a_write_guarded_by_a_stale_revision_conflicts(store: SqlStore, write):
    await store.apply([put("a")])
    await store.apply([put("a", updated=2, rev=1, doc={"v": 2})])

    with pytest.raises(ConflictError) as caught:
        await store.apply([write])

    assert caught.value.message == CONCURRENT
    assert (await store.get_entity("ns1", "a")).doc == {"v": 2}


async def test_deleting_with_the_revision_read_removes_the_entity(store: SqlStore):
    await store.apply([put("a")])

    assert await store.apply([Delete("ns1", "a", 1)]) == [0]
    assert await store.get_entity("ns1", "a") is None


async def test_concurrent_updates_of_one_revision_let_exactly_one_win(store: SqlStore):
    await store.apply([put("a")])
    await warm_up(store)

    results = await asyncio.gather(
        *(store.apply([put("a", updated=2, rev=1, doc={"writer": i})]) for i in range(4)), return_exceptions=True
    )

    assert sorted(map(str, results)) == [CONCURRENT, CONCURRENT, CONCURRENT, "[2]"]
    winner = next(i for i, r in enumerate(results) if r == [2])
    assert (await store.get_entity("ns1", "a")).doc == {"writer": winner}


async def test_concurrent_creates_of_one_name_let_exactly_one_win(store: SqlStore):
    await warm_up(store)
    results = await asyncio.gather(
        *(store.apply([put("a", doc={"writer": i})]) for i in range(4)), return_exceptions=True
    )

    assert sorted(map(str, results)) == ["[1]", EXISTS, EXISTS, EXISTS]
    assert all(isinstance(r, ConflictError) for r in results if r != [1])


async def test_creating_over_an_existing_entity_conflicts(store: SqlStore):
    await store.apply([put("a", doc={"v": 1})])

    with pytest.raises(ConflictError) as caught:
        await store.apply([put("a", doc={"v": 2})])

    assert caught.value.message == EXISTS
    assert (await store.get_entity("ns1", "a")).doc == {"v": 1}


@pytest.mark.parametrize(
    ("last", "message"),
    [(put("c", rev=7), CONCURRENT), (put("b"), EXISTS), (Delete("ns1", "c", 7), CONCURRENT)],
    ids=["stale-update", "create-existing", "stale-delete"],
)
async def test_a_batch_whose_last_write_conflicts_writes_nothing(store: SqlStore, last, message):
    await store.apply([put("c", doc={"v": 1}), put("b", doc={"v": 1})])

    with pytest.raises(ConflictError) as caught:
        await store.apply([put("a"), put("b", updated=2, rev=1, doc={"v": 2}), Delete("ns1", "c", 1), last])

    assert caught.value.message == message
    assert await store.get_entity("ns1", "a") is None
    assert (await store.get_entity("ns1", "b")).doc == {"v": 1}
    assert (await store.get_entity("ns1", "c")).revision == 1


async def test_a_batch_commits_every_write(store: SqlStore):
    await store.apply([put("old")])

    revisions = await store.apply([put("p", collection="packages"), put("p/x"), Delete("ns1", "old", 1)])

    assert revisions == [1, 1, 0]
    assert await store.get_entity("ns1", "old") is None
    assert (await store.get_entity("ns1", "p/x")).collection == "actions"


async def test_collections_share_one_key_space_per_namespace(store: SqlStore):
    await store.apply([put("x", collection="actions")])

    for collection in ("packages", "triggers", "rules"):
        with pytest.raises(ConflictError):
            await store.apply([put("x", collection=collection)])

    await store.apply([put("x", ns="ns2", collection="triggers")])  # another namespace's key space
    assert (await store.get_entity("ns1", "x")).collection == "actions"
    assert (await store.get_entity("ns2", "x")).collection == "triggers"


async def test_lists_are_newest_first_then_by_name_bytewise_and_paged(store: SqlStore):
    await store.apply([put(n, updated=u) for n, u in [("old", 1), ("a", 5), ("B", 5), ("_z", 5), ("new", 9)]])

    everything = await store.list_entities("ns1", "actions", package=None, skip=0, limit=30)

    # Ties on ``updated`` sort by code point ("B" < "_" < "a"), the same on every engine and locale.
    assert names(everything) == ["new", "B", "_z", "a", "old"]
    assert names(await store.list_entities("ns1", "actions", package=None, skip=1, limit=2)) == ["B", "_z"]
    assert names(await store.list_entities("ns1", "actions", package=None, skip=4, limit=2)) == ["old"]
    assert await store.list_entities("ns1", "actions", package=None, skip=5, limit=2) == []
    assert everything[0].revision == 1
    assert everything[0].doc == {"name": "new"}


async def test_lists_filter_by_package_and_collection(store: SqlStore):
    await store.apply(
        [
            put("x", updated=1),
            put("y", updated=2),
            put("p", collection="packages", updated=3),
            put("p/x", updated=4),
            put("q/y", updated=5),
            put("t", collection="triggers", updated=6),
            put("other", ns="ns2", updated=7),
        ]
    )

    async def listed(package):
        entities = await store.list_entities("ns1", "actions", package=package, skip=0, limit=30)
        assert await store.count_entities("ns1", "actions", package=package) == len(entities)
        return names(entities)

    assert await listed("") == ["y", "x"]
    assert await listed(None) == ["q/y", "p/x", "y", "x"]
    assert await listed("p") == ["p/x"]
    assert await listed("nope") == []
    assert names(await store.list_entities("ns1", "packages", package=None, skip=0, limit=30)) == ["p"]
    assert await store.count_entities("ns1", "triggers", package="") == 1
    assert await store.count_entities("ns2", "actions", package=None) == 1


async def test_counts_ignore_paging(store: SqlStore):
    await store.apply([put(f"a{i}", updated=i) for i in range(7)])

    assert len(await store.list_entities("ns1", "actions", package=None, skip=2, limit=3)) == 3
    assert await store.count_entities("ns1", "actions", package=None) == 7
    assert await store.count_entities("ns1", "rules", package=None) == 0


@pytest.mark.parametrize("special", ["p_1", "p%1", "p&1", "p 1", "p'1", "pü"])
async def test_names_with_wildcards_quotes_and_spaces_match_only_themselves(store: SqlStore, special):
    # "p11" and "pX1" would match "p_1" or "p%1" if a filter used LIKE.
    await store.apply([put(f"{p}/a b", updated=i) for i, p in enumerate(["p11", "pX1", "p", special])])
    await store.apply([put(f"{special} x", updated=9)])

    entities = await store.list_entities("ns1", "actions", package=special, skip=0, limit=30)

    assert names(entities) == [f"{special}/a b"]
    assert await store.count_entities("ns1", "actions", package=special) == 1
    assert (await store.get_entity("ns1", f"{special} x")).doc == {"name": f"{special} x"}
    assert await store.get_entity("ns1", f"{special}/a_b") is None


async def test_values_are_bound_parameters_never_sql(store: SqlStore):
    await store.create_namespace(Namespace(INJECTION, INJECTION))
    await store.apply([put(INJECTION, ns=INJECTION, doc={"q": INJECTION}), put(f"{INJECTION}/a", ns=INJECTION)])
    await store.put_code(INJECTION, INJECTION.encode())
    await store.put_activations([activation(1, ns=INJECTION, path=INJECTION)])

    assert (await store.get_namespace(INJECTION)).uuid == INJECTION
    assert (await store.get_entity(INJECTION, INJECTION)).doc == {"q": INJECTION}
    assert names(await store.list_entities(INJECTION, "actions", package=INJECTION, skip=0, limit=5)) == [
        f"{INJECTION}/a"
    ]
    assert await store.get_code(INJECTION) == INJECTION.encode()
    listed = await store.list_activations(ActivationQuery(INJECTION, entity_path=INJECTION))
    assert [a.activation_id for a in listed] == [f"{1:032x}"]
    assert await store.count_entities(INJECTION, "actions", package=None) == 2  # the table is still there


# Code and action versions.


async def test_code_is_stored_once_per_digest(store: SqlStore):
    blob = bytes(range(256))
    await store.put_code("sha256:abc", blob)
    await store.put_code("sha256:abc", blob)

    assert await store.get_code("sha256:abc") == blob
    assert await store.get_code("sha256:other") is None


async def test_code_with_one_digest_can_be_stored_concurrently(store: SqlStore):
    await warm_up(store)
    await asyncio.gather(*(store.put_code("sha256:same", b"code") for _ in range(6)))

    assert await store.get_code("sha256:same") == b"code"


async def test_action_versions_are_kept_and_replaced_by_version(store: SqlStore):
    await store.put_action_version("ns1", "p/a", "0.0.1", {"code": "sha256:1"}, 1)
    await store.put_action_version("ns1", "p/a", "0.0.2", {"code": "sha256:2"}, 2)
    await store.put_action_version("ns1", "p/a", "0.0.1", {"code": "sha256:1b"}, 3)

    assert await store.get_action_version("ns1", "p/a", "0.0.1") == {"code": "sha256:1b"}
    assert await store.get_action_version("ns1", "p/a", "0.0.2") == {"code": "sha256:2"}
    assert await store.get_action_version("ns1", "p/a", "0.0.3") is None
    assert await store.get_action_version("ns2", "p/a", "0.0.1") is None


async def test_one_action_version_can_be_replaced_concurrently(store: SqlStore):
    await warm_up(store)
    await asyncio.gather(*(store.put_action_version("ns1", "a", "0.0.1", {"n": i}, i) for i in range(6)))

    assert (await store.get_action_version("ns1", "a", "0.0.1")) in [{"n": i} for i in range(6)]


# Activations.


async def test_activations_round_trip_in_a_batch(store: SqlStore):
    batch = [activation(i, start=1_000 + i) for i in range(5)]

    await store.put_activations(batch)
    await store.put_activations([])

    for record in batch:
        assert await store.get_activation("ns1", record.activation_id) == record
    assert await store.get_activation("ns1", f"{99:032x}") is None


async def test_a_batch_with_a_taken_activation_id_stores_nothing(store: SqlStore):
    await store.put_activations([activation(1)])

    with pytest.raises(ConflictError):
        await store.put_activations([activation(2), activation(1)])

    assert await store.get_activation("ns1", f"{2:032x}") is None


async def test_activations_are_listed_newest_first_filtered_and_paged(store: SqlStore):
    await store.put_activations(
        [
            activation(1, start=100),
            activation(2, start=200, path="ns1/pkg/other", name="other"),
            activation(3, start=300),
            activation(5, start=300),  # a tie on start: ids ascending
            activation(4, start=300),
            activation(6, start=400, ns="ns2", path="ns2/hello"),
        ]
    )

    async def listed(**filters):
        query = ActivationQuery("ns1", **filters)
        found = await store.list_activations(query)
        unpaged = ActivationQuery("ns1", **{k: v for k, v in filters.items() if k not in ("skip", "limit")})
        return (
            [int(a.activation_id, 16) for a in found],
            await store.count_activations(query),
            (await store.count_activations(unpaged)),
        )

    assert await listed() == ([3, 4, 5, 2, 1], 5, 5)
    assert await listed(entity_path="ns1/hello") == ([3, 4, 5, 1], 4, 4)
    assert await listed(entity_path="ns1/pkg/other") == ([2], 1, 1)
    assert await listed(since_ms=200, upto_ms=300) == ([3, 4, 5, 2], 4, 4)
    assert await listed(since_ms=301) == ([], 0, 0)
    assert await listed(upto_ms=100) == ([1], 1, 1)
    assert await listed(skip=1, limit=2) == ([4, 5], 5, 5)
    assert await listed(entity_path="ns1/hello", skip=3, limit=30) == ([1], 4, 4)


async def test_a_namespace_cannot_see_another_namespaces_activations(store: SqlStore):
    secret = activation(7, ns="nsA", path="nsA/hello")
    await store.put_activations([secret])

    assert await store.get_activation("nsB", secret.activation_id) is None
    assert await store.list_activations(ActivationQuery("nsB")) == []
    assert await store.count_activations(ActivationQuery("nsB", entity_path="nsA/hello")) == 0
    assert await store.get_activation("nsA", secret.activation_id) == secret
