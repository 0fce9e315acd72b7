"""Both kernels of ``impact.propagation``, the numba-compiled one (for indexes from
``COMPILE_FROM`` CIs + entries, or any once loaded) and its plain-Python source (smaller
ones, until then), must each give the brute-force reference's answer; the scratch times must
survive wrapping around; an answer must keep its arrays when the working arrays go to the
next query."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import impact.propagation
from impact.propagation import STATE_CODES, ImpactState, propagate

from . import test_propagation_reference as reference
from .conftest import group

# the property test's body, without its own settings (a module attribute: not collected twice)
_reference_check = reference.test_propagate_equals_reference.hypothesis.inner_test


@contextmanager
def _kernel(kind: str) -> Iterator[None]:
    saved = impact.propagation._kernel_for
    if kind == "compiled":
        impact.propagation._kernel_for = lambda index: impact.propagation._kernel()
    else:
        impact.propagation._kernel_for = lambda index: impact.propagation._simulate
    try:
        yield
    finally:
        impact.propagation._kernel_for = saved


@pytest.mark.parametrize("kind", ["compiled", "python"])
def test_kernel_equals_reference(kind: str) -> None:
    check = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])(
        given(reference.scenarios())(_reference_check)
    )
    with _kernel(kind):
        check()


def test_kernels_agree_on_a_larger_graph() -> None:
    from graph.model import DEFAULT_REGISTRY
    from impact.bench import synthetic_topology
    from impact.index import build_index

    topology = synthetic_topology(3000, seed=3)
    index = build_index(topology, DEFAULT_REGISTRY)
    site = int(np.flatnonzero(topology.classes == topology.class_names.index("site"))[0])
    answers = []
    for kind in ("compiled", "python"):
        with _kernel(kind):
            radius = propagate(index, {site: ImpactState.DOWN})
            rows = zip(radius.affected, radius.states, radius.distances, strict=True)
            answers.append(sorted((int(n), int(c), int(d)) for n, c, d in rows))
    assert answers[0] == answers[1]
    assert len(answers[0]) > 1000


def _answer(radius: impact.propagation.BlastRadius) -> list[tuple[int, int, int, int]]:
    return sorted(
        (int(n), radius.code_of(int(n)), radius.distance_of(int(n)), len(radius.path(int(n))))
        for n in radius.affected
    )


def _chain(graph):
    return graph(
        [
            ("app", "RUNS_ON", "vm1"),
            ("app", "RUNS_ON", "vm2"),
            ("vm1", "HOSTED_ON", "host"),
            ("svc", "DEPENDS_ON", "app"),
            ("ann", "USES", "svc"),
        ],
        classes={"ann": "user"},
        redundancy={"app": [group("vms", "vm1", "vm2")]},
    )


def test_scratch_times_wrap_around(graph) -> None:
    g = _chain(graph)
    failures = {g.n("host"): ImpactState.DOWN}
    want = _answer(propagate(g.index, failures))
    assert {g.name(n) for n, code, _, _ in want if code == 2} == {"app", "svc", "ann"}
    scratch = g.index.borrow()
    scratch.zero = 2**31 - 1 - 3 * scratch.window  # two queries before the wrap
    g.index.give_back(scratch)
    for _ in range(5):
        assert _answer(propagate(g.index, failures)) == want
    assert scratch.zero < 2**31 - 1 - 3 * scratch.window  # it wrapped, and kept working


def test_answer_keeps_its_arrays(graph) -> None:
    g = _chain(graph)
    first = propagate(g.index, {g.n("host"): ImpactState.DOWN})
    arrays = (first.affected.copy(), first.states.copy(), first.distances.copy())
    for name in ("vm2", "app", "ann"):  # other queries, some on the same working arrays
        propagate(g.index, {g.n(name): ImpactState.DEGRADED})
    assert all(
        np.array_equal(a, b)
        for a, b in zip(arrays, (first.affected, first.states, first.distances), strict=True)
    )
    assert sorted(g.name(int(n)) for n in first.nodes) == ["ann", "app", "host", "svc", "vm1"]


def test_warm_up_keeps_working_arrays(graph) -> None:
    g = _chain(graph)
    with _kernel("compiled"):
        assert impact.propagation.warm_up(g.index) >= 0.0
    assert len(g.index._pool) == 1  # the first query finds them ready


@pytest.mark.parametrize("kind", ["compiled", "python"])
def test_working_arrays_come_back_clean(kind: str) -> None:
    """The kernel clears the per-CI state bytes and group counters it set: a run of queries
    (whole, depth-limited, with a baseline) on one index's reused working arrays answers each
    exactly as a fresh index does."""
    from graph.model import DEFAULT_REGISTRY
    from impact.bench import synthetic_topology
    from impact.index import ImpactFilter, build_index

    topology = synthetic_topology(3000, seed=5)
    reused = build_index(topology, DEFAULT_REGISTRY)
    rng = np.random.default_rng(5)
    baseline = np.zeros(topology.node_count, dtype=np.int8)
    baseline[rng.choice(topology.node_count, 200, replace=False)] = 2
    with _kernel(kind):
        for round_ in range(12):
            seeds = rng.choice(topology.node_count, 1 + round_ % 4, replace=False).tolist()
            failures = {int(n): ImpactState.DOWN for n in seeds}
            depth = None if round_ % 3 else 2
            base = baseline if round_ % 2 else None
            got = propagate(reused, failures, filter=ImpactFilter(depth=depth), baseline=base)
            answer = _answer(got)
            codes = [code for _, code, _, _ in answer]
            assert got.counts == {state: codes.count(c) for state, c in STATE_CODES.items()}
            del got  # its working arrays go back to the pool for the next round
            fresh = build_index(topology, DEFAULT_REGISTRY)
            want = _answer(
                propagate(fresh, failures, filter=ImpactFilter(depth=depth), baseline=base)
            )
            assert answer == want
        assert len(reused._pool) == 1


def test_concurrent_queries_never_share_working_arrays() -> None:
    """Threads querying one index at once (the compiled kernel releases the GIL) each get
    their own working arrays from the lock-free pool, and every answer is the one a query
    alone gets; the pool ends holding distinct scratches, at most a few."""
    from concurrent.futures import ThreadPoolExecutor

    from graph.model import DEFAULT_REGISTRY
    from impact.bench import synthetic_topology
    from impact.index import build_index

    topology = synthetic_topology(3000, seed=7)
    index = build_index(topology, DEFAULT_REGISTRY)
    rng = np.random.default_rng(7)
    cases = [
        {int(n): ImpactState.DOWN for n in rng.choice(topology.node_count, 2, replace=False)}
        for _ in range(8)
    ]
    with _kernel("compiled"):
        want = [_answer(propagate(index, failures)) for failures in cases]

        def run(k: int) -> bool:
            return _answer(propagate(index, cases[k % len(cases)])) == want[k % len(cases)]

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(run, range(160)))
    assert all(results)
    held = index._pool
    assert 1 <= len(held) <= 4 + 4 and len({id(s) for s in held}) == len(held)


@pytest.mark.parametrize("kind", ["compiled", "python"])
def test_leaves_are_answered_as_the_kernel_answers(kind: str, monkeypatch) -> None:
    """Failed CIs none of which can fail another (no plain entry and no membership in the
    filter's view) are answered without calling the kernel: the same states, distances,
    order, explanations and counts as the kernel's, with either state, under a depth or a
    class filter, and between kernel queries on the same working arrays."""
    from graph.model import DEFAULT_REGISTRY
    from impact.bench import synthetic_topology
    from impact.index import ImpactFilter, build_index

    topology = synthetic_topology(3000, seed=11)
    index = build_index(topology, DEFAULT_REGISTRY)
    rng = np.random.default_rng(11)
    filters = [
        ImpactFilter(),
        ImpactFilter(depth=0),
        ImpactFilter(classes=frozenset({"application", "business_service", "user"})),
    ]
    leaf_runs: list[int] = []
    real_leaves = impact.propagation._leaves

    def counted(*args: object) -> int:
        leaf_runs.append(1)
        return real_leaves(*args)  # type: ignore[arg-type]

    def seen(radius: impact.propagation.BlastRadius) -> tuple[object, ...]:
        nodes = radius.nodes.tolist()
        chains = [[(h.node, h.relationship) for h in p] for p in radius.paths(nodes)]
        arrays = radius.affected.tolist(), radius.states.tolist(), radius.distances.tolist()
        return _answer(radius), nodes, chains, radius.counts, arrays

    monkeypatch.setattr(impact.propagation, "_leaves", counted)
    with _kernel(kind):
        for round_ in range(60):
            seeds = rng.choice(topology.node_count, 1 + round_ % 3, replace=False).tolist()
            state = ImpactState.DOWN if round_ % 2 else ImpactState.DEGRADED
            failures = dict.fromkeys(map(int, seeds), state)
            how = filters[round_ % len(filters)]
            before = len(leaf_runs)
            got = seen(propagate(index, failures, filter=how))
            if len(leaf_runs) == before:
                continue  # not all leaves: the kernel answered it
            codes = [code for _, code, _, _ in got[0]]
            assert got[3] == {s: codes.count(c) for s, c in STATE_CODES.items()}
            with monkeypatch.context() as forced:
                forced.setattr(impact.propagation, "_LEAVES", 0)  # never: the kernel answers
                assert got == seen(propagate(index, failures, filter=how))
    assert len(leaf_runs) >= 20  # most CIs are leaves (users, top services)


def test_a_status_update_keeps_views_and_working_arrays(graph) -> None:
    """An index brought up to date with new statuses only (``with_topology``) answers from
    the filtered views and working arrays its predecessor made: none depends on statuses."""
    import dataclasses

    from impact.index import ImpactFilter

    g = _chain(graph)
    only_apps = ImpactFilter(classes=frozenset({"application"}))
    view = g.index.view(only_apps)
    failures = {g.n("host"): ImpactState.DOWN}
    want = _answer(propagate(g.index, failures))  # its working arrays back in the pool
    statuses = g.topology.statuses.copy()
    statuses[g.n("ann")] = 1
    updated = g.index.with_topology(dataclasses.replace(g.topology, statuses=statuses))
    assert updated.view(only_apps) is view
    pooled = list(g.index._pool)
    assert pooled and updated.borrow() is pooled[-1]
    assert _answer(propagate(updated, failures)) == want
