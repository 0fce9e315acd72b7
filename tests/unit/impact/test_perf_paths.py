"""The fast paths of ``impact.propagation`` that small graphs do not take on their own: the
scipy BFS of the tail (a small graph's tail takes the numpy frontier), the frontier giving up
past its budget, start times too far apart for one scipy call, and the scratch times wrapping
around. Each must equal the brute-force reference, as the default path does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import impact.index
import impact.propagation
from impact.propagation import ImpactState, propagate

from . import test_propagation_reference as reference
from .conftest import group

# the property test's body, without its own settings (a module attribute: not collected twice)
_reference_check = reference.test_propagate_equals_reference.hypothesis.inner_test


@contextmanager
def _tail_path(path: str) -> Iterator[None]:
    saved = (impact.propagation._SMALL, impact.propagation._SMALL_REACH, impact.index.CHAIN)
    if path in ("scipy", "split"):  # no numpy frontier first
        impact.propagation._SMALL = 0
    if path == "give up":  # the frontier starts, gives up at once, undoes, then scipy
        impact.propagation._SMALL_REACH = 0
    if path == "split":  # a chain of virtual roots too short for most start times
        impact.index.CHAIN = 2
    try:
        yield
    finally:
        impact.propagation._SMALL, impact.propagation._SMALL_REACH, impact.index.CHAIN = saved


@pytest.mark.parametrize("path", ["scipy", "give up", "split"])
def test_tail_paths_equal_reference(path: str) -> None:
    check = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])(
        given(reference.scenarios())(_reference_check)
    )
    with _tail_path(path):
        check()


def _answer(radius: impact.propagation.BlastRadius) -> list[tuple[int, int, int, int]]:
    return sorted(
        (int(n), radius.code_of(int(n)), radius.distance_of(int(n)), len(radius.path(int(n))))
        for n in radius.affected
    )


def test_scratch_times_wrap_around(graph) -> None:
    g = graph(
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
    failures = {g.n("host"): ImpactState.DOWN}
    want = _answer(propagate(g.index, failures))
    assert {g.name(n) for n, code, _, _ in want if code == 2} == {"app", "svc", "ann"}
    scratch = g.index.borrow()
    scratch.zero = 2**31 - 1 - 3 * scratch.window  # two queries before the wrap
    g.index.give_back(scratch, np.empty(0, dtype=np.int32))
    for _ in range(5):
        assert _answer(propagate(g.index, failures)) == want
    assert scratch.zero < 2**31 - 1 - 3 * scratch.window  # it wrapped, and kept working
