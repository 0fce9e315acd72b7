"""Propagation on small hand-built graphs: directions, cycles, filters, redundancy, paths."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import impact.causes
import impact.changes
import impact.index
import impact.priority
import impact.propagation
import impact.testing
from graph.errors import LimitExceededError, NotFoundError, UnknownClassError
from impact.index import ImpactFilter
from impact.propagation import ImpactState, propagate

from .conftest import Graph, group

DOWN, DEGRADED = ImpactState.DOWN, ImpactState.DEGRADED


@pytest.mark.parametrize(
    "module",
    [
        impact.index,
        impact.propagation,
        impact.causes,
        impact.changes,
        impact.priority,
        impact.testing,
    ],
)
def test_doctests(module) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


def affected(g: Graph, failures, **kw) -> dict[str, tuple[str, int]]:
    radius = propagate(g.index, {g.n(k): v for k, v in failures.items()}, **kw)
    return {
        g.name(int(n)): (radius.state_of(int(n)).value, radius.distance_of(int(n)))
        for n in radius.nodes
    }


def test_directions_follow_the_registry() -> None:
    g = Graph(
        [
            ("app", "DEPENDS_ON", "db"),  # db fails => app
            ("ns", "CONTAINS", "pod"),  # ns fails => pod
            ("team", "OWNS", "db"),  # carries nothing
            ("a", "PEERS_WITH", "b"),  # both ways
        ]
    )
    assert affected(g, {"db": DOWN}) == {"db": ("down", 0), "app": ("down", 1)}
    assert affected(g, {"ns": DOWN}) == {"ns": ("down", 0), "pod": ("down", 1)}
    assert affected(g, {"app": DOWN}) == {"app": ("down", 0)}
    assert affected(g, {"b": DOWN}) == {"b": ("down", 0), "a": ("down", 1)}
    assert affected(g, {"a": DOWN}) == {"a": ("down", 0), "b": ("down", 1)}


def test_cycles_terminate_and_keep_the_shortest_distance() -> None:
    g = Graph([("a", "DEPENDS_ON", "b"), ("b", "DEPENDS_ON", "c"), ("c", "DEPENDS_ON", "a")])
    assert affected(g, {"a": DOWN}) == {"a": ("down", 0), "c": ("down", 1), "b": ("down", 2)}


def test_degraded_travels_as_degraded_and_down_wins() -> None:
    g = Graph([("app", "DEPENDS_ON", "cache"), ("app", "DEPENDS_ON", "db")])
    assert affected(g, {"cache": DEGRADED})["app"] == ("degraded", 1)
    both = affected(g, {"cache": DEGRADED, "db": DOWN})
    assert both["app"] == ("down", 1)


def test_depth_class_and_type_filters() -> None:
    g = Graph(
        [("vm", "HOSTED_ON", "host"), ("app", "RUNS_ON", "vm"), ("ann", "USES", "app")],
        classes={"host": "server", "vm": "virtual_machine", "ann": "user"},
    )
    assert set(affected(g, {"host": DOWN}, filter=ImpactFilter(depth=1))) == {"host", "vm"}
    only = ImpactFilter(classes=frozenset({"server", "virtual_machine"}))
    assert set(affected(g, {"host": DOWN}, filter=only)) == {"host", "vm"}
    no_uses = ImpactFilter(types=frozenset({"HOSTED_ON", "RUNS_ON"}))
    assert set(affected(g, {"host": DOWN}, filter=no_uses)) == {"host", "vm", "app"}
    with pytest.raises(LimitExceededError):
        propagate(g.index, {g.n("host"): DOWN}, filter=ImpactFilter(depth=51))
    with pytest.raises(UnknownClassError):
        propagate(g.index, {g.n("host"): DOWN}, filter=ImpactFilter(classes=frozenset({"x"})))


def test_quorum_two_of_three() -> None:
    g = Graph(
        [("db", "DEPENDS_ON", f"n{i}") for i in (1, 2, 3)] + [("app", "DEPENDS_ON", "db")],
        redundancy={"db": [group("nodes", "n1", "n2", "n3", down=2, degraded=3)]},
    )
    assert affected(g, {"n1": DOWN})["db"] == ("degraded", 1)
    assert affected(g, {"n1": DOWN, "n2": DOWN})["db"] == ("down", 1)
    # a degraded member counts as up for staying up, and as lost for staying healthy
    assert affected(g, {"n1": DEGRADED, "n2": DEGRADED, "n3": DEGRADED})["db"] == ("degraded", 1)


def test_absorbed_failure_is_at_risk_and_does_not_travel() -> None:
    g = Graph(
        [("web", "RUNS_ON", "vm1"), ("web", "RUNS_ON", "vm2"), ("shop", "DEPENDS_ON", "web")],
        redundancy={"web": [group("vms", "vm1", "vm2", down=1, degraded=1)]},
    )
    result = affected(g, {"vm1": DOWN})
    assert result == {"vm1": ("down", 0), "web": ("at_risk", 1)}
    radius = propagate(g.index, {g.n("vm1"): DOWN})
    assert radius.rule(g.n("web")) == (
        "group 'vms': 1 of 2 members fully up, needs 1 (and 1 to stay up): at risk"
    )


def test_baseline_counts_in_quorums_only() -> None:
    g = Graph(
        [("web", "RUNS_ON", "vm1"), ("web", "RUNS_ON", "vm2"), ("x", "DEPENDS_ON", "vm2")],
        redundancy={"web": [group("vms", "vm1", "vm2", down=1, degraded=1)]},
    )
    baseline = np.zeros(g.topology.node_count, dtype=np.int8)
    baseline[g.n("vm2")] = 3  # already down before: x is not this failure's doing
    radius = propagate(g.index, {g.n("vm1"): DOWN}, baseline=baseline)
    assert radius.state_of(g.n("web")) is DOWN
    assert radius.state_of(g.n("x")) is None


def test_path_and_errors() -> None:
    g = Graph([("app", "DEPENDS_ON", "db"), ("ns", "CONTAINS", "app")], nodes=["lonely"])
    radius = propagate(g.index, {g.n("ns"): DOWN})
    hops = radius.path(g.n("app"))
    assert [(g.name(h.node), h.relationship, h.direction) for h in hops] == [
        ("app", "CONTAINS", "in"),
        ("ns", None, None),
    ]
    with pytest.raises(NotFoundError):
        radius.path(g.n("lonely"))
    with pytest.raises(NotFoundError):
        propagate(g.index, {99: DOWN})


def test_working_arrays_are_reused_clean() -> None:
    g = Graph([("b", "DEPENDS_ON", "a"), ("c", "DEPENDS_ON", "b"), ("d", "DEPENDS_ON", "x")])
    first = affected(g, {"a": DOWN})
    for _ in range(3):
        assert affected(g, {"x": DOWN}) == {"x": ("down", 0), "d": ("down", 1)}
        assert affected(g, {"a": DOWN}) == first
