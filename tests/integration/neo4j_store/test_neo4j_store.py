"""The Neo4j store against a real server: what the contract suite cannot see from outside
(schema, plans, labels, URLs, transactions, injection)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import neo4j
import pytest

from graph import neo4j_cypher as cypher
from graph import neo4j_store as store_module
from graph.errors import (
    ConfigurationError,
    StoreError,
    StoreUnavailableError,
    UnknownRelationshipTypeError,
    ValidationError,
)
from graph.model import (
    CiId,
    ConfigurationItem,
    Direction,
    Provenance,
    Relationship,
    Status,
    WriteContext,
    WriteResult,
)
from graph.neo4j_store import Neo4jStore, _parse_uri
from graph.store import CiFilter
from tests.integration.neo4j_store.conftest import PASSWORD, USER, wipe

pytestmark = pytest.mark.neo4j

T0 = datetime(2026, 2, 1, 8, 30, tzinfo=UTC)


def cypher_value(driver: neo4j.Driver, query: str, **params: object) -> Any:
    with driver.session() as session:
        return session.run(query, params).single(strict=True)[0]


def ci(id: str, cls: str = "server", **kw: object) -> ConfigurationItem:
    return ConfigurationItem.model_validate({"id": id, "class": cls, "name": id, **kw})


def rel(source: str, type: str, target: str) -> Relationship:
    return Relationship(source=CiId(source), type=type, target=CiId(target))


def ctx(at: datetime = T0) -> WriteContext:
    return WriteContext(actor="test", at=at)


# -- schema and plans -------------------------------------------------------------------------


def test_schema_is_created_idempotently(uri: str, store: Neo4jStore, driver: neo4j.Driver):
    def schema() -> set[str]:
        with driver.session() as session:
            names = {r["name"] for r in session.run("SHOW CONSTRAINTS YIELD name")}
            names |= {r["name"] for r in session.run("SHOW INDEXES YIELD name")}
        return {n for n in names if n.startswith("cmdb_")}

    before = schema()
    assert {
        "cmdb_ci_id",
        "cmdb_ci_name",
        "cmdb_change_id",
        "cmdb_change_ci_at",
        "cmdb_incident_id",
        "cmdb_window_id",
        "cmdb_window_ci",
        "cmdb_meta_key",
        "cmdb_change_run_id",
        "cmdb_ci_class",
        "cmdb_ci_status",
    } <= before
    Neo4jStore(uri, user=USER, password=PASSWORD).close()
    assert schema() == before
    with driver.session() as session:
        states = {r["state"] for r in session.run("SHOW INDEXES YIELD name, state")}
    assert states == {"ONLINE"}


def plan_operators(driver: neo4j.Driver, query: str, **params: object) -> list[str]:
    with driver.session() as session:
        plan = session.run("EXPLAIN " + query, params).consume().plan
    assert plan is not None
    ops: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        ops.append(node["operatorType"].split("@")[0])
        for child in node.get("children", []):
            walk(child)

    walk(plan)
    return ops


SCANS = {
    "AllNodesScan",
    "NodeByLabelScan",
    "NodeIndexScan",
    "DirectedAllRelationshipsScan",
    "UndirectedAllRelationshipsScan",
}
PARAMS: dict[str, object] = {
    "cis": [],
    "among": {},
    "rows": [],
    "ids": [],
    "keys": [],
    "frontier": [],
    "types": [],
    "values": [],
    "id": "x",
    "name": "x",
    "ci_class": None,
    "source": "x",
    "type": "",
    "target": "",
    "after": "",
    "limit": 10,
    "class_index": {},
    "status_index": {},
    "type_index": {},
}


@pytest.fixture(params=["no relationships", "some relationships"])
def planned(request, store: Neo4jStore, driver: neo4j.Driver):
    """EXPLAIN with statistics like a new and like a used CMDB: the planner costs plans by
    them, and a new database is where it picks relationship scans."""
    store.upsert_cis([ci(f"c{i}") for i in range(300)], ctx())
    if request.param == "some relationships":
        store.upsert_relationships(
            [rel(f"c{i}", "DEPENDS_ON", f"c{i + 1}") for i in range(299)], ctx()
        )
    with driver.session() as session:
        session.run("CALL db.clearQueryCaches()").consume()
    return lambda query: plan_operators(driver, query, **PARAMS)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(cypher.upsert_cis("Server"), id="upsert_cis"),
        pytest.param(cypher.upsert_cis("VirtualMachine", "Server"), id="upsert_cis_class_change"),
        pytest.param(cypher.NODE_IDS, id="node_ids"),
        pytest.param(cypher.READ_CIS, id="read_cis"),
        pytest.param(cypher.EXISTING_IDS, id="existing_ids"),
        pytest.param(cypher.GET_CI, id="get_ci"),
        pytest.param(cypher.READ_RELATIONSHIPS, id="read_relationships"),
        pytest.param(cypher.upsert_relationships("DEPENDS_ON"), id="upsert_relationships"),
        pytest.param(cypher.DELETE_RELATIONSHIPS, id="delete_relationships"),
        pytest.param(cypher.DELETE_CIS, id="delete_cis"),
        pytest.param(cypher.ADJACENT_OF_CIS, id="adjacent_of_cis"),
        pytest.param(cypher.RELATIONSHIPS_OUT, id="relationships_out"),
        pytest.param(cypher.RELATIONSHIPS_IN, id="relationships_in"),
        pytest.param(cypher.EXPAND_OUT, id="expand_out"),
        pytest.param(cypher.EXPAND_BOTH, id="expand_both"),
        pytest.param(cypher.RELATIONSHIPS_AMONG, id="relationships_among"),
        pytest.param(cypher.RELATIONSHIP_PAGE, id="relationship_page"),
        pytest.param(cypher.TOPOLOGY_NODES, id="topology_nodes"),
        pytest.param(cypher.TOPOLOGY_EDGES, id="topology_edges"),
    ],
)
def test_id_keyed_queries_seek_the_unique_index(planned, query):
    ops = planned(query)
    assert any(op.startswith("NodeUniqueIndexSeek") for op in ops), ops
    assert not SCANS & set(ops), ops
    # The bulk writes stream; an Eager would hold the whole chunk in memory. (The relationship
    # MERGE returns what it found, and a RETURN after a write is always eager, as is a DELETE
    # of what the same statement matched: their chunks are bounded by neo4j_store.CHUNK.)
    if "SET " in query and "RETURN" not in query:
        assert "Eager" not in ops, ops


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(cypher.existing_relationships("DEPENDS_ON"), id="existing_relationships"),
        pytest.param(cypher.create_relationships("DEPENDS_ON"), id="create_relationships"),
    ],
)
def test_relationship_writes_seek_their_ends_by_node_id(planned, query):
    ops = planned(query)
    assert ops.count("NodeByIdSeek") == 2, ops
    assert not (SCANS | {"Eager"}) & set(ops), ops
    if "CREATE" not in query:
        assert "Expand(Into)" in ops, ops


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(cypher.create_cis("Server"), id="create_cis"),
        pytest.param(cypher.CREATE_CHANGES, id="create_changes"),
    ],
)
def test_creates_stream_without_scans(planned, query):
    ops = planned(query)
    assert "Create" in ops, ops
    assert not (SCANS | {"Eager"}) & set(ops), ops


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(cypher.FIND_BY_NAME, id="find_by_name"),
        pytest.param(cypher.match_identifiers("serial_number"), id="match_identifiers"),
        pytest.param(cypher.history(["h.at >= $after"], by_ci=True), id="history_of_cis"),
        pytest.param(cypher.SOURCE_RECORDS, id="source_records"),
    ],
)
def test_lookups_seek_an_index(planned, query):
    ops = planned(query)
    assert any("IndexSeek" in op for op in ops), ops
    assert not SCANS & set(ops), ops


def test_keyset_page_is_sorted_per_page_not_globally(store: Neo4jStore, driver: neo4j.Driver):
    ops = plan_operators(driver, cypher.RELATIONSHIP_PAGE, source="", type="", target="", limit=10)
    assert "PartialTop" in ops and "NodeUniqueIndexSeekByRange" in ops, ops


# -- labels and layout ------------------------------------------------------------------------


def test_class_label_follows_the_class(store: Neo4jStore, driver: neo4j.Driver):
    store.upsert_cis([ci("a", "server")], ctx())
    labels = "MATCH (c:CI {id: 'a'}) RETURN labels(c)"
    assert sorted(cypher_value(driver, labels)) == ["CI", "Server"]
    store.upsert_cis([ci("a", "virtual_machine")], ctx())
    assert sorted(cypher_value(driver, labels)) == ["CI", "VirtualMachine"]
    store.upsert_relationships([], ctx())
    store.upsert_cis([ci("b", "database")], ctx())
    store.upsert_relationships([rel("a", "DEPENDS_ON", "b")], ctx())
    assert cypher_value(driver, "MATCH (:CI {id: 'a'})-[r]->(:CI {id: 'b'}) RETURN type(r)") == (
        "DEPENDS_ON"
    )


def test_generation_moves_with_structure_and_status_only(store: Neo4jStore):
    store.upsert_cis([ci("a"), ci("b")], ctx())
    topo = store.topology()
    store.upsert_cis([ci("a", attributes={"os": "linux"})], ctx())  # not structure
    assert store.topology() is topo
    store.upsert_relationships([rel("a", "DEPENDS_ON", "b")], ctx())
    topo2 = store.topology()
    assert topo2 is not topo and topo2.edge_count == 1
    store.retire_cis([CiId("b")], ctx())
    assert store.topology().statuses.tolist() == [0, list(Status).index(Status.RETIRED)]


def test_emptied_database_is_not_served_from_cache(store: Neo4jStore, driver: neo4j.Driver):
    store.upsert_cis([ci("a")], ctx())
    assert store.topology().ids == ["a"]
    wipe(driver)
    assert store.topology().ids == []
    store.upsert_cis([ci("b")], ctx())  # the counter starts again, under a new epoch
    assert store.topology().ids == ["b"]


# -- connection settings ----------------------------------------------------------------------


def test_url_parsing():
    t = _parse_uri("neo4j+s://alice:p%40ss@db.example.com:7687?database=cmdb")
    assert (t.uri, t.user, t.password, t.database) == (
        "neo4j+s://db.example.com:7687",
        "alice",
        "p@ss",
        "cmdb",
    )
    t = _parse_uri("bolt://127.0.0.1")
    assert (t.uri, t.user, t.password, t.database) == ("bolt://127.0.0.1", None, None, None)
    assert _parse_uri("bolt://[::1]:7687").uri == "bolt://[::1]:7687"
    for bad in ("http://x:7474", "bolt://", "bolt://h/db", "bolt://h?db=x", "bolt://h:99999"):
        with pytest.raises(ConfigurationError):
            _parse_uri(bad)


def test_from_url_reads_the_url_then_the_environment(uri: str, monkeypatch):
    host = uri.split("://", 1)[1]
    monkeypatch.setenv("NEO4J_USER", "nobody")
    monkeypatch.setenv("NEO4J_PASSWORD", "wrong-password")
    monkeypatch.delenv("NEO4J_DATABASE", raising=False)
    # user, password and database from the URL win over the environment
    s = Neo4jStore.from_url(f"bolt://{USER}:{PASSWORD}@{host}?database=neo4j")
    try:
        assert PASSWORD not in s.describe() and "wrong-password" not in s.describe()
        assert "neo4j" in s.describe() and USER in s.describe()
    finally:
        s.close()
    # ... and the environment is used when the URL says nothing
    monkeypatch.setenv("NEO4J_USER", USER)
    monkeypatch.setenv("NEO4J_PASSWORD", PASSWORD)
    monkeypatch.setenv("NEO4J_DATABASE", "neo4j")
    s = Neo4jStore.from_url(f"neo4j://{host}")
    try:
        assert PASSWORD not in s.describe() and "database neo4j" in s.describe()
    finally:
        s.close()
    monkeypatch.setenv("NEO4J_PASSWORD", "wrong-password")
    with pytest.raises(ConfigurationError, match="NEO4J_PASSWORD"):
        Neo4jStore.from_url(f"bolt://{host}")


def test_unknown_database_says_how_to_fix_it(uri: str):
    with pytest.raises(ConfigurationError, match="NEO4J_DATABASE"):
        Neo4jStore(uri, user=USER, password=PASSWORD, database="nosuchdb")


def test_unreachable_server_is_unavailable():
    with pytest.raises(StoreUnavailableError):
        Neo4jStore("bolt://127.0.0.1:1", user=USER, password=PASSWORD)


@pytest.mark.parametrize("scheme", ["neo4j", "bolt"])
def test_routing_and_direct_uris_both_work(uri: str, driver: neo4j.Driver, scheme: str):
    wipe(driver)
    host = uri.split("://", 1)[1]
    s = Neo4jStore(f"{scheme}://{host}", user=USER, password=PASSWORD)
    try:
        s.upsert_cis([ci("a"), ci("b")], ctx())
        s.upsert_relationships([rel("a", "RUNS_ON", "b")], ctx())
        assert [r.key for r in s.relationships(CiId("a"))] == [("a", "RUNS_ON", "b")]
        assert s.get_ci(CiId("b")) is not None
    finally:
        s.close()


# -- all or nothing ---------------------------------------------------------------------------


def test_bad_batch_writes_nothing(store: Neo4jStore, driver: neo4j.Driver):
    cis = [ci(f"c{i:05}") for i in range(12_000)]
    rels = [rel(f"c{i:05}", "DEPENDS_ON", f"c{i + 1:05}") for i in range(11_999)]
    with pytest.raises(ValidationError, match="ghost"):
        store.apply(cis, [*rels, rel("c00000", "RUNS_ON", "ghost")], ctx())
    with pytest.raises(UnknownRelationshipTypeError):
        store.apply(cis, [*rels, rel("c00000", "LOVES", "c00001")], ctx())
    assert cypher_value(driver, "MATCH (n) WHERE NOT n:Meta RETURN count(n)") == 0


def test_failure_midway_through_the_transaction_rolls_everything_back(
    store: Neo4jStore, driver: neo4j.Driver, monkeypatch
):
    # Several chunks of servers are written before the databases' statement fails on the
    # server: the one transaction must leave nothing behind.
    real = cypher.create_cis

    def broken(label: str) -> str:
        return "THIS IS NOT CYPHER" if label == "Database" else real(label)

    monkeypatch.setattr(cypher, "create_cis", broken)
    batch = [ci(f"s{i:05}") for i in range(25_000)] + [ci("db", "database")]
    with pytest.raises(StoreError):
        store.upsert_cis(batch, ctx())
    monkeypatch.undo()
    assert store.count_cis() == 0
    assert store.history() == []
    assert cypher_value(driver, "MATCH (n) WHERE NOT n:Meta RETURN count(n)") == 0


# -- values -----------------------------------------------------------------------------------


def test_datetimes_come_back_utc_with_microseconds(store: Neo4jStore):
    plus2 = timezone(timedelta(hours=2))
    first = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=plus2)
    item = ci(
        "a",
        first_seen=first,
        last_seen=first + timedelta(microseconds=1),
        provenance={"name": Provenance(source="x", at=first)},
    )
    store.upsert_cis([item], WriteContext(at=datetime(2026, 3, 1, 10, 0, 0, 999999, tzinfo=UTC)))
    got = store.get_ci(CiId("a"))
    assert got is not None
    assert got == item
    assert got.first_seen is not None and got.first_seen.utcoffset() == timedelta(0)
    assert got.first_seen.microsecond == 123456 and got.first_seen.hour == 10
    change = store.history()[0]
    assert change.at == datetime(2026, 3, 1, 10, 0, 0, 999999, tzinfo=UTC)
    assert change.at.utcoffset() == timedelta(0)


INJECTIONS = [
    "x'}) DETACH DELETE n //",
    'x"}) MATCH (m) DETACH DELETE m //',
    "Robby' WITH true as ignored MATCH (s) DETACH DELETE s; //",
    "`) DETACH DELETE n //",
    "\\u0060) MATCH (n) DETACH DELETE n //",
    "$rows",
    "{id: 1}",
]


def test_injection_attempts_are_stored_verbatim(store: Neo4jStore, driver: neo4j.Driver):
    store.upsert_cis([ci("keep")], ctx())
    items = [
        ci(
            text,
            "application",
            name=text,
            description=text,
            tags=(text,),
            attributes={text: text, "list": [text]},
            owner=text,
        )
        for text in INJECTIONS
    ]
    store.upsert_cis(items, ctx())
    store.upsert_relationships([rel(text, "DEPENDS_ON", "keep") for text in INJECTIONS], ctx())
    seen = {"first_seen": T0, "last_seen": T0}
    for item in items:
        stored = item.model_copy(update=seen)
        assert store.get_ci(item.id) == stored
        assert store.find_by_name(item.name) == [stored]
        assert store.list_cis(CiFilter(tag=item.name)).items == [stored]
    assert store.count_cis() == len(INJECTIONS) + 1
    assert len(store.relationships(CiId("keep"), Direction.IN)) == len(INJECTIONS)
    store.delete_cis([CiId(INJECTIONS[0])], ctx())
    assert store.count_cis() == len(INJECTIONS)
    assert cypher_value(driver, "MATCH (c:CI) RETURN count(c)") == len(INJECTIONS)


def test_identifiers_are_quoted_even_from_the_registry():
    assert cypher.quote("Server") == "`Server`"
    assert cypher.quote("a`b") == "`a``b`"
    assert cypher.quote("a\\u0060b") == "`a``b`"


# -- traversal --------------------------------------------------------------------------------


def test_neighbourhood_terminates_on_cycles(store: Neo4jStore):
    n = 300
    store.upsert_cis([ci(f"n{i:03}") for i in range(n)], ctx())
    ring = [rel(f"n{i:03}", "DEPENDS_ON", f"n{(i + 1) % n:03}") for i in range(n)]
    chords = [
        rel(f"n{i:03}", "CONNECTS_TO", f"n{(i * 7 + 3) % n:03}")
        for i in range(n)
        if (i * 7 + 3) % n != i
    ]
    store.upsert_relationships(ring + chords, ctx())
    sub = store.neighbourhood([CiId("n000")], direction=Direction.BOTH, depth=50)
    assert len(sub.cis) == n
    assert len(sub.relationships) == len(ring) + len(chords)
    sub = store.neighbourhood(
        [CiId("n000")], direction=Direction.OUT, depth=50, types=frozenset({"DEPENDS_ON"})
    )
    assert len(sub.cis) == 51 and len(sub.relationships) == 50  # 50 hops along the ring
    limited = store.neighbourhood([CiId("n000")], depth=50, limit=10)
    assert len(limited.cis) == 10


def test_topology_numbers_nodes_by_id_and_sorts_edges(store: Neo4jStore):
    store.upsert_cis([ci(x) for x in ["b", "a", "é", "c"]], ctx())
    store.upsert_relationships(
        [rel("c", "DEPENDS_ON", "a"), rel("a", "RUNS_ON", "b"), rel("a", "DEPENDS_ON", "é")], ctx()
    )
    topo = store.topology()
    assert topo.ids == ["a", "b", "c", "é"]
    edges = [
        (topo.ids[s], topo.type_names[t], topo.ids[d])
        for s, t, d in zip(topo.src, topo.rel_types, topo.dst, strict=True)
    ]
    assert edges == [("a", "DEPENDS_ON", "é"), ("a", "RUNS_ON", "b"), ("c", "DEPENDS_ON", "a")]
    assert [r.key for r in store.iter_relationships(batch_size=2)] == [
        (s, t, d) for s, t, d in edges
    ]


def test_history_entries_keep_queried_fields_as_properties(store: Neo4jStore, driver: neo4j.Driver):
    store.upsert_cis([ci("a")], WriteContext(actor="test", run_id="r1", at=T0))
    store.upsert_cis([ci("a", name="b")], WriteContext(actor="test", run_id="r1", at=T0))
    keys = cypher_value(driver, "MATCH (h:Change) RETURN keys(h)")  # the update's
    assert sorted(keys) == ["at", "body", "ci", "id", "run_id", "seq"]


def test_history_written_by_earlier_versions_is_read(store: Neo4jStore, driver: neo4j.Driver):
    # Before the JSON body, every field was a property and before/after were JSON text.
    with driver.session() as session:
        session.run(
            "CREATE (:Change {id: 'old', ci: 'a', at: '2026-01-01T00:00:00.000000Z', seq: 0,"
            " kind: 'relationship_updated', field: 'attributes', before: '{\"x\":1}',"
            " after: '{\"x\":2}', summary: 's', actor: 'alice', run_id: 'r0',"
            " relationship: ['a', 'DEPENDS_ON', 'b']})"
        ).consume()
    store.upsert_cis([ci("a")], WriteContext(actor="test", at=T0))
    old, new = store.history()
    assert (old.id, old.before, old.after, old.actor, old.run_id) == (
        "old",
        {"x": 1},
        {"x": 2},
        "alice",
        "r0",
    )
    assert old.relationship == ("a", "DEPENDS_ON", "b") and old.kind == "relationship_updated"
    assert new.kind == "created" and new.after is not None and new.after["name"] == "a"


def test_relationships_are_created_with_their_properties_and_found_again(
    store: Neo4jStore, driver: neo4j.Driver
):
    store.upsert_cis([ci("a"), ci("b"), ci("c")], ctx())
    first = [rel("a", "DEPENDS_ON", "b"), rel("b", "DEPENDS_ON", "c")]
    assert store.upsert_relationships(first, ctx()) == WriteResult(created=2)
    # no marker reaches the database; the creation entry is kept on the relationship
    props = "MATCH ()-[r]->() UNWIND keys(r) AS k RETURN collect(DISTINCT k)"
    assert sorted(cypher_value(driver, props)) == [
        "attributes",
        "created",
        "created_at",
        "created_seq",
        "first_seen",
        "last_seen",
        "provenance",
    ]
    changed = Relationship(
        source=CiId("a"), type="DEPENDS_ON", target=CiId("b"), attributes={"p": 1}
    )
    later = T0 + timedelta(hours=1)
    result = store.upsert_relationships([*first[1:], changed, rel("a", "RUNS_ON", "c")], ctx(later))
    assert result == WriteResult(created=1, updated=1, unchanged=1)
    stored = store.get_relationship((CiId("a"), "DEPENDS_ON", CiId("b")))
    assert stored is not None and stored.attributes == {"p": 1}
    assert (stored.first_seen, stored.last_seen) == (T0, T0)  # last_seen: given, else kept
    kinds = [(c.kind, c.relationship) for c in store.history(since=later)]
    assert kinds == [
        ("relationship_updated", ("a", "DEPENDS_ON", "b")),
        ("related", ("a", "RUNS_ON", "c")),
    ]


def test_a_ci_created_meanwhile_by_a_writer_that_does_not_wait_is_written_as_an_update(
    uri: str, store: Neo4jStore, monkeypatch
):
    # The store's writers take turns and read inside their turn, so none of them can create
    # "a" between this transaction's read and its CREATE; a writer that does not wait for its
    # turn can (a release before the turns, during a rolling upgrade, or Cypher run by hand).
    # The transaction reads "a" as missing; such a writer creates it before the CREATE.
    real = store_module._Write.read_ci_props
    raced: list[bool] = []

    def read_then_race(self: Any, ids: Any) -> Any:
        found = real(self, ids)
        if not raced:
            raced.append(True)
            with neo4j.GraphDatabase.driver(uri, auth=(USER, PASSWORD)) as driver:
                driver.execute_query(
                    "CREATE (:CI:Server {id: 'a', ci_class: 'server', name: 'theirs', "
                    "status: 'operational'})"
                )
        return found

    monkeypatch.setattr(store_module._Write, "read_ci_props", read_then_race)
    assert store.upsert_cis([ci("a", name="ours")], ctx()) == WriteResult(updated=1)
    got = store.get_ci(CiId("a"))
    assert got is not None and got.name == "ours"
    assert [(c.kind, c.field, c.before, c.after) for c in store.history()] == [
        ("updated", "name", "theirs", "ours")
    ]


def test_external_changes_are_idempotent_within_and_across_calls(store: Neo4jStore):
    from graph.model import ChangeKind, ExternalChange

    store.upsert_cis([ci("a")], ctx())
    deploy = ExternalChange(id="D1", ci=CiId("a"), kind=ChangeKind.DEPLOYMENT, at=T0, summary="v2")
    assert store.record_external_changes([deploy, deploy], ctx()) == 1
    assert store.record_external_changes([deploy], ctx()) == 0
    assert [c.id for c in store.history() if c.kind == ChangeKind.DEPLOYMENT] == ["D1"]
    assert store.upsert_cis([ci("a")], ctx()) == WriteResult(unchanged=1)
