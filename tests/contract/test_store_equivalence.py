"""Random sequences of operations leave the same observable state on both stores."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from graph.errors import CmdbError
from graph.model import CiId, ConfigurationItem, Relationship, Status, WriteContext
from graph.sqlite_store import SqliteStore
from tests.conftest import wipe_neo4j

IDS = ["a", "b", "c", "d", "e"]
T0 = datetime(2026, 3, 1, tzinfo=UTC)

cis = st.builds(
    lambda id, cls, status, attrs, crit: ConfigurationItem(
        id=CiId(id),
        **{"class": cls},
        name=f"n-{id}",
        status=status,
        attributes=attrs,
        criticality=crit,
    ),
    st.sampled_from(IDS),
    st.sampled_from(["server", "application", "database", "spaceship"]),
    st.sampled_from(list(Status)),
    st.dictionaries(
        st.sampled_from(["x", "y"]), st.integers(-3, 3) | st.text(max_size=3), max_size=2
    ),
    st.none() | st.integers(1, 4),
)
rels = st.builds(
    lambda s, t, d: Relationship(source=CiId(s), type=t, target=CiId(d)),
    st.sampled_from(IDS),
    st.sampled_from(["DEPENDS_ON", "RUNS_ON", "NOPE"]),
    st.sampled_from(IDS),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("upsert_cis"), st.lists(cis, max_size=4)),
        st.tuples(st.just("upsert_relationships"), st.lists(rels, max_size=4)),
        st.tuples(st.just("delete_relationships"), st.lists(rels.map(lambda r: r.key), max_size=2)),
        st.tuples(st.just("retire_cis"), st.lists(st.sampled_from(IDS), max_size=2, unique=True)),
        st.tuples(st.just("delete_cis"), st.lists(st.sampled_from(IDS), max_size=2, unique=True)),
    ),
    max_size=12,
)


def _server(ci_id: str) -> ConfigurationItem:
    return ConfigurationItem(id=CiId(ci_id), **{"class": "server"}, name=f"n-{ci_id}")


def observe(store) -> dict:
    topo = store.topology()
    return {
        "cis": [c.model_dump(mode="json") for c in store.list_cis(first=100).items],
        "rels": [r.model_dump(mode="json") for r in store.iter_relationships()],
        "history": [c.model_dump(mode="json", exclude={"id"}) for c in store.history(limit=10_000)],
        "topology": (
            topo.ids,
            sorted(zip(topo.src.tolist(), topo.rel_types.tolist(), topo.dst.tolist(), strict=True)),
            topo.statuses.tolist(),
        ),
    }


def run(store, ops) -> list[str | None]:
    outcomes: list[str | None] = []
    for step, (name, arg) in enumerate(ops):
        ctx = WriteContext(actor="prop", at=T0 + timedelta(seconds=step))
        try:
            getattr(store, name)(arg, ctx)
            outcomes.append(None)
        except CmdbError as exc:
            outcomes.append(type(exc).__name__)
    return outcomes


@pytest.mark.neo4j
def test_random_operations_leave_the_same_state(neo4j_server):
    from graph.neo4j_store import Neo4jStore

    neo = Neo4jStore(neo4j_server.uri, user=neo4j_server.user, password=neo4j_server.password)

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(operations)
    @example(  # retiring out of id order: both stores number the history in the caller's order
        [
            ("upsert_cis", [_server("a"), _server("b")]),
            ("retire_cis", [CiId("b"), CiId("a")]),
        ]
    )
    def check(ops):
        wipe_neo4j(neo4j_server)
        with tempfile.TemporaryDirectory() as tmp:
            embedded = SqliteStore(Path(tmp))
            try:
                assert run(embedded, ops) == run(neo, ops)
                assert observe(embedded) == observe(neo)
            finally:
                embedded.close()

    try:
        check()
    finally:
        neo.close()
