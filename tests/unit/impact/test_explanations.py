"""Explanations are memoised per answer (the paths of one page share their tails) and the
nearest-first order uses a narrow sort key when it fits: both must give exactly what the
plain, unshared walk and the wide key give, whatever order the paths are asked in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import impact.propagation
from graph.errors import NotFoundError
from graph.model import Direction, Propagation
from impact.index import ImpactFilter
from impact.propagation import (
    _DEG,
    _DOWN,
    _RISK,
    STATES,
    BlastRadius,
    Hop,
    ImpactState,
    propagate,
)

from .conftest import Graph
from .test_perf_paths import _chain, _kernel
from .test_propagation_reference import scenarios

_DIRECTIONS = {Propagation.TO_SOURCE: Direction.OUT, Propagation.TO_TARGET: Direction.IN}


def _plain_cause(radius: BlastRadius, node: int, code: int) -> int:
    """``BlastRadius._cause`` as first written: no memo, rows read through ``row()``."""
    s = radius._s
    if code == _RISK:
        return int(s.p_risk[node])
    down = code == _DOWN
    times = s.t_down if down else s.t_fail
    t = radius._time(times, node)
    if t == 0:
        return -1
    sources, _ = radius.index.reverse.row(node)
    for u in sources[times[sources] == radius._zero + t - 1].tolist():
        cols, _ = radius.view.csr.row(u)
        at = int(np.searchsorted(cols, node))
        if at < cols.shape[0] and int(cols[at]) == node:
            return int(u)
    return _plain_group_cause(radius, node, t - 1, down)


def _plain_group_cause(radius: BlastRadius, node: int, step: int, down: bool) -> int:
    """``BlastRadius._group_cause`` as first written."""
    g, s = radius.index.groups, radius._s
    lo, hi = np.searchsorted(g.owner, (node, node + 1))
    for group in range(int(lo), int(hi)):
        rows = np.arange(g.indptr[group], g.indptr[group + 1], dtype=np.int64)
        rows = rows[radius.view.row_ok[rows] & (g.member[rows] >= 0)]
        members = g.member[rows]
        at_down = s.t_down[members].astype(np.int64) - radius._zero
        at_fail = s.t_fail[members].astype(np.int64) - radius._zero
        before = (
            radius.baseline[members].astype(np.int64)
            if radius.baseline is not None
            else np.zeros(members.shape[0], dtype=np.int64)
        )

        def verdict(by: int, group=group, at_down=at_down, at_fail=at_fail, before=before) -> int:
            lost_down = int((((at_down >= 0) & (at_down <= by)) | (before >= _DOWN)).sum())
            lost_fail = int((((at_fail >= 0) & (at_fail <= by)) | (before >= _DEG)).sum())
            if lost_down >= int(g.lose_down[group]):
                return _DOWN
            return _DEG if lost_fail >= int(g.lose_fail[group]) else 0

        now, was = verdict(step), verdict(step - 1)
        if (now == _DOWN and was < _DOWN) if down else (now >= _DEG and was == 0):
            hit = (at_down == step) if down else (at_down == step) | (at_fail == step)
            return -2 - int(rows[np.flatnonzero(hit)[0]])
    raise AssertionError(f"no cause found for CI {node} at step {step + 1}")


def _plain_path(radius: BlastRadius, node: int) -> list[Hop]:
    """``BlastRadius.path`` as first written: every hop worked out again for every CI."""
    index, s = radius.index, radius._s
    code = radius.code_of(node)
    hops: list[Hop] = []
    x, t = node, radius.distance_of(node)
    while t > 0:
        cause = _plain_cause(radius, x, code)
        group = None
        if cause <= -2:
            row = -2 - cause
            parent = int(index.groups.member[row])
            name = index.gated_type(row, radius.view)
            group = index.groups.names[int(index.groups.group[row])][1]
        else:
            parent = cause
            name = index.edge_type(parent, x, radius.view)
        direction = None
        if name is not None:
            rule = index.propagation[index.topology.type_names.index(name)]
            direction = _DIRECTIONS.get(rule, Direction.BOTH)
        hops.append(Hop(x, name, direction, group))
        x, t = parent, t - 1
        code = _DOWN if radius._time(s.t_down, x) == t else _DEG
    hops.append(Hop(x))
    return hops


@contextmanager
def _few(few: int) -> Iterator[None]:
    """Pages of up to ``few`` CIs have their states read as scalars, longer ones as arrays."""
    saved = impact.propagation._FEW
    impact.propagation._FEW = few
    try:
        yield
    finally:
        impact.propagation._FEW = saved


def _memoised_paths_equal_the_plain_walk(scenario) -> None:
    names, edges, classes, redundancy, failed, depth, only_classes, only_types, base = scenario
    g = Graph(edges, nodes=names, classes=classes, redundancy=redundancy)
    baseline = None
    if base is not None:
        baseline = np.zeros(g.topology.node_count, dtype=np.int8)
        for name, code in base.items():
            baseline[g.n(name)] = code
    query = {
        "failures": {g.n(k): STATES[v] for k, v in failed.items()},
        "filter": ImpactFilter(depth=depth, classes=only_classes, types=only_types),
        "baseline": baseline,
    }
    nearest = propagate(g.index, **query)
    plain = {int(n): _plain_path(nearest, int(n)) for n in nearest.nodes}
    rules = {int(n): nearest.rule(int(n)) for n in nearest.nodes}
    for order in (nearest.nodes.tolist(), nearest.nodes[::-1].tolist()):
        radius = propagate(g.index, **query)
        for node in order:
            assert radius.path(node) == plain[node]
            assert radius.path(node) == plain[node]  # asked again: from the memo
            assert radius.rule(node) == rules[node]
        for few in (0, len(order)):  # a page at once, its states read as arrays or scalars
            with _few(few):
                batch = propagate(g.index, **query)
                assert batch.paths(order) == [plain[n] for n in order]
                assert [batch.rule(n) for n in order] == [rules[n] for n in order]
                assert batch.paths(order[:1] * 2) == [plain[n] for n in order[:1] * 2]
                part = propagate(g.index, **query)  # half of a page explained before
                assert part.paths(order[::2]) == [plain[n] for n in order[::2]]
                assert part.paths(order) == [plain[n] for n in order]


@pytest.mark.parametrize(("kind", "small_group"), [("compiled", 32), ("python", 32), ("python", 0)])
def test_memoised_paths_equal_the_plain_walk_in_any_order(
    kind: str, small_group: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both link finders (compiled, plain Python) and both ways of counting a group's losses
    (plain Python up to ``_SMALL_GROUP`` members, numpy above) give the first-written walk."""
    monkeypatch.setattr(impact.propagation, "_SMALL_GROUP", small_group)
    check = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])(
        given(scenarios())(_memoised_paths_equal_the_plain_walk)
    )
    with _kernel(kind):
        check()


@pytest.mark.parametrize("few", [0, 8])
def test_paths_of_unaffected_cis_are_refused(few: int) -> None:
    g = Graph([("app", "RUNS_ON", "vm"), ("other", "RUNS_ON", "vm2")])
    radius = propagate(g.index, {g.n("vm"): STATES[3]})
    with _few(few):  # states read as arrays, as scalars
        assert [h.node for h in radius.paths([g.n("app")])[0]] == [g.n("app"), g.n("vm")]
        with pytest.raises(NotFoundError):
            radius.paths([g.n("app"), g.n("other")])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_narrow_and_wide_sort_keys_agree(scenario) -> None:
    names, edges, classes, redundancy, failed, depth, only_classes, only_types, _ = scenario
    g = Graph(edges, nodes=names, classes=classes, redundancy=redundancy)
    failures = {g.n(k): STATES[v] for k, v in failed.items()}
    filter = ImpactFilter(depth=depth, classes=only_classes, types=only_types)
    narrow = propagate(g.index, failures, filter=filter).nodes
    saved = impact.propagation._I32_MAX
    impact.propagation._I32_MAX = 0  # no key fits: the int64 key
    try:
        wide = propagate(g.index, failures, filter=filter).nodes
    finally:
        impact.propagation._I32_MAX = saved
    assert narrow.dtype == wide.dtype == np.int32
    assert narrow.tolist() == wide.tolist()
    radius = propagate(g.index, failures, filter=filter)
    by_hand = sorted(zip(radius.distances.tolist(), radius.affected.tolist(), strict=True))
    assert narrow.tolist() == [node for _, node in by_hand]


def test_warm_up_readies_the_explanation_kernels(graph) -> None:
    """The compiled back-walk and group kernels get, from warm_up, the argument types queries
    give them: explaining pages (group links included, with or without a baseline, filtered
    or not) compiles nothing more."""
    g = _chain(graph)
    with _kernel("compiled"):
        impact.propagation.warm_up(g.index)
        kernels = (impact.propagation._links_kernel(), impact.propagation._group_kernel())
        before = [len(k.signatures) for k in kernels]
        baseline = np.zeros(g.index.node_count, dtype=np.int8)  # nothing failed before
        for query in ({}, {"baseline": baseline}, {"filter": ImpactFilter(depth=4)}):
            for page in ([g.n("ann")], [g.n("ann"), g.n("svc")] * 5):  # scalars, arrays
                radius = propagate(g.index, {g.n("host"): ImpactState.DOWN}, **query)
                path = radius.paths(page)[0]
                assert [h.group for h in path] == [None, None, "vms", None, None][: len(path)]
        assert [len(k.signatures) for k in kernels] == before
