"""The benchmark generator: deterministic, the documented shape, valid for both stores and the
importers. No timings here (they belong in ``make bench``)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from benchmarks.generate import (
    CLASSES,
    LAYERS,
    TYPES,
    GeneratedCmdb,
    diamond_ladder,
    generate,
    generate_changes,
    layer_sizes,
    star,
    write_csv,
    write_json,
)
from benchmarks.impact_peers import make_scipy, propagation_graph
from graph.model import DEFAULT_REGISTRY, ChangeKind, Propagation
from importers.base import SourceFile
from importers.generic import parse_csv, parse_json

SIZE = 2000


@pytest.fixture(scope="module")
def cmdb() -> GeneratedCmdb:
    return generate(SIZE, seed=7)


def _edges(c: GeneratedCmdb) -> set[tuple[str, str, str]]:
    return {
        (c.ids[s], TYPES[t], c.ids[d])
        for s, t, d in zip(c.src.tolist(), c.types.tolist(), c.dst.tolist(), strict=True)
    }


def test_same_seed_same_cmdb_and_other_seed_differs(cmdb: GeneratedCmdb) -> None:
    again = generate(SIZE, seed=7)
    assert again.ids == cmdb.ids
    assert np.array_equal(again.src, cmdb.src)
    assert np.array_equal(again.dst, cmdb.dst)
    assert np.array_equal(again.types, cmdb.types)
    assert [again.record(i) for i in range(0, SIZE, 97)] == [
        cmdb.record(i) for i in range(0, SIZE, 97)
    ]
    other = generate(SIZE, seed=8)
    assert _edges(other) != _edges(cmdb)


def test_layer_counts_follow_the_fractions(cmdb: GeneratedCmdb) -> None:
    assert cmdb.ci_count == SIZE
    counts = layer_sizes(SIZE)
    assert sum(counts.values()) == SIZE
    by_class = cmdb.class_counts()
    for spec in LAYERS[:-1]:
        expected = max(spec.minimum, round(SIZE * spec.fraction))
        assert counts[spec.name] == expected
        assert cmdb.layer(spec.name).count == expected
    assert by_class["virtual_machine"] == 400  # 20 %
    assert by_class["server"] == 60  # 3 %
    assert by_class["application"] == 160  # 8 %
    assert by_class["database"] + by_class["database_cluster"] == 80  # 4 %
    assert by_class["user"] > SIZE / 2  # the rest
    big = layer_sizes(1_000_000)
    assert (big["site"], big["cluster"], big["shared"], big["bsvc"]) == (20, 2000, 100, 8000)


def test_classes_and_types_are_the_registry_s_and_propagate_towards_sources(
    cmdb: GeneratedCmdb,
) -> None:
    registry = DEFAULT_REGISTRY
    for name in CLASSES:
        registry.ci_class(name)
    for name in TYPES:
        assert registry.relationship_type(name).propagation in (
            Propagation.TO_SOURCE,
            Propagation.NONE,
        )
    assert set(cmdb.type_counts()) == set(TYPES)  # every type the generator knows is used
    assert set(cmdb.class_counts()) == set(CLASSES)
    for cis in cmdb.iter_cis(500):  # every CI is a valid model object
        for ci in cis:
            registry.ci_class(ci.ci_class)
    rels = [r for chunk in cmdb.iter_relationships(1000) for r in chunk]
    assert len(rels) == cmdb.relationship_count == len(_edges(cmdb))
    assert all(r.source != r.target for r in rels)


def test_relationships_point_the_failure_way(cmdb: GeneratedCmdb) -> None:
    ids = cmdb.ids
    classes = cmdb.classes
    seen: Counter[tuple[str, str, str]] = Counter()
    for s, t, d in zip(cmdb.src.tolist(), cmdb.types.tolist(), cmdb.dst.tolist(), strict=True):
        seen[(CLASSES[classes[s]], TYPES[t], CLASSES[classes[d]])] += 1
    assert ("virtual_machine", "HOSTED_ON", "server") in seen
    assert ("server", "LOCATED_IN", "site") in seen
    assert ("application", "RUNS_ON", "virtual_machine") in seen
    assert ("application", "DEPENDS_ON", "database_cluster") in seen
    assert ("business_service", "DEPENDS_ON", "application") in seen
    assert ("user", "USES", "business_service") in seen
    assert ("user", "MEMBER_OF", "group") in seen
    assert ("group", "OWNS", "application") in seen
    assert not any(src == "site" for src, _, _ in seen)  # nothing flows out of a site
    assert ids[0].startswith("site-")


def test_redundancy_members_are_real_dependencies(cmdb: GeneratedCmdb) -> None:
    edges = _edges(cmdb)
    groups = 0
    names: Counter[str] = Counter()
    for i in range(cmdb.ci_count):
        for group in cmdb.groups_of(i):
            groups += 1
            names[group.name] += 1
            assert len(group.members) >= 2
            for member in group.members:
                assert any((cmdb.ids[i], t, member) in edges for t in TYPES), (
                    cmdb.ids[i],
                    member,
                )
    assert groups == cmdb.redundancy.count
    assert {"vms", "hosts", "quorum", "power", "uplinks"} <= set(names)
    cluster = cmdb.layer("dbc")
    quorum = cmdb.groups_of(cluster.start)[0]
    assert quorum.name == "quorum"
    assert len(quorum.members) == 3
    assert quorum.down_below.needed(3) == 2
    app = cmdb.ci(cmdb.layer("app").start)
    assert app.redundancy[0].name == "vms" and 2 <= len(app.redundancy[0].members) <= 4


def test_app_calls_have_cycles_and_shared_services_are_hubs(cmdb: GeneratedCmdb) -> None:
    app = cmdb.layer("app")
    is_app = (cmdb.src >= app.start) & (cmdb.src < app.stop)
    calls = is_app & (cmdb.dst >= app.start) & (cmdb.dst < app.stop)
    g = nx.DiGraph(zip(cmdb.src[calls].tolist(), cmdb.dst[calls].tolist(), strict=True))
    assert not nx.is_directed_acyclic_graph(g)
    shared = cmdb.layer("shared")
    to_shared = (cmdb.dst >= shared.start) & (cmdb.dst < shared.stop) & is_app
    dependents = np.bincount(cmdb.dst[to_shared] - shared.start, minlength=shared.count)
    assert dependents[0] == dependents.max()  # dns: the first and biggest hub
    assert dependents[0] > app.count / 4


def test_topology_is_what_a_store_hands_out(cmdb: GeneratedCmdb) -> None:
    topo = cmdb.topology()
    assert topo.ids == sorted(cmdb.ids)
    assert topo.edge_count == cmdb.relationship_count
    assert topo.redundancy  # owners numbered in sorted-id order
    owner = next(iter(topo.redundancy))
    assert topo.redundancy[owner] == cmdb.groups_of(cmdb.ids.index(topo.ids[owner]))


def test_diamond_ladder_path_count() -> None:
    k, w = 5, 3
    ladder = diamond_ladder(k, w)
    assert ladder.ci_count == k * w + 1
    g = nx.DiGraph()
    for s, d in zip(ladder.src.tolist(), ladder.dst.tolist(), strict=True):
        g.add_edge(d, s)  # failure direction: the depended-on fails first
    paths = {0: 1}
    for node in nx.topological_sort(g):
        for nxt in g.successors(node):
            paths[nxt] = paths.get(nxt, 0) + paths[node]
    last = range(1 + (k - 1) * w, 1 + k * w)
    assert sum(paths[n] for n in last) == w**k
    reached, _ = make_scipy(propagation_graph(ladder.topology(), DEFAULT_REGISTRY))([0])
    assert reached.shape[0] == ladder.ci_count
    assert ladder.roots["root"] == ladder.ids[0]


def test_star_has_one_hub() -> None:
    s = star(500)
    assert s.ci_count == 501
    assert set(s.dst.tolist()) == {0}
    assert sorted(s.src.tolist()) == list(range(1, 501))


def test_changes_are_seeded_and_in_the_last_30_days(cmdb: GeneratedCmdb) -> None:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    changes = generate_changes(cmdb, 200, seed=3, now=now)
    assert changes == generate_changes(cmdb, 200, seed=3, now=now)
    assert len({c.id for c in changes}) == 200
    kinds = Counter(c.kind for c in changes)
    assert kinds[ChangeKind.DEPLOYMENT] and kinds[ChangeKind.CHANGE_REQUEST]
    known = set(cmdb.ids)
    for c in changes:
        assert c.ci in known
        assert now - timedelta(days=30) <= c.at <= now
        if c.kind is ChangeKind.CHANGE_REQUEST:
            assert c.planned_start is not None and c.planned_end is not None
            assert c.planned_start < c.planned_end


def test_csv_and_json_round_trip_through_the_generic_importer(
    cmdb: GeneratedCmdb, tmp_path: Path
) -> None:
    paths = write_csv(cmdb, tmp_path / "csv")
    inventory = parse_csv([SourceFile(name=p.name, path=p) for p in paths])
    assert [p.ci for p in inventory.cis] == [cmdb.ci(i) for i in range(cmdb.ci_count)]
    assert {(r.source_ref, r.type, r.target_ref) for r in inventory.relationships} == _edges(cmdb)
    path = write_json(cmdb, tmp_path / "cmdb.json")
    inventory = parse_json([SourceFile(name=path.name, path=path)])
    assert len(inventory.cis) == cmdb.ci_count
    assert inventory.cis[123].ci == cmdb.ci(123)
    assert len(inventory.relationships) == cmdb.relationship_count


def test_sizes_below_the_minimum_are_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        generate(10)
