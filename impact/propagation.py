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
member time over groups)`` per state level. CIs that can reach a group member (the *core*)
are simulated step by step in numpy, counting lost members per group; the rest (the *tail*)
is one scipy BFS (in C) per state level from the settled core. See :class:`_Run`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    Search,
    View,
    _Csr,
    gather_positions,
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
        answer: _Answer,
        limit: int,
        down_preds: I32 | None = None,
        fail_preds: I32 | None = None,
    ) -> None:
        self.index = index
        self.view = view
        self.filter = filter
        self.failed = dict(failed)
        self.baseline = baseline
        self._answer = answer
        self.affected = answer.affected()  # every affected CI, failed ones included
        self._s = scratch
        self._zero = scratch.zero  # scratch times are stored as zero + hops
        self._limit = limit
        # scipy's predecessors for the tail, used as they came (None: in the scratch)
        self._down_preds = down_preds
        self._fail_preds = fail_preds

    def _within(self, times: I32, nodes: I32) -> npt.NDArray[np.bool_]:
        """Which of ``nodes`` have a time of this query in ``times``, within the limit."""
        hops = times[nodes] - np.int32(self._zero)
        return hops.view(np.uint32) <= self._limit

    def _time(self, times: I32, node: int) -> int:
        """``node``'s time in ``times`` in hops; INF when none or past the limit."""
        hops = int(times[node]) - self._zero
        return hops if 0 <= hops <= self._limit else INF

    @cached_property
    def states(self) -> I8:
        """Per ``affected`` CI: 1 at risk, 2 degraded, 3 down."""
        a = self._answer
        tail = a.tail.nodes
        if a.tail_all_down:
            tail_states = np.full(tail.shape[0], _DOWN, dtype=np.int8)
        else:
            tail_states = np.where(self._within(self._s.t_down, tail), np.int8(_DOWN), _DEG)
        return np.concatenate(
            (self.codes(a.core), tail_states, np.full(a.risk.shape[0], _RISK, dtype=np.int8))
        ).astype(np.int8)

    @cached_property
    def distances(self) -> I32:
        """Per ``affected`` CI: hops from the failed CIs to its final state."""
        s, a, zero = self._s, self._answer, np.int32(self._zero)
        core = a.core
        down = self._within(s.t_down, core)
        fail = self._within(s.t_fail, core)
        core_at = np.where(down, s.t_down[core], np.where(fail, s.t_fail[core], s.t_risk[core]))
        tail_at = a.tail.hops
        if not a.tail_all_down:  # the tail times are when each failed: down may be later
            down_at = s.t_down[a.tail.nodes] - zero
            tail_at = np.where(down_at.view(np.uint32) <= self._limit, down_at, tail_at)
        return np.concatenate((core_at - zero, tail_at, s.t_risk[a.risk] - zero)).astype(np.int32)

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
        if self._time(s.t_down, node) <= limit:
            return _DOWN
        if self._time(s.t_fail, node) <= limit:
            return _DEG
        return _RISK if self._time(s.t_risk, node) <= limit else 0

    def codes(self, nodes: I32) -> I8:
        """:meth:`code_of` for many CIs at once."""
        s = self._s
        down = self._within(s.t_down, nodes)
        fail = self._within(s.t_fail, nodes) | down
        risk = self._within(s.t_risk, nodes)
        return (risk & ~fail).astype(np.int8) + (fail.astype(np.int8) << 1) + down

    def state_of(self, node: int) -> ImpactState | None:
        return STATES[self.code_of(node)]

    def distance_of(self, node: int) -> int:
        """Hops from the failed CIs to ``node``'s final state; -1 when unaffected."""
        code = self.code_of(node)
        s = self._s
        if code == _DOWN:
            return self._time(s.t_down, node)
        if code == _DEG:
            return self._time(s.t_fail, node)
        return self._time(s.t_risk, node) if code else -1

    def _cause(self, node: int, code: int) -> int:
        """Why ``node`` reached state ``code`` when it did: a parent, -1, or -2 - row."""
        s = self._s
        if code == _RISK:
            return int(s.p_risk[node])
        down = code == _DOWN
        preds = self._down_preds if down else self._fail_preds
        if preds is not None and self.index.is_tail[node]:
            parent = int(preds[node])
            if 0 <= parent < self.index.node_count:
                return parent
        return int(s.p_down[node] if down else s.p_fail[node])

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
            code = _DOWN if self._time(s.t_down, x) == t else _DEG
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
    s.begin()
    run = _Run(index, view, s, baseline=baseline, limit=limit, by_class=bool(filter.classes))
    try:
        run.core(
            np.unique(np.array(down_seeds, dtype=np.int32)),
            np.unique(np.array(down_seeds + deg_seeds, dtype=np.int32)),
        )
        run.tail()
        run.at_risk()
        answer = run.answer()
    except BaseException:
        index.give_back(s, run.groups())
        raise
    radius = BlastRadius(
        index,
        view=view,
        filter=filter,
        failed=failures,
        baseline=baseline,
        scratch=s,
        answer=answer,
        limit=limit,
        down_preds=run.down_preds,
        fail_preds=run.fail_preds,
    )
    weakref.finalize(radius, index.give_back, s, run.groups())
    return radius


_EMPTY: Final = np.empty(0, dtype=np.int32)
_EMPTY.flags.writeable = False

Sources = tuple[I32, I32, I32]  # nodes, start times (hops), causes (-1, or -2 - row)


class _Run:
    """One propagation: fills the scratch arrays (times as ``zero`` + hops).

    *Core* CIs (those that can reach a redundancy-group member) go first, one synchronous
    step at a time in numpy: the CIs that went down or failed at a step expand over plain
    entries, and count as lost members of their groups (counters per group, so a group costs
    only the members that changed); a group whose verdict worsens decides its owner for the
    next step. Nothing in the core depends on the rest, so once it has settled, the *tail*
    (no groups there) takes one scipy BFS down from the down CIs, and only when some CI failed
    before it went down, one more from every failed CI; each source enters at its own time,
    and a tail BFS with few sources tries a numpy frontier first. Times live in the scratch;
    the tail's parents stay in scipy's predecessor arrays.
    """

    def __init__(
        self,
        index: ImpactIndex,
        view: View,
        s: Scratch,
        *,
        baseline: I8 | None,
        limit: int,
        by_class: bool,
    ) -> None:
        self.index = index
        self.view = view
        self.s = s
        self.zero = s.zero
        self.baseline = baseline
        self.limit = limit
        self.by_class = by_class  # group owners must pass the class filter
        self.by_type = bool(view.type_mask != index.plain.type_mask)
        self.core_down: list[I32] = []  # core CIs as they went down (each once)
        self.core_fail: list[I32] = []  # ... and failed
        self.touched: list[I32] = []  # groups, by the step a member first failed
        self.tail_down: list[Sources] = []  # tail CIs that start the tail BFS
        self.tail_fail: list[Sources] = []
        self.tail_reach = _NO_REACH  # tail CIs failed
        self.tail_all_down = True  # ... all down: the failed BFS was not needed
        self.risk: I32 = _EMPTY
        self.down_preds: I32 | None = None
        self.fail_preds: I32 | None = None

    def groups(self) -> I32:
        """The groups whose counters this query wrote (the only scratch entries to reset)."""
        return np.concatenate(self.touched) if self.touched else _EMPTY

    def answer(self) -> _Answer:
        core = np.concatenate(self.core_fail) if self.core_fail else _EMPTY
        return _Answer(core, self.tail_reach, self.tail_all_down, self.risk)

    def hops(self, times: I32, nodes: I32) -> I32:
        """Times of ``nodes`` in hops, INF where this query wrote none."""
        at = times[nodes]
        return np.where(at >= self.zero, at - np.int32(self.zero), INF).astype(np.int32)

    # -- the core ------------------------------------------------------------------------

    def core(self, down: I32, failed: I32) -> None:
        s, is_core, csr, zero = self.s, self.index.is_core, self.view.core, self.zero
        core_down, core_failed = is_core[down], is_core[failed]
        self.tail_down.append(_starting(down[~core_down], 0))
        self.tail_fail.append(_starting(failed[~core_failed], 0))
        nd, nf = down[core_down], failed[core_failed]
        s.t_down[nd] = zero
        s.p_down[nd] = -1
        s.t_fail[nf] = zero
        s.p_fail[nf] = -1
        self.core_down.append(nd)
        self.core_fail.append(nf)
        t = 0
        while (nd.shape[0] or nf.shape[0]) and t < self.limit:
            step = t + 1
            new_down = self._expand(csr, nd, s.t_down, s.p_down, step)
            new_fail = self._expand(csr, nf, s.t_fail, s.p_fail, step)
            if self.index.groups.count:
                owners_down, why_down, owners_fail, why_fail = self._quorums(nd, nf, t)
                new_down = self._decide(owners_down, why_down, step, down=True, new=new_down)
                new_fail = self._decide(owners_fail, why_fail, step, down=False, new=new_fail)
            lag = new_down[s.t_fail[new_down] < zero]  # down without failing first
            if lag.shape[0]:
                s.t_fail[lag] = zero + step
                s.p_fail[lag] = s.p_down[lag]
                new_fail = np.concatenate((new_fail, lag))
            self.core_down.append(new_down)
            self.core_fail.append(new_fail)
            nd, nf, t = new_down, new_fail, step

    def _expand(self, csr: _Csr, frontier: I32, times: I32, parents: I32, step: int) -> I32:
        """The CIs that ``frontier`` reaches over ``csr`` and that have no time yet: they get
        ``step``, and one of ``frontier`` as parent. Returns them, each once."""
        if not frontier.shape[0]:
            return _EMPTY
        positions, owner = gather_rows(csr.indptr, frontier)
        reached = csr.indices[positions]
        fresh = times[reached] < self.zero
        reached = reached[fresh]
        if not reached.shape[0]:
            return _EMPTY
        via = frontier[owner[fresh]]
        reached, first = _distinct(reached, self.s.stamp)
        times[reached] = self.zero + step
        parents[reached] = via[first]
        return reached

    def _rows(self, nodes: I32) -> I32:
        """The memberships of ``nodes`` that can carry their failure to the group's owner."""
        g = self.index.groups
        if not nodes.shape[0]:
            return _EMPTY
        rows: I32 = g.by_member[gather_positions(g.by_member_indptr, nodes)]
        if self.by_type:
            rows = rows[(g.types[rows] & self.view.type_mask) != 0]
        if self.by_class:
            rows = rows[self.view.node_allowed[g.owner[g.group[rows]]]]
        return rows

    def _quorums(self, nd: I32, nf: I32, t: int) -> tuple[I32, I32, I32, I32]:
        """Count the members that went down (``nd``) or failed (``nf``) at step ``t`` against
        their groups. Returns the owners whose group now says down, with the cause (-2 - the
        membership that broke the quorum), and likewise those it now says degraded."""
        g, s, baseline = self.index.groups, self.s, self.baseline
        now_t = self.zero + t
        rows = self._rows(nf)
        k_fail = rows.shape[0]  # rows of members that failed at t; some went down too
        went_down = s.t_down[g.member[rows]] == now_t
        # and those that went down at t but failed before
        down_only = self._rows(nd[s.t_fail[nd] != now_t])
        if down_only.shape[0]:
            rows = np.concatenate((rows, down_only))
            went_down = np.concatenate((went_down, np.ones(down_only.shape[0], np.bool_)))
        if not rows.shape[0]:
            return _EMPTY, _EMPTY, _EMPTY, _EMPTY
        row_groups = g.group[rows]
        changed, one = _distinct(row_groups, s.g_stamp)
        local = s.g_stamp[row_groups]  # each row's position in ``changed``
        k = changed.shape[0]
        # a member fails no later than it goes down: a group's first news is a failure
        new = s.g_first[changed] == INF
        if new.any():
            fresh = changed[new]
            s.g_first[fresh] = t
            s.g_row[fresh] = rows[one[new]]
            self.touched.append(fresh)
            if baseline is not None:
                self._before(fresh)
        fail_local, down_local = local[:k_fail], local[went_down]
        if baseline is not None:  # members lost before count already
            before = baseline[g.member[rows]]
            fail_local = fail_local[before[:k_fail] < _DEG]
            down_local = local[went_down & (before < _DOWN)]
        lose_down, lose_fail = g.lose_down[changed], g.lose_fail[changed]
        lost_down, lost_fail = s.g_down[changed], s.g_fail[changed]
        was_down = lost_down >= lose_down
        was_fail = was_down | (lost_fail >= lose_fail)
        lost_down += np.bincount(down_local, minlength=k).astype(np.int32)
        lost_fail += np.bincount(fail_local, minlength=k).astype(np.int32)
        now_down = lost_down >= lose_down
        to_down = now_down & ~was_down
        to_fail = (now_down | (lost_fail >= lose_fail)) & ~was_fail
        s.g_down[changed] = lost_down
        s.g_fail[changed] = lost_fail
        if not to_down.any() and not to_fail.any():
            return _EMPTY, _EMPTY, _EMPTY, _EMPTY
        # per group, a membership that changed at this step: down for a group now down
        # (the member that broke the quorum went down now), else failed
        s.g_row_now[row_groups[:k_fail]] = rows[:k_fail]
        s.g_row_now[row_groups[went_down]] = rows[went_down]
        down_groups, fail_groups = changed[to_down], changed[to_fail]
        owners_down, at = _distinct(g.owner[down_groups], s.stamp)
        why_down = s.g_row_now[down_groups[at]]
        owners_fail, at = _distinct(g.owner[fail_groups], s.stamp)
        why_fail = s.g_row_now[fail_groups[at]]
        return owners_down, (-2 - why_down), owners_fail, (-2 - why_fail)

    def _before(self, groups: I32) -> None:
        """Start the counters of ``groups`` (touched for the first time) from the baseline:
        members lost before this failure count, and the verdict they gave is no news."""
        g, s = self.index.groups, self.s
        assert self.baseline is not None
        positions, local = gather_rows(g.indptr, groups)
        members = g.member[positions]
        valid = (members >= 0) & ((g.types[positions] & self.view.type_mask) != 0)
        before = np.where(valid, self.baseline[np.maximum(members, 0)], 0)
        k = groups.shape[0]
        down = np.bincount(local, weights=before >= _DOWN, minlength=k).astype(np.int32)
        fail = np.bincount(local, weights=before >= _DEG, minlength=k).astype(np.int32)
        s.g_down[groups] = down
        s.g_fail[groups] = fail

    def _decide(self, owners: I32, why: I32, step: int, *, down: bool, new: I32) -> I32:
        """Owners a group decided at ``step``: core ones that had no time yet join ``new``;
        tail ones start the tail BFS."""
        if not owners.shape[0]:
            return new
        s = self.s
        core = self.index.is_core[owners]
        if not core.all():
            tail = ~core
            (self.tail_down if down else self.tail_fail).append(
                (owners[tail], np.full(int(tail.sum()), step, dtype=np.int32), why[tail])
            )
            owners, why = owners[core], why[core]
        times, parents = (s.t_down, s.p_down) if down else (s.t_fail, s.p_fail)
        fresh = times[owners] < self.zero
        owners = owners[fresh]
        times[owners] = self.zero + step
        parents[owners] = why[fresh]
        return np.concatenate((new, owners))

    # -- the tail ------------------------------------------------------------------------

    def tail(self) -> None:
        """Down from the down CIs; then, only if some CI failed before it went down (or
        without going down), failed from every failed CI. The tail has no groups, so when
        none did, a tail CI fails exactly when it goes down and one BFS answers both."""
        s, tail = self.s, self.view.tail
        core_down = _with_tail_entries(self.core_down, tail)
        down = _earliest(self.tail_down)
        self.down_preds, self.tail_reach = self._tail_bfs(
            core_down, self.hops(s.t_down, core_down), down, down=True
        )
        core_fail = _with_tail_entries(self.core_fail, tail)
        fail_at = self.hops(s.t_fail, core_fail)
        fail = _earliest([*self.tail_fail, down])
        if not (
            (fail_at < self.hops(s.t_down, core_fail)).any()
            or (fail[1] < self.hops(s.t_down, fail[0])).any()
        ):
            return
        self.tail_all_down = False
        self.fail_preds, self.tail_reach = self._tail_bfs(core_fail, fail_at, fail, down=False)

    def _tail_bfs(
        self, core: I32, core_starts: I32, tail: Sources, *, down: bool
    ) -> tuple[I32 | None, _Reach]:
        """BFS over the tail entries from ``core`` CIs (their time is final) and ``tail``
        sources. Returns scipy's predecessors (None when the scratch holds the parents) and
        the tail CIs reached."""
        s, limit = self.s, self.limit
        times, parents = (s.t_down, s.p_down) if down else (s.t_fail, s.p_fail)
        nodes, starts, causes = tail
        if not nodes.shape[0] and not core.shape[0]:
            return None, _NO_REACH
        # reached at its own start: the cause is the source's (kept in the scratch)
        parents[nodes] = causes
        # tail sources first: per start time, the core ones are then the last entries of
        # their level but for the next virtual root, so they are cut out without a mask
        sources = np.concatenate((nodes, core))
        all_starts = np.concatenate((starts, core_starts))
        small = sources.shape[0] <= _SMALL
        found = None if small else self.view.tail.search(sources, all_starts)
        if found is None:
            # a few sources: most likely a small reach, for which scipy's set-up over every
            # CI costs more than a numpy frontier; or start times too far apart for scipy
            frontier = _frontier(
                self.view.tail,
                sources,
                all_starts,
                times,
                parents,
                zero=self.zero,
                limit=limit,
                stamp=s.stamp,
                is_tail=self.index.is_tail,
                budget=_SMALL_REACH if small else None,
            )
            if frontier is not None:
                return None, frontier
            found = self.view.tail.search(sources, all_starts)
            if found is None:
                raise AssertionError("few sources span few start times")
        end = found.assign_times(times, self.zero, limit)
        low = found.first + 1
        span = int(all_starts.max()) - low + 1
        per_start = np.bincount(core_starts - low, minlength=span)
        kept: list[tuple[int, int]] = []
        at = 1
        for j in range(min(span, len(found.ends) - 1)):
            level_end = found.ends[j + 1]
            kept.append((at, level_end - int(per_start[j]) - (1 if j + 1 < span else 0)))
            at = level_end
        kept.append((at, end))
        return found.preds, _Reach.of_search(found, kept)

    # -- at risk ---------------------------------------------------------------------------

    def at_risk(self) -> None:
        """Owners of a group with a failed member that stayed up are at risk, from the step
        after the first member failed."""
        s, g, limit, zero = self.s, self.index.groups, self.limit, np.int32(self.zero)
        found: list[I32] = []
        # latest step first, so that an owner ends with the earliest of its groups
        for groups in reversed(self.touched):
            owners = g.owner[groups]
            at = int(s.g_first[groups[0]]) + 1  # one step per entry of ``touched``
            failed = np.minimum(
                (s.t_fail[owners] - zero).view(np.uint32), (s.t_down[owners] - zero).view(np.uint32)
            )
            keep = failed > limit
            if at > limit or not keep.any():
                continue
            owners = owners[keep]
            s.t_risk[owners] = zero + at
            s.p_risk[owners] = -2 - s.g_row[groups[keep]]
            found.append(owners)
        if found:
            self.risk, _ = _distinct(np.concatenate(found), s.stamp)


def _starting(nodes: I32, step: int) -> Sources:
    k = nodes.shape[0]
    return nodes, np.full(k, step, dtype=np.int32), np.full(k, -1, dtype=np.int32)


def _earliest(parts: list[Sources]) -> Sources:
    """The sources of ``parts``, each node once with its earliest start."""
    parts = [p for p in parts if p[0].shape[0]]
    if not parts:
        return _EMPTY, _EMPTY, _EMPTY
    if len(parts) == 1 and parts[0][0].shape[0] == 1:
        return parts[0]
    nodes = np.concatenate([p[0] for p in parts])
    starts = np.concatenate([p[1] for p in parts])
    causes = np.concatenate([p[2] for p in parts])
    order = np.lexsort((starts, nodes))
    nodes, starts, causes = nodes[order], starts[order], causes[order]
    first = np.ones(nodes.shape[0], dtype=np.bool_)
    first[1:] = nodes[1:] != nodes[:-1]
    return nodes[first], starts[first], causes[first]


def _with_tail_entries(parts: list[I32], tail: _Csr) -> I32:
    nodes = np.concatenate(parts) if parts else _EMPTY
    return nodes[tail.indptr[nodes + 1] > tail.indptr[nodes]]


def _distinct(items: I32, stamp: I32) -> tuple[I32, I32]:
    """The distinct values of ``items``, and where each occurs (its last occurrence: numpy
    writes repeated indices in order); ``stamp`` (any scratch array indexed by the values)
    then maps each value to its position among them. Linear, unlike a sort."""
    k = items.shape[0]
    at = np.arange(k, dtype=np.int32)
    stamp[items] = at
    last = np.flatnonzero(stamp[items] == at).astype(np.int32)
    distinct = items[last]
    stamp[distinct] = np.arange(distinct.shape[0], dtype=np.int32)
    return distinct, last


def _frontier(
    csr: _Csr,
    nodes: I32,
    starts: I32,
    times: I32,
    parents: I32,
    *,
    zero: int,
    limit: int,
    stamp: I32,
    is_tail: npt.NDArray[np.bool_],
    budget: int | None = None,
) -> _Reach | None:
    """Level-by-level BFS in numpy over ``csr``, each source entering at its start time:
    tail sources not reached sooner get it (their cause is already in ``parents``), the
    others already hold it. Returns the tail CIs written; or, when it would scan more than
    ``budget`` entries, None, with every time it wrote undone."""
    order = np.argsort(starts, kind="stable")
    nodes, starts = nodes[order], starts[order]
    written: list[I32] = []
    hops: list[int] = []
    total = 0
    frontier = _EMPTY
    t, i, count = int(starts[0]), 0, nodes.shape[0]
    while True:
        j = int(np.searchsorted(starts, np.int32(t), side="right"))
        if j > i:
            inject = nodes[i:j]
            i = j
            new = inject[is_tail[inject] & (times[inject] < zero)]
            times[new] = zero + t
            written.append(new)
            hops.append(t)
            frontier = np.concatenate((frontier, inject[times[inject] == zero + t]))
        if not frontier.shape[0] or t >= limit:
            if i >= count:
                break
            frontier, t = _EMPTY, int(starts[i])
            continue
        if budget is not None:  # give up before scanning more entries than the budget
            total += int((csr.indptr[frontier + 1] - csr.indptr[frontier]).sum())
            if total > budget:
                for undo in written:
                    times[undo] = 0
                return None
        positions, owner = gather_rows(csr.indptr, frontier)
        reached = csr.indices[positions]
        fresh = times[reached] < zero
        reached, via = reached[fresh], frontier[owner[fresh]]
        reached, first = _distinct(reached, stamp)
        times[reached] = zero + t + 1
        parents[reached] = via[first]
        written.append(reached)
        hops.append(t + 1)
        frontier, t = reached, t + 1
    if not written:
        return _NO_REACH
    sizes = [w.shape[0] for w in written]
    return _Reach(np.concatenate(written), lambda: np.repeat(np.array(hops, dtype=np.int32), sizes))


_SMALL: Final = 256  # tail BFS sources that try a numpy frontier first ...
_SMALL_REACH: Final = 8192  # ... until it has scanned this many entries


class _Reach:
    """The tail CIs a BFS reached (``nodes``), and their times in hops, worked out on demand:
    from scipy's BFS order, level by level, without a gather."""

    __slots__ = ("_hops", "_make", "nodes")

    def __init__(self, nodes: I32, make: Callable[[], I32]) -> None:
        self.nodes = nodes
        self._make = make
        self._hops: I32 | None = None

    @property
    def hops(self) -> I32:
        if self._hops is None:
            self._hops = self._make()
        return self._hops

    @classmethod
    def of_search(cls, found: Search, kept: list[tuple[int, int]]) -> _Reach:
        """The entries ``order[a:b]`` for each ``(a, b)`` in ``kept``."""
        order = found.order
        nodes = np.concatenate([order[a:b] for a, b in kept])

        def make() -> I32:
            ends = np.array(found.ends, dtype=np.int64)
            sizes = np.diff(ends, prepend=0)
            times = np.arange(found.first, found.first + ends.shape[0], dtype=np.int32)
            at = np.repeat(times, sizes)
            return np.concatenate([at[a:b] for a, b in kept])

        return cls(nodes, make)


_NO_REACH: Final = _Reach(_EMPTY, lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class _Answer:
    """What a propagation reached: core CIs failed, tail CIs failed, CIs at risk (disjoint);
    ``tail_all_down`` when every tail CI is down, at its tail time."""

    core: I32
    tail: _Reach
    tail_all_down: bool
    risk: I32

    def affected(self) -> I32:
        return np.concatenate((self.core, self.tail.nodes, self.risk))
