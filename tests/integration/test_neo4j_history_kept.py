"""The Neo4j store keeps the creation entry of a CI or relationship on the item itself (see
``graph.neo4j_cypher``): history must read the same as the embedded store's all the same,
through updates, deletions and filters, and concurrent writers must not duplicate anything."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import neo4j
import pytest

from graph.model import CiId, ConfigurationItem, Relationship, WriteContext, WriteResult
from graph.store import Store

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def ci(id: str, **kw: object) -> ConfigurationItem:
    return ConfigurationItem.model_validate({"id": id, "class": "server", "name": id, **kw})


def rel(source: str, target: str, type: str = "DEPENDS_ON", **kw: object) -> Relationship:
    return Relationship.model_validate({"source": source, "type": type, "target": target, **kw})


def ctx(hours: int, run_id: str | None = None) -> WriteContext:
    return WriteContext(actor="test", at=T0 + timedelta(hours=hours), run_id=run_id)


def loaded(store: Store) -> None:
    store.upsert_cis([ci("a"), ci("b"), ci("c")], ctx(0, "r1"))
    store.upsert_relationships([rel("a", "b"), rel("b", "c"), rel("c", "a")], ctx(1, "r1"))
    store.upsert_cis([ci("a", name="A")], ctx(2, "r2"))
    store.upsert_relationships([rel("a", "b", attributes={"port": 5432})], ctx(3, "r2"))


def entries(store: Store, **kw: object) -> list[tuple[str, str, str | None]]:
    return [(c.kind, c.ci, c.field) for c in store.history(**kw)]  # type: ignore[arg-type]


def test_history_reads_alike_through_updates_and_filters(store: Store):
    loaded(store)
    assert entries(store) == [
        ("created", "a", None),
        ("created", "b", None),
        ("created", "c", None),
        ("related", "a", None),
        ("related", "b", None),
        ("related", "c", None),
        ("updated", "a", "name"),
        ("relationship_updated", "a", "attributes"),
    ]
    created = store.history([CiId("a")])[0]
    assert created.after is not None and created.after["name"] == "a"  # as it was created
    assert entries(store, run_id="r1") == entries(store)[:6]
    assert (
        entries(store, since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=2))
        == (entries(store)[3:7])
    )
    assert entries(store, cis=[CiId("b")]) == [("created", "b", None), ("related", "b", None)]
    assert entries(store, limit=4) == entries(store)[:4]
    assert entries(store, cis=[CiId("a"), CiId("c")], limit=3) == [
        ("created", "a", None),
        ("created", "c", None),
        ("related", "a", None),
    ]


def test_history_survives_deletions_unchanged(store: Store):
    loaded(store)
    before = store.history()
    assert store.delete_relationships([(CiId("c"), "DEPENDS_ON", CiId("a"))], ctx(4)) == (
        WriteResult(deleted=1)
    )
    store.delete_cis([CiId("b")], ctx(5))
    after = store.history()
    assert after[: len(before)] == before
    assert [(c.kind, c.relationship) for c in after[len(before) :]] == [
        ("unrelated", ("c", "DEPENDS_ON", "a")),
        ("unrelated", ("a", "DEPENDS_ON", "b")),
        ("unrelated", ("b", "DEPENDS_ON", "c")),
        ("deleted", None),
    ]
    assert store.history([CiId("b")])[0] == before[1]  # its creation, kept
    # a CI created again under the same id starts a history of its own
    store.upsert_cis([ci("b")], ctx(6))
    assert [c.kind for c in store.history([CiId("b")])] == [
        "created",
        "related",
        "unrelated",
        "deleted",
        "created",
    ]


@pytest.mark.neo4j
def test_creation_entries_live_on_their_items_until_deleted(request: pytest.FixtureRequest):
    from graph.neo4j_store import Neo4jStore
    from tests.conftest import wipe_neo4j

    server = request.getfixturevalue("neo4j_server")
    wipe_neo4j(server)
    with (
        neo4j.GraphDatabase.driver(server.uri, auth=(server.user, server.password)) as driver,
        driver.session() as session,
    ):
        store = Neo4jStore(server.uri, user=server.user, password=server.password)
        try:
            store.upsert_cis([ci("a"), ci("b")], ctx(0))
            store.upsert_relationships([rel("a", "b")], ctx(1))
            count = "MATCH (h:Change) RETURN count(h) AS n"
            assert session.run(count).single(strict=True)["n"] == 0
            before = store.history()
            store.delete_cis([CiId("a")], ctx(2))
            # a's creation, the relationship's, its removal and a's deletion
            assert session.run(count).single(strict=True)["n"] == 4
            assert store.history()[:3] == before
        finally:
            store.close()


@pytest.mark.neo4j
def test_concurrent_writers_create_each_relationship_once(request: pytest.FixtureRequest):
    from graph.neo4j_store import Neo4jStore
    from tests.conftest import wipe_neo4j

    server = request.getfixturevalue("neo4j_server")
    wipe_neo4j(server)
    stores = [Neo4jStore(server.uri, user=server.user, password=server.password) for _ in range(4)]
    try:
        n = 200
        stores[0].upsert_cis([ci(f"n{i:03}") for i in range(n)], ctx(0))
        rels = [rel(f"n{i:03}", f"n{(i + 1) % n:03}") for i in range(n)]
        results: list[WriteResult] = []
        errors: list[BaseException] = []
        start = threading.Barrier(len(stores))

        def write(store: Neo4jStore, k: int) -> None:
            try:
                start.wait()
                # overlapping halves, in different orders
                part = rels[k * 50 : k * 50 + 100] + rels[::-1][k * 30 : k * 30 + 60]
                unique = list({r.key: r for r in part}.values())
                results.append(store.upsert_relationships(unique, ctx(1)))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(s, k)) for k, s in enumerate(stores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        written = {r.key for k in range(len(stores)) for r in rels[k * 50 : k * 50 + 100]}
        written |= {r.key for k in range(len(stores)) for r in rels[::-1][k * 30 : k * 30 + 60]}
        assert sum(r.created for r in results) == len(written)
        with (
            neo4j.GraphDatabase.driver(server.uri, auth=(server.user, server.password)) as d,
            d.session() as session,
        ):
            pairs = session.run(
                "MATCH (s:CI)-[r]->(t:CI) RETURN s.id AS s, t.id AS t, count(r) AS n"
            ).data()
        assert len(pairs) == len(written) and all(p["n"] == 1 for p in pairs)
        related = [c for c in stores[0].history(limit=10_000) if c.kind == "related"]
        assert sorted(c.relationship for c in related) == sorted(written)  # type: ignore[type-var]
    finally:
        for s in stores:
            s.close()


@pytest.mark.neo4j
def test_a_writer_reads_what_the_writer_before_it_committed(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
):
    """Writers take turns (the counter lock), and each reads the stored CIs inside its turn.
    A writer that read a CI while another was changing it would write its whole CI back over
    the other's commit (the other's change to another field undone, with no history entry
    saying so) and record its own change from a value that was no longer stored."""
    from graph.neo4j_store import Neo4jStore, _Write
    from tests.conftest import wipe_neo4j

    server = request.getfixturevalue("neo4j_server")
    wipe_neo4j(server)
    first, second = (
        Neo4jStore(server.uri, user=server.user, password=server.password) for _ in "ab"
    )
    locked, read = threading.Event(), threading.Event()
    holder = threading.local()
    reserve, read_props = _Write.reserve_seq, _Write.read_ci_props

    def reserve_seq(self: _Write, count: int) -> int:
        base = reserve(self, count)
        if getattr(holder, "first", False) and not locked.is_set():
            locked.set()  # the first writer holds the lock until it commits...
            read.wait(timeout=1.0)  # ...long enough for the second to read, if it may
        return base

    def read_ci_props(self: _Write, ids: object) -> object:
        found = read_props(self, ids)  # type: ignore[arg-type]
        if getattr(holder, "second", False):
            read.set()
        return found

    monkeypatch.setattr(_Write, "reserve_seq", reserve_seq)
    monkeypatch.setattr(_Write, "read_ci_props", read_ci_props)
    results: dict[str, WriteResult] = {}
    try:
        first.upsert_cis([ci("x", environment="prod")], ctx(0))

        def move() -> None:  # one source moves it to staging...
            holder.first = True
            results["first"] = first.upsert_cis([ci("x", environment="staging")], ctx(1))

        def rename() -> None:  # ...while another, which has read it in prod, renames it
            holder.second = True
            locked.wait(timeout=10)
            results["second"] = second.upsert_cis(
                [ci("x", name="renamed", environment="prod")], ctx(2)
            )

        threads = [threading.Thread(target=move), threading.Thread(target=rename)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == {"first": WriteResult(updated=1), "second": WriteResult(updated=1)}
        # The second writer, in its turn, finds the CI in staging: its write moves it back to
        # prod, and says so.
        stored = first.get_ci(CiId("x"))
        assert stored is not None and (stored.name, stored.environment) == ("renamed", "prod")
        changes = [
            (c.field, c.before, c.after) for c in first.history([CiId("x")]) if c.kind == "updated"
        ]
        assert sorted(changes) == [
            ("environment", "prod", "staging"),
            ("environment", "staging", "prod"),
            ("name", "x", "renamed"),
        ]
    finally:
        first.close()
        second.close()


@pytest.mark.neo4j
def test_writers_wait_for_their_turn_without_deadlocks(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
):
    """Calls that write CIs and then relationships reserve history numbers twice; waiting for
    the turn with an increment of the counter itself would make the server report a deadlock
    (and the driver retry the whole write) each time two of them meet."""
    from graph.neo4j_store import Neo4jStore
    from tests.conftest import wipe_neo4j

    server = request.getfixturevalue("neo4j_server")
    wipe_neo4j(server)
    stores = [Neo4jStore(server.uri, user=server.user, password=server.password) for _ in range(3)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def write(store: Neo4jStore, k: int) -> None:
        try:
            start.wait()
            for call in range(5):
                ids = [f"w{k}-{call}-{i}" for i in range(20)]
                store.apply(
                    [ci(i) for i in ids],
                    [rel(a, b) for a, b in itertools.pairwise(ids)],
                    ctx(call),
                )
        except BaseException as exc:
            errors.append(exc)

    caplog.set_level("WARNING", logger="neo4j")
    try:
        threads = [threading.Thread(target=write, args=(s, k)) for k, s in enumerate(stores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in stores:
            s.close()
    assert not errors
    assert not [r for r in caplog.records if "Deadlock" in r.getMessage()]
    with (
        neo4j.GraphDatabase.driver(server.uri, auth=(server.user, server.password)) as d,
        d.session() as session,
    ):
        seqs = session.run("MATCH (c:CI) RETURN collect(c.created_seq) AS s").single(strict=True)
    assert len(set(seqs["s"])) == len(stores) * 5 * 20  # every creation numbered once
