"""The import planner's snapshot of what exists: the batched lookups answer as the single ones."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from graph.model import ConfigurationItem, Relationship, WriteContext
from graph.sqlite_store import SqliteStore
from graph.sync_plan import _Snapshot

IDS = [f"c{i}" for i in range(12)]
TYPES = ["DEPENDS_ON", "RUNS_ON", "NOT_A_TYPE"]


def _snapshot(tmp: Path, edges: list[tuple[str, str, str]]) -> _Snapshot:
    store = SqliteStore(tmp)
    ctx = WriteContext(actor="test")
    store.upsert_cis(
        [ConfigurationItem.model_validate({"id": c, "class": "server", "name": c}) for c in IDS],
        ctx,
    )
    store.upsert_relationships(
        [Relationship(source=s, type=t, target=d) for s, t, d in edges if s != d], ctx
    )
    try:
        return _Snapshot(store)
    finally:
        store.close()


key = st.tuples(
    st.sampled_from([*IDS, "unknown", ""]), st.sampled_from(TYPES), st.sampled_from([*IDS, "x"])
)


@settings(max_examples=40, deadline=None)
@given(
    edges=st.lists(
        st.tuples(st.sampled_from(IDS), st.sampled_from(TYPES[:2]), st.sampled_from(IDS)),
        unique=True,
        max_size=30,
    ),
    asked=st.lists(key, max_size=40),
)
def test_batched_lookups_match_single_ones(tmp_path_factory, edges, asked) -> None:
    snapshot = _snapshot(tmp_path_factory.mktemp("store"), edges)
    assert snapshot.has_relationships(asked) == [snapshot.has_relationship(k) for k in asked]
    stored = {(s, t, d) for s, t, d in edges if s != d}
    assert snapshot.has_relationships(asked) == [k in stored for k in asked]
    ids = [k[0] for k in asked]
    assert snapshot._positions(ids).tolist() == [
        -1 if (p := snapshot._position(ci)) is None else p for ci in ids
    ]


def test_empty_store(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path, [])
    assert snapshot.has_relationships([("c1", "DEPENDS_ON", "c2")]) == [False]
    assert snapshot.has_relationships([]) == []
