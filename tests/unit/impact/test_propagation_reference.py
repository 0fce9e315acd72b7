"""Property tests: ``propagate`` equals a brute-force simulation on random graphs with cycles,
redundancy groups, baselines and filters, and every explanation is a valid chain."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.model import DEFAULT_REGISTRY, CiId, Propagation
from impact.index import ImpactFilter
from impact.propagation import STATES, ImpactState, propagate

from .conftest import DEG, DOWN, Graph, group, reference

TYPES = ["DEPENDS_ON", "RUNS_ON", "CONTAINS", "PEERS_WITH", "OWNS", "USES"]
CLASSES = ["application", "server", "user"]


@st.composite
def scenarios(draw: st.DrawFn):
    size = draw(st.integers(2, 10))
    names = [f"n{i}" for i in range(size)]
    node = st.sampled_from(names)
    edges = draw(
        st.lists(st.tuples(node, st.sampled_from(TYPES), node), max_size=size * 3, unique=True)
    )
    classes = {n: draw(st.sampled_from(CLASSES)) for n in names}
    redundancy = {}
    for owner in draw(st.lists(node, max_size=3, unique=True)):
        groups = []
        for k in range(draw(st.integers(1, 2))):
            members = draw(
                st.lists(
                    st.sampled_from([n for n in names if n != owner] + ["ghost"]),
                    min_size=1,
                    max_size=4,
                    unique=True,
                )
            )
            # most members really are depended on, so the group gates something
            for m in members:
                if m != "ghost" and draw(st.integers(0, 4)) > 0:
                    edge = (owner, draw(st.sampled_from(["DEPENDS_ON", "RUNS_ON"])), m)
                    if edge not in edges:
                        edges.append(edge)
            down = draw(st.one_of(st.integers(0, 4), st.sampled_from([50.0, 100.0])))
            degraded = draw(st.one_of(st.integers(0, 4), st.sampled_from([50.0, 66.0, 100.0])))
            groups.append(group(f"g{k}", *members, down=down, degraded=degraded))
        redundancy[owner] = groups
    failed = draw(st.dictionaries(node, st.sampled_from([DOWN, DEG]), min_size=1, max_size=3))
    depth = draw(st.one_of(st.none(), st.integers(0, 4)))
    only_classes = draw(st.one_of(st.just(frozenset()), st.frozensets(st.sampled_from(CLASSES))))
    only_types = draw(st.one_of(st.just(frozenset()), st.frozensets(st.sampled_from(TYPES))))
    baseline = draw(
        st.one_of(st.none(), st.dictionaries(node, st.sampled_from([0, DEG, DOWN]), max_size=4))
    )
    return names, edges, classes, redundancy, failed, depth, only_classes, only_types, baseline


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_propagate_equals_reference(scenario) -> None:
    names, edges, classes, redundancy, failed, depth, only_classes, only_types, baseline = scenario
    g = Graph(edges, nodes=names, classes=classes, redundancy=redundancy)
    base = None
    if baseline is not None:
        base = np.zeros(g.topology.node_count, dtype=np.int8)
        for name, code in baseline.items():
            base[g.n(name)] = code
    # a query before, released: its working arrays are reused and must come back clean
    assert propagate(g.index, dict.fromkeys(map(g.n, names[:2]), ImpactState.DOWN)).count
    radius = propagate(
        g.index,
        {g.n(k): STATES[v] for k, v in failed.items()},
        filter=ImpactFilter(depth=depth, classes=only_classes, types=only_types),
        baseline=base,
    )
    want_state, want_time, history = reference(
        edges,
        names,
        classes,
        redundancy,
        failed,
        depth=depth,
        only_classes=only_classes,
        only_types=only_types,
        baseline=baseline,
    )
    got_state = {name: radius.code_of(g.n(name)) for name in names}
    assert got_state == want_state
    assert sorted(g.name(n) for n in radius.affected) == sorted(
        k for k, v in want_state.items() if v
    )
    assert sorted(radius.nodes.tolist()) == sorted(radius.affected.tolist())
    for node, code, distance in zip(radius.affected, radius.states, radius.distances, strict=True):
        assert (int(code), int(distance)) == (radius.code_of(node), radius.distance_of(node))
    for name in names:
        node = g.n(name)
        if want_state[name]:
            assert radius.distance_of(node) == want_time[name], name
            _check_path(g, radius, node, history, only_types, redundancy)
        else:
            assert radius.distance_of(node) == -1


def _check_path(g, radius, node, history, only_types, redundancy) -> None:
    hops = radius.path(node)
    distance = radius.distance_of(node)
    assert len(hops) == distance + 1
    assert hops[-1].relationship is None
    assert g.name(hops[-1].node) in {g.name(n) for n in radius.failed}
    level = radius.code_of(node)
    for i, hop in enumerate(hops[:-1]):
        nxt = hops[i + 1].node
        x, y = g.name(hop.node), g.name(nxt)
        t = distance - i
        assert hop.relationship is not None
        assert not only_types or hop.relationship in only_types
        rule = DEFAULT_REGISTRY.relationship_type(hop.relationship).propagation
        stored = set(g.edges)
        carries = (
            (x, hop.relationship, y) in stored and rule in (Propagation.TO_SOURCE, Propagation.BOTH)
        ) or (
            (y, hop.relationship, x) in stored and rule in (Propagation.TO_TARGET, Propagation.BOTH)
        )
        assert carries, (x, hop.relationship, y)
        # the next CI had failed, badly enough, one step earlier
        assert history[min(t - 1, len(history) - 1)][y] >= DEG
        if hop.group is None:
            assert history[min(t - 1, len(history) - 1)][y] >= min(level, DOWN)
        else:
            assert any(grp.name == hop.group and CiId(y) in grp.members for grp in redundancy[x])
        level = DEG


def test_rule_text_names_the_state(graph) -> None:
    g = graph(
        [("app", "RUNS_ON", "vm1"), ("app", "RUNS_ON", "vm2"), ("app", "RUNS_ON", "vm3")],
        redundancy={"app": [group("vms", "vm1", "vm2", "vm3", down=2, degraded=3)]},
    )
    one = propagate(g.index, {g.n("vm1"): ImpactState.DOWN})
    assert one.rule(g.n("app")) == "group 'vms': 2 of 3 members fully up, needs 3: degraded"
    two = propagate(g.index, {g.n("vm1"): ImpactState.DOWN, g.n("vm2"): ImpactState.DOWN})
    assert two.rule(g.n("app")) == "group 'vms': 1 of 3 members up, needs 2: down"
