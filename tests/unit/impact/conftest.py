"""Hand-built topologies for the impact tests, and a brute-force reference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from graph.model import DEFAULT_REGISTRY, CiId, Propagation, Quorum, RedundancyGroup, Status
from graph.store import Topology
from impact.index import ImpactIndex, build_index
from impact.testing import topology_of

Edge = tuple[str, str, str]


class Graph:
    """A topology, its index, and name <-> number helpers."""

    def __init__(
        self,
        edges: Sequence[Edge],
        *,
        nodes: Sequence[str] = (),
        classes: Mapping[str, str] | None = None,
        statuses: Mapping[str, Status] | None = None,
        redundancy: Mapping[str, Sequence[RedundancyGroup]] | None = None,
    ) -> None:
        self.edges = list(edges)
        self.topology: Topology = topology_of(
            edges, nodes=nodes, classes=classes, statuses=statuses, redundancy=redundancy
        )
        self.index: ImpactIndex = build_index(self.topology, DEFAULT_REGISTRY)

    def n(self, name: str) -> int:
        return self.topology.number(CiId(name))

    def name(self, node: int) -> str:
        return self.topology.ids[node]


def group(name: str, *members: str, down: int | float = 1, degraded: int | float = 100.0):
    """A redundancy group; ints are counts, floats percents."""

    def quorum(value: int | float) -> Quorum:
        return Quorum(count=value) if isinstance(value, int) else Quorum(percent=value)

    return RedundancyGroup(
        name=name,
        members=tuple(CiId(m) for m in members),
        down_below=quorum(down),
        degraded_below=quorum(degraded),
    )


@pytest.fixture
def graph():
    return Graph


# --------------------------------------------------------------------------------------------
# The reference: a naive synchronous simulation over python dicts, written from the rules in
# docs/impact.md and sharing no code with impact.propagation.

DOWN, DEG, RISK = 3, 2, 1


def reference(
    edges: Sequence[Edge],
    names: Sequence[str],
    classes: Mapping[str, str],
    redundancy: Mapping[str, Sequence[RedundancyGroup]],
    failed: Mapping[str, int],
    *,
    depth: int | None = None,
    only_classes: frozenset[str] = frozenset(),
    only_types: frozenset[str] = frozenset(),
    baseline: Mapping[str, int] | None = None,
) -> tuple[dict[str, int], dict[str, int], list[dict[str, int]]]:
    """(state, time of final state, state after each step) per CI name."""
    base = dict(baseline or {})
    carries: list[tuple[str, str, str]] = []  # (from, to, type): from failing affects to
    for s, t, d in edges:
        if s == d or (only_types and t not in only_types):
            continue
        rule = DEFAULT_REGISTRY.relationship_type(t).propagation
        if rule in (Propagation.TO_SOURCE, Propagation.BOTH):
            carries.append((d, s, t))
        if rule in (Propagation.TO_TARGET, Propagation.BOTH):
            carries.append((s, d, t))

    def allowed(name: str) -> bool:
        return not only_classes or classes.get(name, "application") in only_classes

    member_of = {(m, owner) for owner, gs in redundancy.items() for g in gs for m in g.members}
    state = {n: 0 for n in names}
    time = {n: 0 for n in names}
    for name, code in failed.items():
        state[name] = code
    history = [dict(state)]
    step = 0
    while depth is None or step < depth:
        step += 1
        before = history[-1]
        new = dict(before)
        for v in names:
            if not allowed(v):
                continue
            best = before[v]
            for u, w, _ in carries:
                if w == v and (u, v) not in member_of and before[u] >= DEG:
                    best = max(best, before[u])
            for g in redundancy.get(v, ()):
                size = len(g.members)
                now_down = now_failed = was_down = was_failed = 0
                risk = False
                for m in g.members:
                    linked = any(u == m and w == v for u, w, _ in carries)
                    if not linked:
                        continue
                    cur, was = before.get(m, 0), base.get(m, 0)
                    now_down += max(cur, was) >= DOWN
                    now_failed += max(cur, was) >= DEG
                    was_down += was >= DOWN
                    was_failed += was >= DEG
                    risk = risk or cur >= DEG
                a, b = g.down_below.needed(size), g.degraded_below.needed(size)
                now = _verdict(size, a, b, now_down, now_failed)
                was_v = _verdict(size, a, b, was_down, was_failed)
                decided = now if now > was_v else 0
                best = max(best, decided, RISK if risk else 0)
            if best > before[v]:
                new[v] = best
                time[v] = step
        if new == before:
            break
        history.append(new)
    return state_final(history), time, history


def _verdict(size: int, a: int, b: int, down: int, failed: int) -> int:
    """Fewer than a members not down: down; fewer than b not failed: degraded."""
    if size - down < a:
        return DOWN
    if size - failed < b:
        return DEG
    return 0


def state_final(history: list[dict[str, int]]) -> dict[str, int]:
    return dict(history[-1])
