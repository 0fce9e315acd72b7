"""One behaviour, two stores: every test here runs on the embedded store and on Neo4j."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from graph.errors import (
    AmbiguousReferenceError,
    LimitExceededError,
    NotFoundError,
    UnknownClassError,
    UnknownRelationshipTypeError,
    ValidationError,
)
from graph.model import (
    ChangeKind,
    CiId,
    ConfigurationItem,
    Direction,
    ExternalChange,
    Incident,
    Limits,
    MaintenanceWindow,
    Provenance,
    Quorum,
    RedundancyGroup,
    Relationship,
    Status,
    WriteContext,
    WriteResult,
)
from graph.store import STATUS_ORDER, CiFilter, resolve_reference

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def ci(id: str, cls: str = "server", name: str | None = None, **kw) -> ConfigurationItem:
    return ConfigurationItem(id=CiId(id), **{"class": cls}, name=name or id, **kw)


def rel(source: str, type: str, target: str, **kw) -> Relationship:
    return Relationship(source=CiId(source), type=type, target=CiId(target), **kw)


def ctx(at: datetime = T0, **kw) -> WriteContext:
    return WriteContext(actor="tester", at=at, **kw)


def stable(ci: ConfigurationItem) -> dict:
    return ci.model_dump(mode="json")


# -- upserts and history -------------------------------------------------------------------------


def test_upsert_creates_then_is_idempotent(store):
    items = [ci("a"), ci("b", "database", criticality=1, attributes={"port": 5432})]
    assert store.upsert_cis(items, ctx()) == WriteResult(created=2)
    assert store.upsert_cis(items, ctx(T0 + timedelta(hours=1))) == WriteResult(unchanged=2)
    history = store.history()
    assert [(c.ci, c.kind) for c in history] == [("a", "created"), ("b", "created")]
    assert history[0].actor == "tester"


def test_update_records_one_change_per_field(store):
    store.upsert_cis([ci("a", environment="prod")], ctx())
    later = T0 + timedelta(minutes=5)
    result = store.upsert_cis(
        [ci("a", environment="test", attributes={"os": "linux"})],
        ctx(later, source="csv", run_id="run-1", request_id="req-9"),
    )
    assert result == WriteResult(updated=1)
    changes = store.history(["a"], since=later)
    assert [(c.field, c.before, c.after) for c in changes] == [
        ("environment", "prod", "test"),
        ("attributes", {}, {"os": "linux"}),
    ]
    assert {(c.source, c.run_id, c.request_id) for c in changes} == {("csv", "run-1", "req-9")}
    assert store.history(run_id="run-1") == changes


def test_first_seen_is_kept_across_updates(store):
    store.upsert_cis([ci("a")], ctx())
    store.upsert_cis([ci("a", name="renamed")], ctx(T0 + timedelta(days=1)))
    stored = store.get_ci("a")
    assert stored.first_seen == T0
    assert stored.name == "renamed"


def test_values_round_trip_exactly(store):
    odd = "x'}) DETACH DELETE n // ; DROP TABLE ci; --"
    item = ci(
        "weird/id:ü",
        "application",
        name=odd,
        status=Status.DEGRADED,
        environment="prod",
        criticality=2,
        owner="team-a",
        support_group="ops",
        description="multi\nline ✓",
        attributes={"n": 1, "f": 1.5, "b": True, "none": None, "list": ["a", 2], "s": odd},
        tags=("z", "a"),
        redundancy=(
            RedundancyGroup(
                name="vms",
                members=(CiId("v2"), CiId("v1")),
                down_below=Quorum(count=1),
                degraded_below=Quorum(percent=50),
            ),
        ),
        provenance={"name": Provenance(source="csv", at=T0 + timedelta(microseconds=7))},
        first_seen=T0 + timedelta(microseconds=123),
        last_seen=T0 + timedelta(days=1, microseconds=456),
    )
    store.upsert_cis([item], ctx())
    assert stable(store.get_ci(item.id)) == stable(item)
    assert store.get_ci(item.id) == item
    assert store.find_by_name(odd) == [item]


def test_class_change_is_a_tracked_update(store):
    store.upsert_cis([ci("a", "server")], ctx())
    store.upsert_cis([ci("a", "virtual_machine")], ctx())
    assert store.get_ci("a").ci_class == "virtual_machine"
    assert store.list_cis(CiFilter(classes=frozenset({"server"}))).items == []
    assert [c.field for c in store.history(["a"])][-1] == "ci_class"


# -- bad input writes nothing -------------------------------------------------------------------


def test_unknown_class_refuses_the_whole_batch(store):
    with pytest.raises(UnknownClassError) as err:
        store.upsert_cis([ci("ok"), ci("bad", "spaceship")], ctx())
    assert err.value.item == "bad" and err.value.field == "class"
    assert store.count_cis() == 0
    assert store.history() == []


def test_unknown_relationship_type_refuses_the_batch(store):
    store.upsert_cis([ci("a"), ci("b")], ctx())
    with pytest.raises(UnknownRelationshipTypeError) as err:
        store.upsert_relationships([rel("a", "DEPENDS_ON", "b"), rel("b", "LOVES", "a")], ctx())
    assert err.value.field == "type" and "LOVES" in str(err.value)
    assert store.relationships("a") == []


def test_dangling_end_refuses_cis_and_relationships_together(store):
    with pytest.raises(ValidationError) as err:
        store.apply(
            [ci("a"), ci("b")], [rel("a", "DEPENDS_ON", "b"), rel("a", "RUNS_ON", "ghost")], ctx()
        )
    assert err.value.field == "target" and "ghost" in str(err.value)
    assert store.count_cis() == 0
    assert store.history() == []


def test_self_loop_and_duplicates_are_refused(store):
    store.upsert_cis([ci("a"), ci("b")], ctx())
    with pytest.raises(ValidationError):
        store.upsert_relationships([rel("a", "DEPENDS_ON", "a")], ctx())
    with pytest.raises(ValidationError):
        store.upsert_relationships([rel("a", "DEPENDS_ON", "b")] * 2, ctx())
    with pytest.raises(ValidationError):
        store.upsert_cis([ci("c"), ci("c")], ctx())
    assert store.count_cis() == 2


def test_batch_limit(store, monkeypatch):
    monkeypatch.setattr(Limits, "MAX_BATCH", 3)
    with pytest.raises(LimitExceededError):
        store.upsert_cis([ci(f"c{i}") for i in range(4)], ctx())
    assert store.count_cis() == 0


def test_oversized_values_are_refused_before_any_store():
    with pytest.raises(ValueError, match="limit"):
        ci("a", attributes={"blob": "x" * (Limits.MAX_TEXT_LENGTH + 1)})
    with pytest.raises(ValueError):
        ci("a" * (Limits.MAX_ID_LENGTH + 1))
    with pytest.raises(ValueError):
        ci("a", attributes={"nested": {"a": 1}})


# -- reads ----------------------------------------------------------------------------------


def test_get_many_and_names(store):
    store.upsert_cis([ci("a", name="web"), ci("b", name="web"), ci("c", name="db")], ctx())
    assert set(store.get_cis(["a", "c", "missing"])) == {"a", "c"}
    assert resolve_reference(store, "db").id == "c"
    assert resolve_reference(store, "a").id == "a"
    with pytest.raises(AmbiguousReferenceError) as err:
        resolve_reference(store, "web")
    assert err.value.candidates == ["a", "b"]
    with pytest.raises(NotFoundError):
        resolve_reference(store, "nothing")
    assert [c.id for c in store.find_by_name("web", "server")] == ["a", "b"]


def test_find_by_names_is_one_lookup_for_many_names(store):
    store.upsert_cis(
        [ci("b", name="web"), ci("a", "database", name="web"), ci("c", name="db")], ctx()
    )
    found = store.find_by_names(["web", "db", "nothing", "web"])
    assert {name: [c.id for c in cis] for name, cis in found.items()} == {
        "db": ["c"],
        "web": ["a", "b"],  # any class, ids sorted
    }
    assert found["web"][0] == store.get_ci("a")
    assert store.find_by_names([]) == {}


def test_list_filters_and_cursor_pagination(store):
    items = [
        ci(
            f"c{i:02}",
            "server" if i % 2 else "database",
            name=f"Node {i}",
            environment="prod" if i < 10 else "test",
            tags=("red",) if i % 3 == 0 else (),
            status=Status.RETIRED if i == 4 else Status.OPERATIONAL,
        )
        for i in range(25)
    ]
    store.upsert_cis(items, ctx())
    seen, cursor = [], None
    while True:
        page = store.list_cis(first=7, after=cursor)
        seen.extend(c.id for c in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(c.id for c in items)
    servers = store.list_cis(CiFilter(classes=frozenset({"server"})), first=100).items
    assert [c.id for c in servers] == [c.id for c in items if c.ci_class == "server"]
    f = CiFilter(environment="prod", tag="red", include_retired=False)
    assert [c.id for c in store.list_cis(f).items] == ["c00", "c03", "c06", "c09"]
    assert store.count_cis(f) == 4
    assert store.count_cis(CiFilter(name_contains="NODE 1")) == 11
    assert store.count_cis(CiFilter(statuses=frozenset({Status.RETIRED}))) == 1
    with pytest.raises(ValidationError):
        store.list_cis(first=0)


def test_relationships_by_direction_and_type(store):
    store.upsert_cis(
        [ci("app", "application"), ci("vm", "virtual_machine"), ci("db", "database")], ctx()
    )
    store.upsert_relationships(
        [rel("app", "RUNS_ON", "vm"), rel("app", "DEPENDS_ON", "db", attributes={"port": 5432})],
        ctx(),
    )
    assert [r.target for r in store.relationships("app", Direction.OUT)] == ["db", "vm"]
    assert store.relationships("app", Direction.IN) == []
    assert [r.source for r in store.relationships("db", Direction.IN)] == ["app"]
    only = store.relationships("app", Direction.BOTH, frozenset({"RUNS_ON"}))
    assert [r.key for r in only] == [("app", "RUNS_ON", "vm")]
    assert store.get_relationship(("app", "DEPENDS_ON", "db")).attributes == {"port": 5432}
    assert store.get_relationship(("db", "DEPENDS_ON", "app")) is None
    assert [r.key for r in store.iter_relationships(batch_size=1)] == [
        ("app", "DEPENDS_ON", "db"),
        ("app", "RUNS_ON", "vm"),
    ]
    with pytest.raises(NotFoundError):
        store.relationships("nope")


def test_relationship_attribute_update_and_delete_are_history(store):
    store.upsert_cis([ci("a"), ci("b")], ctx())
    store.upsert_relationships([rel("a", "DEPENDS_ON", "b")], ctx())
    assert store.upsert_relationships([rel("a", "DEPENDS_ON", "b")], ctx()) == WriteResult(
        unchanged=1
    )
    store.upsert_relationships([rel("a", "DEPENDS_ON", "b", attributes={"w": 1})], ctx())
    assert store.delete_relationships(
        [("a", "DEPENDS_ON", "b"), ("a", "USES", "b")], ctx()
    ) == WriteResult(deleted=1)
    kinds = [c.kind for c in store.history(["a"])]
    assert kinds == ["created", "related", "relationship_updated", "unrelated"]


def test_neighbourhood_depth_direction_and_cycles(store):
    # a -> b -> c -> a (a cycle), c -> d; e is unconnected
    store.upsert_cis([ci(x) for x in "abcde"], ctx())
    store.upsert_relationships(
        [
            rel("a", "DEPENDS_ON", "b"),
            rel("b", "DEPENDS_ON", "c"),
            rel("c", "DEPENDS_ON", "a"),
            rel("c", "RUNS_ON", "d"),
        ],
        ctx(),
    )
    sub = store.neighbourhood(["a"], direction=Direction.OUT, depth=1)
    assert [c.id for c in sub.cis] == ["a", "b"]
    assert [r.key for r in sub.relationships] == [("a", "DEPENDS_ON", "b")]
    sub = store.neighbourhood(["a"], direction=Direction.OUT, depth=50)
    assert [c.id for c in sub.cis] == ["a", "b", "c", "d"]
    assert len(sub.relationships) == 4
    sub = store.neighbourhood(["d"], direction=Direction.IN, depth=2)
    assert [c.id for c in sub.cis] == ["b", "c", "d"]
    sub = store.neighbourhood(["a"], depth=5, types=frozenset({"DEPENDS_ON"}))
    assert [c.id for c in sub.cis] == ["a", "b", "c"]
    assert [c.id for c in store.neighbourhood(["e"], depth=3).cis] == ["e"]
    with pytest.raises(ValidationError):
        store.neighbourhood(["a"], depth=Limits.MAX_DEPTH + 1)
    with pytest.raises(UnknownRelationshipTypeError):
        store.neighbourhood(["a"], types=frozenset({"NOPE"}))


# -- retire, delete -------------------------------------------------------------------------


def test_retire_and_delete(store):
    store.upsert_cis([ci("a"), ci("b"), ci("c")], ctx())
    store.upsert_relationships([rel("a", "DEPENDS_ON", "b"), rel("b", "DEPENDS_ON", "c")], ctx())
    assert store.retire_cis(["a"], ctx()) == WriteResult(updated=1)
    assert store.get_ci("a").status == Status.RETIRED
    assert store.history(["a"])[-1].kind == ChangeKind.RETIRED
    with pytest.raises(NotFoundError):
        store.retire_cis(["b", "ghost"], ctx())
    assert store.get_ci("b").status == Status.OPERATIONAL
    assert store.delete_cis(["b"], ctx()) == WriteResult(deleted=1)
    assert store.get_ci("b") is None
    assert store.relationships("a") == [] and store.relationships("c") == []
    kinds = sorted((c.ci, c.kind) for c in store.history(["a", "b"]) if c.kind != "created")
    assert ("b", "deleted") in kinds and ("a", "unrelated") in kinds and ("b", "unrelated") in kinds
    with pytest.raises(NotFoundError):
        store.delete_cis(["b"], ctx())


# -- history, external changes, incidents, maintenance -------------------------------------


def test_history_ranges_and_external_changes(store):
    store.upsert_cis([ci("a"), ci("b")], ctx())
    for hour in (1, 2, 3):
        store.upsert_cis([ci("a", attributes={"v": hour})], ctx(T0 + timedelta(hours=hour)))
    deploy = ExternalChange(
        id="CHG0001",
        ci=CiId("b"),
        kind=ChangeKind.CHANGE_REQUEST,
        at=T0 + timedelta(hours=2),
        summary="patch kernel",
        external_ref="SN:CHG0001",
        planned_start=T0 + timedelta(hours=2),
        planned_end=T0 + timedelta(hours=3),
    )
    assert store.record_external_changes([deploy], ctx()) == 1
    assert store.record_external_changes([deploy], ctx()) == 0
    window = store.history(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=2))
    assert [(c.ci, c.kind) for c in window] == [("a", "updated"), ("b", "change_request")]
    assert window[1].planned and window[1].external_ref == "SN:CHG0001"
    assert [c.after for c in store.history(["a"], since=T0 + timedelta(hours=1))] == [
        {"v": 1},
        {"v": 2},
        {"v": 3},
    ]
    assert len(store.history(limit=2)) == 2
    with pytest.raises(NotFoundError):
        store.record_external_changes(
            [deploy.model_copy(update={"id": "x", "ci": CiId("ghost")})], ctx()
        )


def test_incidents_and_maintenance_windows(store):
    store.upsert_cis([ci("a"), ci("b")], ctx())
    inc = Incident(
        id="INC1",
        title="web down",
        opened_at=T0,
        affected=(CiId("a"),),
        impact={"affected": [{"id": "a"}]},
        impact_at=T0,
    )
    store.put_incident(inc)
    store.put_incident(
        Incident(
            id="INC2",
            title="old",
            opened_at=T0 - timedelta(days=1),
            status="resolved",
            resolved_at=T0,
        )
    )
    assert store.get_incident("INC1") == inc
    assert [i.id for i in store.list_incidents()] == ["INC2", "INC1"]
    assert [i.id for i in store.list_incidents(open_only=True)] == ["INC1"]
    assert store.get_incident("nope") is None
    w = MaintenanceWindow(id="MW1", ci=CiId("a"), start=T0, end=T0 + timedelta(hours=2))
    store.put_maintenance_window(w)
    assert store.maintenance_windows(["a"], at=T0 + timedelta(hours=1)) == [w]
    assert store.maintenance_windows(["a"], at=T0 + timedelta(hours=2)) == []
    assert store.maintenance_windows(["b"]) == []
    with pytest.raises(NotFoundError):
        store.put_maintenance_window(w.model_copy(update={"id": "MW2", "ci": CiId("ghost")}))
    store.delete_maintenance_window("MW1")
    assert store.maintenance_windows() == []


# -- topology -------------------------------------------------------------------------------


def test_topology_is_compact_and_cached_by_generation(store):
    store.upsert_cis(
        [
            ci("b", "virtual_machine"),
            ci(
                "a",
                "application",
                status=Status.DOWN,
                redundancy=(RedundancyGroup(name="g", members=("b",)),),
            ),
            ci("c", "site"),
        ],
        ctx(),
    )
    store.upsert_relationships([rel("a", "RUNS_ON", "b"), rel("b", "LOCATED_IN", "c")], ctx())
    topo = store.topology()
    assert topo.ids == ["a", "b", "c"]
    edges = sorted(
        (topo.ids[s], topo.type_names[t], topo.ids[d])
        for s, t, d in zip(topo.src, topo.rel_types, topo.dst, strict=True)
    )
    assert edges == [("a", "RUNS_ON", "b"), ("b", "LOCATED_IN", "c")]
    assert [topo.class_names[c] for c in topo.classes] == ["application", "virtual_machine", "site"]
    assert STATUS_ORDER[topo.statuses[0]] == Status.DOWN
    assert list(topo.redundancy) == [0] and topo.redundancy[0][0].members == ("b",)
    assert topo.number(CiId("c")) == 2
    store.upsert_cis([ci("c", "site")], ctx())  # unchanged: same snapshot
    assert store.topology() is topo
    store.upsert_cis([ci("c", "site", status=Status.DOWN)], ctx())
    assert store.topology().generation != topo.generation


def test_topology_names_each_cis_teams_and_moves_when_they_change(store):
    store.upsert_cis(
        [
            ci("a", "application", owner="team-shop", support_group="team-ops"),
            ci("b", "virtual_machine", support_group="team-ops"),
            ci("c", "site"),
            ci("d", "database", owner="team-dba", support_group="team-dba"),
        ],
        ctx(),
    )
    topo = store.topology()
    columns = topo.teams
    assert columns is not None

    def teams(t):
        d = t.teams
        return {
            ci_id: (
                d.names[d.owner[n]] if d.owner[n] >= 0 else None,
                d.names[d.support[n]] if d.support[n] >= 0 else None,
            )
            for n, ci_id in enumerate(t.ids)
        }

    assert teams(topo) == {
        "a": ("team-shop", "team-ops"),
        "b": (None, "team-ops"),
        "c": (None, None),
        "d": ("team-dba", "team-dba"),
    }
    assert sorted(columns.names) == ["team-dba", "team-ops", "team-shop"]  # each name once
    # a new owner is a change of who to call: the snapshot moves (an index built from it
    # would name the old team)
    store.upsert_cis([ci("c", "site", owner="team-dc")], ctx(T0 + timedelta(hours=1)))
    moved = store.topology()
    assert moved.generation != topo.generation
    assert teams(moved)["c"] == ("team-dc", None)


def test_a_status_change_updates_a_topology_without_reading_it_again(store):
    group = RedundancyGroup(name="g", members=("b",))
    store.upsert_cis(
        [ci("a", "application", redundancy=(group,)), ci("b", "virtual_machine"), ci("c")],
        ctx(),
    )
    store.upsert_relationships([rel("a", "RUNS_ON", "b")], ctx())
    topo = store.topology()
    assert topo.structure is not None
    assert store.statuses_since(topo) is topo  # nothing changed
    store.upsert_cis([ci("b", "virtual_machine", status=Status.DOWN)], ctx(T0 + timedelta(1)))
    current = store.statuses_since(topo)
    assert current is not None and current is not topo
    assert current.generation != topo.generation and store.topology() is current
    assert STATUS_ORDER[current.statuses[current.number(CiId("b"))]] == Status.DOWN
    assert list(current.statuses) == list(store._build_topology().statuses)  # a full read's
    assert current.src is topo.src and current.ids is topo.ids and current.teams is topo.teams
    store.retire_cis([CiId("c")], ctx(T0 + timedelta(2)))  # a retirement is a status too
    retired = store.statuses_since(current)
    assert retired is not None
    assert STATUS_ORDER[retired.statuses[retired.number(CiId("c"))]] == Status.RETIRED
    # anything else the topology holds moved: read it again
    later = T0 + timedelta(3)
    for change in (
        lambda: store.upsert_cis([ci("d")], ctx(later)),
        lambda: store.upsert_cis([ci("c", "site")], ctx(later)),
        lambda: store.upsert_cis([ci("c", "site", owner="team-dc")], ctx(later)),
        lambda: store.upsert_cis([ci("b", "virtual_machine", support_group="ops")], ctx(later)),
        lambda: store.upsert_cis(
            [ci("a", "application", redundancy=(RedundancyGroup(name="h", members=("b",)),))],
            ctx(later),
        ),
        lambda: store.upsert_relationships([rel("a", "DEPENDS_ON", "c")], ctx(later)),
        lambda: store.delete_relationships([(CiId("a"), "DEPENDS_ON", CiId("c"))], ctx(later)),
        lambda: store.delete_cis([CiId("d")], ctx(later)),
    ):
        before = store.topology()
        change()
        assert store.statuses_since(before) is None
    # a change of other fields moves no part of the topology but its statuses, if anything
    before = store.topology()
    store.upsert_cis([ci("c", "site", owner="team-dc", description="lobby")], ctx(later))
    assert store.statuses_since(before) is not None


def _move_generation_like_an_earlier_release(store) -> None:
    """What a writer of a release before ``Topology.structure`` did on any change."""
    from graph.sqlite_store import SqliteStore

    if isinstance(store, SqliteStore):
        with store._write() as db:
            db.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
    else:
        with store._session() as session:
            session.run("MATCH (m:Meta {key: 'generation'}) SET m.value = m.value + 1").consume()


def test_a_writer_that_does_not_count_status_moves_forces_a_whole_read(store):
    """An earlier release (a replica not yet upgraded) moves the generation alone: each of
    its changes counts as structural, so no topology is ever patched over one of them."""
    store.upsert_cis([ci("a", "application"), ci("b")], ctx())
    topo = store.topology()
    _move_generation_like_an_earlier_release(store)
    assert store.statuses_since(topo) is None
    moved = store.topology()  # a whole read; then status-only changes are patched again
    store.upsert_cis([ci("b", status=Status.DOWN)], ctx(T0 + timedelta(1)))
    assert store.statuses_since(moved) is not None


# -- import engine support --------------------------------------------------------------------


def test_identifiers_are_indexed_normalised_and_follow_updates(store):
    store.upsert_cis(
        [
            ci("a", attributes={"serial_number": " SN-1 ", "fqdn": "A.corp"}),
            ci("b", attributes={"serial_number": "sn-1"}),
            ci("c"),
        ],
        ctx(),
    )
    assert store.match_identifiers("serial_number", ["sn-1", "sn-9"]) == {"sn-1": ["a", "b"]}
    assert store.match_identifiers("fqdn", ["a.corp"]) == {"a.corp": ["a"]}
    store.upsert_cis([ci("a", attributes={"fqdn": "new.corp"})], ctx())
    assert store.match_identifiers("serial_number", ["sn-1"]) == {"sn-1": ["b"]}
    assert store.match_identifiers("fqdn", ["a.corp", "new.corp"]) == {"new.corp": ["a"]}
    store.delete_cis(["b"], ctx())
    assert store.match_identifiers("serial_number", ["sn-1"]) == {}
    with pytest.raises(ValidationError):
        store.match_identifiers("name", ["a"])


def test_source_records_and_runs(store):
    from graph.model import ImportRun, RunStatus, SourceRecord

    records = [
        SourceRecord(
            source="csv", key="k1", ci=CiId("a"), digest="d1", last_run="r1", last_seen=T0
        ),
        SourceRecord(
            source="csv",
            kind="relationship",
            key="a|DEPENDS_ON|b",
            ci=CiId("a"),
            last_run="r1",
            last_seen=T0,
        ),
        SourceRecord(source="other", key="k1", ci=CiId("b"), last_run="r2", last_seen=T0),
    ]
    store.apply([ci("a"), ci("b")], [rel("a", "DEPENDS_ON", "b")], ctx(), source_records=records)
    assert store.source_records("csv") == records[:2]
    gone = records[0].model_copy(update={"absent_since": T0 + timedelta(days=1)})
    store.put_source_records([gone])
    assert store.source_records("csv")[0] == gone
    assert store.delete_source_records("csv", [("ci", "k1"), ("ci", "nope")]) == 1
    assert [r.key for r in store.source_records("csv")] == ["a|DEPENDS_ON|b"]
    with pytest.raises(ValidationError):  # a failed batch writes no source records either
        store.apply(
            [ci("c")], [rel("c", "DEPENDS_ON", "ghost")], ctx(), source_records=[records[0]]
        )
    assert [r.key for r in store.source_records("csv")] == ["a|DEPENDS_ON|b"]

    r1 = ImportRun(id="r1", source="csv", format="csv", started_at=T0)
    r2 = ImportRun(id="r2", source="csv", format="csv", started_at=T0 + timedelta(hours=1))
    store.put_run(r1)
    store.put_run(r2)
    done = r1.model_copy(
        update={"status": RunStatus.SUCCEEDED, "finished_at": T0, "counts": {"created": 2}}
    )
    store.put_run(done)
    assert store.get_run("r1") == done
    assert [r.id for r in store.list_runs("csv")] == ["r2", "r1"]
    assert store.list_runs("other") == []
    assert store.get_run("zzz") is None


def test_neighbourhood_limit_keeps_the_first_ids_and_names_fold_unicode(store):
    store.upsert_cis([ci("hub"), *(ci(f"n{i}") for i in (5, 3, 9, 1))], ctx())
    store.upsert_relationships([rel(f"n{i}", "DEPENDS_ON", "hub") for i in (5, 3, 9, 1)], ctx())
    sub = store.neighbourhood(["hub"], direction=Direction.IN, depth=1, limit=3)
    assert [c.id for c in sub.cis] == ["hub", "n1", "n3"]
    store.upsert_cis([ci("u", name="ÉCOLE Zürich")], ctx())
    assert store.count_cis(CiFilter(name_contains="école zür")) == 1


def test_integers_beyond_64_bits_are_refused():
    with pytest.raises(ValueError, match="64 bits"):
        ci("a", attributes={"big": 2**63})
    assert ci("a", attributes={"big": 2**63 - 1}).attributes["big"] == 2**63 - 1
