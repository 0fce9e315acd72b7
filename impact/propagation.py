"""Failure propagation: which CIs a set of failed CIs takes down, degrades or puts at risk.

The semantics, precisely (``docs/impact.md`` has the prose version):

* Failure travels along propagation entries ``u -> v`` of the index (the registry decides the
  direction of each relationship type). One hop takes one step of time.
* A plain entry carries the state of ``u`` when ``u`` is down or degraded. At-risk CIs still
  work, so they carry nothing.
* Entries from the members of a redundancy group into its owner are decided by the group's
  quorum. A member counts as *down* when down, as *failed* when down or degraded; members
  that are at risk, unaffected, unknown to the topology, or connected to the owner by no
  relationship that passes the filter are up. With ``n`` members, ``down_below`` needing
  ``a`` and ``degraded_below`` needing ``b``: fewer than ``a`` members not down makes the
  owner **down**; otherwise fewer than ``b`` members not failed makes it **degraded**;
  otherwise, if any member failed, the owner is **at risk**: redundancy absorbed the failure.
  A degraded member therefore counts as up for staying up and as lost for staying healthy:
  it can make its owner at most degraded.
* ``baseline`` states (CIs already down or degraded before this failure) count in quorums
  but never travel on their own; a group whose quorum was already lost before is not blamed
  on this failure (its owner is at most at risk).
* States only worsen (at risk < degraded < down). A CI's *distance* is the step at which it
  reached its final state, and its explanation path has exactly that many hops. With a
  depth limit, nothing after that step happens. Cycles terminate because states only
  worsen.

This is the least fixpoint of ``t(v) = min(1 + t(u) over plain entries, 1 + k-th smallest
member time over groups)`` per state level, computed with a multi-source BFS per level
(scipy, in C) and rounds of vectorised quorum evaluation until nothing improves.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Final

import numpy as np
import numpy.typing as npt

from graph.errors import LimitExceededError, NotFoundError, ValidationError
from graph.model import Direction, Limits, Propagation
from impact.index import (
    I8,
    I32,
    INF,
    NO_FILTER,
    ImpactFilter,
    ImpactIndex,
    Scratch,
    View,
    _Csr,
    gather_rows,
)


class ImpactState(StrEnum):
    AT_RISK = "at_risk"  # redundancy absorbed the failure; one more loss may hurt
    DEGRADED = "degraded"
    DOWN = "down"


STATE_CODES: Final = {ImpactState.AT_RISK: 1, ImpactState.DEGRADED: 2, ImpactState.DOWN: 3}
STATES: Final = (None, ImpactState.AT_RISK, ImpactState.DEGRADED, ImpactState.DOWN)
_DOWN, _DEG, _RISK = 3, 2, 1


@dataclass(frozen=True, slots=True)
class Hop:
    """One link of an explanation: ``node`` is affected because of the next hop's node, through
    a relationship of type ``relationship`` (stored ``node -> next`` when ``direction`` is
    ``out``, ``next -> node`` when ``in``), decided by redundancy group ``group`` if set.
    The last hop is the failed CI itself and has no relationship."""

    node: int
    relationship: str | None = None
    direction: Direction | None = None
    group: str | None = None


class BlastRadius:
    """The result of :func:`propagate`: what is affected, how badly, how far, and why.

    ``affected`` lists every affected CI (the failed ones included) in no particular order,
    with ``states`` (1 at risk, 2 degraded, 3 down) and ``distances`` alongside; ``nodes`` is
    the same set nearest first. Per-CI questions (:meth:`code_of`, :meth:`path`,
    :meth:`rule`) are answered from working arrays the index lends until this object is
    garbage-collected.
    """

    def __init__(
        self,
        index: ImpactIndex,
        *,
        view: View,
        filter: ImpactFilter,
        failed: Mapping[int, ImpactState],
        baseline: I8 | None,
        scratch: Scratch,
        affected: I32,
        limit: int,
    ) -> None:
        self.index = index
        self.view = view
        self.filter = filter
        self.failed = dict(failed)
        self.baseline = baseline
        self.affected = affected  # every affected CI, failed ones included, in no order
        self._s = scratch
        self._limit = limit

    @cached_property
    def states(self) -> I8:
        """Per ``affected`` CI: 1 at risk, 2 degraded, 3 down."""
        s, limit = self._s, self._limit
        down = s.t_down[self.affected] <= limit
        deg = s.t_deg[self.affected] <= limit
        return (np.int8(_RISK) + (down | deg) + down).astype(np.int8)

    @cached_property
    def distances(self) -> I32:
        """Per ``affected`` CI: hops from the failed CIs to its final state."""
        s, limit, nodes = self._s, self._limit, self.affected
        down = s.t_down[nodes]
        deg = np.minimum(s.t_deg[nodes], down)
        return np.where(down <= limit, down, np.where(deg <= limit, deg, s.t_risk[nodes])).astype(
            np.int32
        )

    @cached_property
    def nodes(self) -> I32:
        """Affected CIs (failed ones included), nearest first, then by node number."""
        key = (self.distances.astype(np.int64) << 32) | self.affected.astype(np.int64)
        return (np.sort(key) & 0xFFFFFFFF).astype(np.int32)

    @property
    def count(self) -> int:
        return int(self.affected.shape[0])

    def code_of(self, node: int) -> int:
        """0 unaffected, 1 at risk, 2 degraded, 3 down."""
        s, limit = self._s, self._limit
        if s.t_down[node] <= limit:
            return _DOWN
        if s.t_deg[node] <= limit:
            return _DEG
        return _RISK if s.t_risk[node] <= limit else 0

    def codes(self, nodes: I32) -> I8:
        """:meth:`code_of` for many CIs at once."""
        s, limit = self._s, self._limit
        down = s.t_down[nodes] <= limit
        deg = s.t_deg[nodes] <= limit
        risk = s.t_risk[nodes] <= limit
        return np.where(
            down, np.int8(_DOWN), np.where(deg, np.int8(_DEG), np.where(risk, _RISK, 0))
        ).astype(np.int8)

    def state_of(self, node: int) -> ImpactState | None:
        return STATES[self.code_of(node)]

    def distance_of(self, node: int) -> int:
        """Hops from the failed CIs to ``node``'s final state; -1 when unaffected."""
        code = self.code_of(node)
        s = self._s
        if code == _DOWN:
            return int(s.t_down[node])
        if code == _DEG:
            return int(min(s.t_deg[node], s.t_down[node]))
        return int(s.t_risk[node]) if code else -1

    def _cause(self, node: int, code: int) -> int:
        s = self._s
        if code == _RISK:
            return int(s.p_risk[node])
        if code == _DOWN or s.t_down[node] <= s.t_deg[node]:
            return int(s.p_down[node])
        return int(s.p_deg[node])

    def path(self, node: int) -> list[Hop]:
        """The explanation of ``node``: hops back to a failed CI, ``distance`` + 1 long.

        Raises NotFoundError when ``node`` is not affected.
        """
        code = self.code_of(node)
        if code == 0:
            raise NotFoundError(f"{self.index.topology.ids[node]!r} is not affected")
        s, groups = self._s, self.index.groups
        hops: list[Hop] = []
        x, t = node, self.distance_of(node)
        while t > 0:
            cause = self._cause(x, code)
            if cause <= -2:
                row = -2 - cause
                parent = int(groups.member[row])
                hops.append(self._hop(x, self.index.gated_type(row, self.view), row))
            else:
                parent = cause
                hops.append(self._hop(x, self.index.edge_type(parent, x, self.view), -1))
            x, t = parent, t - 1
            code = _DOWN if s.t_down[x] == t else _DEG
        hops.append(Hop(x))
        return hops

    def _hop(self, node: int, name: str | None, row: int) -> Hop:
        group_name = None
        if row >= 0:
            group_name = self.index.groups.names[int(self.index.groups.group[row])][1]
        direction = None
        if name is not None:
            rule = self.index.propagation[self.index.topology.type_names.index(name)]
            direction = {
                Propagation.TO_SOURCE: Direction.OUT,
                Propagation.TO_TARGET: Direction.IN,
            }.get(rule, Direction.BOTH)
        return Hop(node, name, direction, group_name)

    def rule(self, node: int) -> str | None:
        """The quorum rule that decided ``node``'s state, when a redundancy group did.

        ``"group 'vms': 2 of 3 members fully up, needs 3: degraded"``
        """
        code = self.code_of(node)
        if code == 0:
            return None
        cause = self._cause(node, code)
        if cause > -2:
            return None
        return self.describe_group(int(self.index.groups.group[-2 - cause]), code)

    def describe_group(self, group: int, code: int) -> str:
        """How group ``group``'s members stand, and the verdict ``code`` it gave."""
        g = self.index.groups
        size = int(g.size[group])
        down = failed = before_down = before_failed = 0
        for row in range(int(g.indptr[group]), int(g.indptr[group + 1])):
            member = int(g.member[row])
            if member < 0 or not int(g.types[row]) & int(self.view.type_mask):
                continue
            now = self.code_of(member)
            was = int(self.baseline[member]) if self.baseline is not None else 0
            down += max(now, was) >= _DOWN
            failed += max(now, was) >= _DEG
            before_down += was >= _DOWN
            before_failed += was >= _DEG
        a, b = int(g.down_needed[group]), int(g.degraded_needed[group])
        if code == _DOWN:
            text = f"{size - down} of {size} members up, needs {a}: down"
        elif code == _DEG:
            text = f"{size - failed} of {size} members fully up, needs {b}: degraded"
        else:
            text = f"{size - failed} of {size} members fully up, needs {b} (and {a} to stay up)"
            if size - before_down < a:
                text += "; it was already down before"
            elif size - before_failed < b:
                text += "; it was already degraded before"
            text += ": at risk"
        return f"group {g.names[group][1]!r}: {text}"


def propagate(
    index: ImpactIndex,
    failures: Mapping[int, ImpactState],
    *,
    filter: ImpactFilter = NO_FILTER,
    baseline: I8 | None = None,
) -> BlastRadius:
    """What fails, and why, when the CIs in ``failures`` fail.

    Parameters
    ----------
    index : ImpactIndex
        From :func:`impact.index.build_index` or :func:`impact.index.index_for`.
    failures : mapping of node number to ImpactState
        The failed CIs, each ``DOWN`` or ``DEGRADED``.
    filter : ImpactFilter
        Depth limit, and the CI classes and relationship types failure may travel through.
    baseline : array of int8 per node, optional
        States before this failure (0 up, 2 degraded, 3 down): count in redundancy quorums
        only. See the module docstring.

    Returns
    -------
    BlastRadius
        Per-CI state, distance and explanation.

    Examples
    --------
    Two web servers behind one app; losing one of them degrades it, and the degradation
    reaches the user of the app:

    >>> from graph.model import DEFAULT_REGISTRY, CiId, Quorum, RedundancyGroup
    >>> from impact.index import build_index
    >>> from impact.testing import topology_of
    >>> web = RedundancyGroup(name="web", members=(CiId("web1"), CiId("web2")))
    >>> topo = topology_of(
    ...     [("app", "RUNS_ON", "web1"), ("app", "RUNS_ON", "web2"), ("ann", "USES", "app")],
    ...     classes={"ann": "user"}, redundancy={"app": [web]})
    >>> index = build_index(topo, DEFAULT_REGISTRY)
    >>> radius = propagate(index, {topo.number(CiId("web1")): ImpactState.DOWN})
    >>> [(topo.ids[n], radius.state_of(n).value, radius.distance_of(n)) for n in radius.nodes]
    [('web1', 'down', 0), ('app', 'degraded', 1), ('ann', 'degraded', 2)]
    >>> radius.rule(topo.number(CiId("app")))
    "group 'web': 1 of 2 members fully up, needs 2: degraded"
    >>> [(topo.ids[h.node], h.relationship) for h in radius.path(topo.number(CiId("ann")))]
    [('ann', 'USES'), ('app', 'RUNS_ON'), ('web1', None)]
    """
    n = index.node_count
    if filter.depth is not None and not 0 <= filter.depth <= Limits.MAX_DEPTH:
        raise LimitExceededError(
            f"depth {filter.depth} is outside 0..{Limits.MAX_DEPTH}", field="depth"
        )
    limit = INF - 1 if filter.depth is None else filter.depth
    view = index.view(filter)
    if baseline is not None and baseline.shape != (n,):
        raise ValidationError(f"baseline has shape {baseline.shape}, expected ({n},)")
    down_seeds: list[int] = []
    deg_seeds: list[int] = []
    for node, state in failures.items():
        if not 0 <= node < n:
            raise NotFoundError(f"no CI numbered {node}")
        if state is ImpactState.DOWN:
            down_seeds.append(node)
        elif state is ImpactState.DEGRADED:
            deg_seeds.append(node)
        else:
            raise ValidationError(
                f"a failed CI is down or degraded, not {state}", item=index.topology.ids[node]
            )

    s = index.borrow()
    written = _Written()
    try:
        _spread(
            index,
            view,
            s,
            written,
            down_seeds=down_seeds,
            deg_seeds=deg_seeds,
            baseline=baseline,
            limit=limit,
        )
        written.risk = _at_risk(index, view, s, limit, written.core)
        affected = written.affected(s, limit, index.is_core)
    except BaseException:
        index.give_back(s, written.everything())
        raise
    radius = BlastRadius(
        index,
        view=view,
        filter=filter,
        failed=failures,
        baseline=baseline,
        scratch=s,
        affected=affected,
        limit=limit,
    )
    weakref.finalize(radius, index.give_back, s, (affected, written.degraded(), written.risk))
    return radius


@dataclass(slots=True)
class _Written:
    """Which scratch entries a query wrote: to list the affected CIs and to reset after."""

    core: list[I32] = field(default_factory=list)  # phase 1, any level
    core_deg: list[I32] = field(default_factory=list)
    tail_down: I32 = field(default_factory=lambda: np.empty(0, dtype=np.int32))
    tail_deg: I32 = field(default_factory=lambda: np.empty(0, dtype=np.int32))
    risk: I32 = field(default_factory=lambda: np.empty(0, dtype=np.int32))

    def everything(self) -> I32:
        return np.concatenate([*self.core, self.tail_down, self.tail_deg, self.risk])

    def degraded(self) -> I32:
        return np.concatenate([*self.core_deg, self.tail_deg])

    def affected(self, s: Scratch, limit: int, is_core: npt.NDArray[np.bool_]) -> I32:
        """Every written CI once. Only the small core part needs de-duplicating: the tail
        down BFS writes each tail CI once (core sources are excluded), and the tail degraded
        BFS adds only CIs not down."""
        core = np.concatenate(self.core) if self.core else np.empty(0, dtype=np.int32)
        s.stamp[core] = np.arange(core.shape[0], dtype=np.int32)
        core = core[s.stamp[core] == np.arange(core.shape[0])]
        extra = self.tail_deg[s.t_down[self.tail_deg] > limit]
        return np.concatenate((core, self.tail_down, extra, self.risk))


def _spread(
    index: ImpactIndex,
    view: View,
    s: Scratch,
    written: _Written,
    *,
    down_seeds: list[int],
    deg_seeds: list[int],
    baseline: I8 | None,
    limit: int,
) -> None:
    """Fill the scratch times and causes, noting in ``written`` what was written."""
    is_core = index.is_core
    down_level = _Level(s.t_down, None, s.p_down)
    deg_level = _Level(s.t_deg, s.t_down, s.p_deg)
    down, deg = _Sources.seeds(down_seeds), _Sources.seeds(deg_seeds)
    tail_down, tail_deg = [down.where(~is_core[down.nodes])], [deg.where(~is_core[deg.nodes])]
    down, deg = down.where(is_core[down.nodes]), deg.where(is_core[deg.nodes])

    # 1. The core, in rounds: BFS, then the quorums of the groups whose members changed.
    fresh_down = fresh_deg = True
    while down.size or deg.size:
        if fresh_down:
            changed_down = _advance(view.core, down, down_level, limit, fresh=True)
        else:
            changed_down = _frontier(view.core, down, down_level, limit, s.stamp)
        fresh_down = fresh_down and not down.size
        deg = deg.better_than(s.t_deg, s.t_down)
        if fresh_deg:
            changed_deg = _advance(view.core, deg, deg_level, limit)
        else:
            changed_deg = _frontier(view.core, deg, deg_level, limit, s.stamp)
        fresh_deg = fresh_deg and not deg.size
        written.core += (changed_down, changed_deg)
        written.core_deg.append(changed_deg)
        changed = np.concatenate((changed_down, changed_deg))
        owners_down, owners_deg = _evaluate_groups(
            index, view, changed, s, baseline=baseline, limit=limit
        )
        tail_down.append(owners_down.where(~is_core[owners_down.nodes]))
        tail_deg.append(owners_deg.where(~is_core[owners_deg.nodes]))
        down = owners_down.where(is_core[owners_down.nodes])
        deg = owners_deg.where(is_core[owners_deg.nodes]).better_than(s.t_deg, s.t_down)

    # 2. The tail, once per level, from every failed core CI and every tail group owner.
    core = np.concatenate(written.core) if written.core else np.empty(0, dtype=np.int32)
    core = core[view.tail.indptr[core + 1] > view.tail.indptr[core]]
    down_core = core[s.t_down[core] <= limit]
    tail_down.append(_Sources(down_core, s.t_down[down_core], s.p_down[down_core]))
    sources = _Sources.merge(tail_down)
    changed = _advance(view.tail, sources, down_level, limit, fresh=True)
    # the core sources were written again with their own values: not new
    written.tail_down = changed[~is_core[changed]]
    deg_core = core[s.t_deg[core] < np.minimum(s.t_down[core], limit + 1)]
    tail_deg.append(_Sources(deg_core, s.t_deg[deg_core], s.p_deg[deg_core]))
    sources = _Sources.merge(tail_deg).better_than(s.t_deg, s.t_down, preset=True)
    # A CI down before the limit takes everything after it down: no need to degrade it.
    written.tail_deg = _frontier(view.tail, sources, deg_level, limit, s.stamp, prune=s.t_down)


@dataclass(frozen=True, slots=True)
class _Level:
    """One state level's times and causes; ``also``: a CI already down at least as early
    needs no degraded time."""

    times: I32
    also: I32 | None
    parents: I32

    def current(self, nodes: I32) -> I32:
        if self.also is None:
            return self.times[nodes]
        return np.minimum(self.times[nodes], self.also[nodes])


@dataclass(frozen=True, slots=True)
class _Sources:
    """Nodes that start a BFS at a time, with their cause (-1, or -2 - membership row).
    ``nodes`` are unique and ascending."""

    nodes: I32
    starts: I32
    causes: I32

    @property
    def size(self) -> int:
        return int(self.nodes.shape[0])

    @classmethod
    def seeds(cls, nodes: list[int]) -> _Sources:
        arr = np.unique(np.array(nodes, dtype=np.int32))
        return cls(arr, np.zeros(arr.shape[0], dtype=np.int32), np.full(arr.shape[0], -1, np.int32))

    @classmethod
    def merge(cls, parts: list[_Sources]) -> _Sources:
        """All parts; a node given several times keeps its earliest start."""
        parts = [p for p in parts if p.size]
        if not parts:
            return cls.seeds([])
        nodes = np.concatenate([p.nodes for p in parts])
        starts = np.concatenate([p.starts for p in parts])
        causes = np.concatenate([p.causes for p in parts])
        order = np.lexsort((starts, nodes))
        nodes, starts, causes = nodes[order], starts[order], causes[order]
        first = np.ones(nodes.shape[0], dtype=np.bool_)
        first[1:] = nodes[1:] != nodes[:-1]
        return cls(nodes[first], starts[first], causes[first])

    def where(self, keep: npt.NDArray[np.bool_]) -> _Sources:
        return _Sources(self.nodes[keep], self.starts[keep], self.causes[keep])

    def better_than(self, times: I32, also: I32, *, preset: bool = False) -> _Sources:
        """The sources that would improve on ``min(times, also)`` (or, with ``preset``,
        already hold exactly their start there)."""
        current = np.minimum(times[self.nodes], also[self.nodes])
        keep = self.starts <= current if preset else self.starts < current
        return self.where(keep)


def _advance(
    csr: _Csr, sources: _Sources, level: _Level, limit: int, *, fresh: bool = False
) -> I32:
    """BFS from ``sources`` over plain entries (scipy); keep what improves on ``level``
    (everything, when the level is ``fresh``: nothing on it yet). Returns changed nodes."""
    if not sources.size:
        return np.empty(0, dtype=np.int32)
    nodes, new_times, new_parents = csr.bfs(sources.nodes, sources.starts)
    if fresh and level.also is None:
        if limit < INF - 1:
            keep = new_times <= limit
            nodes, new_times, new_parents = nodes[keep], new_times[keep], new_parents[keep]
    else:
        better = new_times < level.current(nodes)
        if limit < INF - 1:
            better &= new_times <= limit
        nodes, new_times, new_parents = nodes[better], new_times[better], new_parents[better]
    level.times[nodes] = new_times
    level.parents[nodes] = new_parents
    direct = np.flatnonzero(new_parents < 0)
    if direct.shape[0]:
        # reached at its own start time: the source's cause (a group, or none for a seed)
        where = np.searchsorted(sources.nodes, nodes[direct])
        level.parents[nodes[direct]] = sources.causes[where]
    return nodes


def _frontier(
    csr: _Csr,
    sources: _Sources,
    level: _Level,
    limit: int,
    stamp: I32,
    *,
    prune: I32 | None = None,
) -> I32:
    """Level-by-level BFS in numpy that expands only nodes it improves on ``level``,
    injecting each source at its start time. With ``prune``, nodes whose ``prune`` time is
    before ``limit`` are not expanded. Returns the changed nodes."""
    if not sources.size:
        return np.empty(0, dtype=np.int32)
    order = np.argsort(sources.starts, kind="stable")
    nodes, starts, causes = sources.nodes[order], sources.starts[order], sources.causes[order]
    changed: list[I32] = []
    frontier = np.empty(0, dtype=np.int32)
    t, i = int(starts[0]), 0
    while True:
        j = int(np.searchsorted(starts, np.int32(t), side="right"))
        if j > i:
            inject, why = nodes[i:j], causes[i:j]
            i = j
            current = level.current(inject)
            better = t < current
            level.times[inject[better]] = t
            level.parents[inject[better]] = why[better]
            changed.append(inject[better])
            frontier = np.concatenate((frontier, inject[t <= current]))
        if prune is not None and frontier.shape[0]:
            frontier = frontier[prune[frontier] >= limit]
        if frontier.shape[0] == 0 or t >= limit:
            if i >= nodes.shape[0]:
                break
            frontier = np.empty(0, dtype=np.int32)
            t = int(starts[i])
            continue
        positions, owner = gather_rows(csr.indptr, frontier)
        reached = csr.indices[positions]
        step = t + 1
        better = step < level.current(reached)
        reached, via = reached[better], frontier[owner[better]]
        stamp[reached] = np.arange(reached.shape[0], dtype=np.int32)
        first = stamp[reached] == np.arange(reached.shape[0])
        reached, via = reached[first], via[first]
        level.times[reached] = step
        level.parents[reached] = via
        changed.append(reached)
        frontier, t = reached, step
    return np.concatenate(changed) if changed else np.empty(0, dtype=np.int32)


def _member_times(
    index: ImpactIndex,
    view: View,
    positions: npt.NDArray[np.int64],
    times: I32,
    cap: I32 | None = None,
) -> tuple[I32, I32, npt.NDArray[np.bool_]]:
    g = index.groups
    members = g.member[positions]
    valid = (members >= 0) & ((g.types[positions] & view.type_mask) != 0)
    safe = np.where(valid, members, 0)
    got = times[safe] if cap is None else np.minimum(times[safe], cap[safe])
    return np.where(valid, got, INF).astype(np.int32), safe, valid


def _kth(local: I32, values: I32, starts: npt.NDArray[np.int64], k: I32) -> tuple[I32, I32]:
    """Per group (rows grouped by ``local``, group i's rows from ``starts[i]``), the k-th
    smallest value (0-based ``k``) and the position holding it."""
    key = (local.astype(np.int64) << 32) | (values.astype(np.int64) + 1)
    order = np.argsort(key, kind="stable")
    at = order[starts + k]
    return values[at], at.astype(np.int32)


def _evaluate_groups(
    index: ImpactIndex,
    view: View,
    changed: I32,
    s: Scratch,
    *,
    baseline: I8 | None,
    limit: int,
) -> tuple[_Sources, _Sources]:
    """Quorums of the groups that ``changed`` nodes belong to: owners that now fail sooner."""
    g = index.groups
    empty = _Sources.seeds([])
    if g.count == 0 or changed.shape[0] == 0:
        return empty, empty
    rows, _ = gather_rows(g.by_member_indptr, changed)
    if rows.shape[0] == 0:
        return empty, empty
    groups = np.unique(g.group[g.by_member[rows]])
    groups = groups[view.node_allowed[g.owner[groups]]]
    if groups.shape[0] == 0:
        return empty, empty
    positions, local = gather_rows(g.indptr, groups)
    td, safe, valid = _member_times(index, view, positions, s.t_down)
    tg, _, _ = _member_times(index, view, positions, s.t_deg, s.t_down)
    if baseline is not None:
        before = np.where(valid, baseline[safe], 0)
        td = np.where(before >= _DOWN, -1, td).astype(np.int32)
        tg = np.where(before >= _DEG, -1, tg).astype(np.int32)
    sizes = g.size[groups]
    starts = np.cumsum(sizes, dtype=np.int64) - sizes
    a, b = g.down_needed[groups], g.degraded_needed[groups]
    kth_down, at_down = _kth(local, td, starts, np.clip(sizes - a, 0, sizes - 1))
    kth_down = np.where(a >= 1, kth_down, INF)
    kth_deg, at_deg = _kth(local, tg, starts, np.clip(sizes - b, 0, sizes - 1))
    kth_deg = np.where(b >= 1, kth_deg, INF)
    owners = g.owner[groups]
    cause_down = (-2 - positions[at_down]).astype(np.int32)
    cause_deg = (-2 - positions[at_deg]).astype(np.int32)

    c_down = np.minimum(kth_down.astype(np.int64) + 1, INF)
    via_down = kth_down <= kth_deg
    c_deg = np.where(via_down, c_down, np.minimum(kth_deg.astype(np.int64) + 1, INF))
    cause_deg = np.where(via_down, cause_down, cause_deg)
    # A quorum that baseline failures alone already broke is not this failure's doing.
    c_down = np.where(c_down <= 0, INF, c_down)
    c_deg = np.where(c_deg <= 0, INF, c_deg)
    down = _best(owners, c_down, cause_down, _Level(s.t_down, None, s.p_down), limit)
    deg = _best(owners, c_deg, cause_deg, _Level(s.t_deg, s.t_down, s.p_deg), limit)
    return down, deg


def _best(
    owners: I32, times: npt.NDArray[np.int64], causes: I32, level: _Level, limit: int
) -> _Sources:
    """Per owner, its earliest candidate time, if that is within ``limit`` and improves."""
    keep = (times <= limit) & (times < level.current(owners))
    if not keep.any():
        return _Sources.seeds([])
    owners, times, causes = owners[keep], times[keep], causes[keep]
    order = np.lexsort((times, owners))
    owners, times, causes = owners[order], times[order], causes[order]
    first = np.ones(owners.shape[0], dtype=np.bool_)
    first[1:] = owners[1:] != owners[:-1]
    return _Sources(owners[first], times[first].astype(np.int32), causes[first])


def _at_risk(index: ImpactIndex, view: View, s: Scratch, limit: int, failed: list[I32]) -> I32:
    """Owners of a group with a failed member (one of ``failed``) that stayed up are at risk.
    Returns them."""
    g = index.groups
    none = np.empty(0, dtype=np.int32)
    if g.count == 0 or not failed:
        return none
    rows, _ = gather_rows(g.by_member_indptr, np.concatenate(failed))
    if rows.shape[0] == 0:
        return none
    groups = np.unique(g.group[g.by_member[rows]])
    owners = g.owner[groups]
    owner_deg = np.minimum(s.t_deg[owners], s.t_down[owners])
    groups = groups[view.node_allowed[owners] & (owner_deg > limit)]
    if groups.shape[0] == 0:
        return none
    positions, local = gather_rows(g.indptr, groups)
    tg, _, _ = _member_times(index, view, positions, s.t_deg, s.t_down)
    sizes = g.size[groups]
    starts = np.cumsum(sizes, dtype=np.int64) - sizes
    first, at = _kth(local, tg, starts, np.zeros(groups.shape[0], dtype=np.int32))
    best = _best(
        g.owner[groups],
        np.minimum(first.astype(np.int64) + 1, INF),
        (-2 - positions[at]).astype(np.int32),
        _Level(s.t_risk, None, s.p_risk),
        limit,
    )
    s.t_risk[best.nodes] = best.starts
    s.p_risk[best.nodes] = best.causes
    return best.nodes
