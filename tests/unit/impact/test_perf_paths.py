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
from impact.propagation import ImpactState, propagate

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
