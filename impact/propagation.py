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
member time over groups)`` per state level. One compiled pass (:func:`_simulate`, numba)
computes it level by level for both state levels at once, counting lost members per group,
and records each CI's time, cause and place in the answer as it goes. See :func:`propagate`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from itertools import repeat
from types import MappingProxyType
from typing import Any, Final, Generic, NamedTuple, TypeVar, cast, overload

import numpy as np
import numpy.typing as npt

from graph.errors import LimitExceededError, NotFoundError, ValidationError
from graph.model import Direction, Limits
from impact.index import (
    I8,
    I32,
    INF,
    NO_FILTER,
    ImpactFilter,
    ImpactIndex,
    Scratch,
    View,
)


class ImpactState(StrEnum):
    AT_RISK = "at_risk"  # redundancy absorbed the failure; one more loss may hurt
    DEGRADED = "degraded"
    DOWN = "down"


STATE_CODES: Final = {ImpactState.AT_RISK: 1, ImpactState.DEGRADED: 2, ImpactState.DOWN: 3}
STATES: Final = (None, ImpactState.AT_RISK, ImpactState.DEGRADED, ImpactState.DOWN)
_DOWN, _DEG, _RISK = 3, 2, 1
_AT_RISK_STATE, _DEGRADED_STATE, _DOWN_STATE = STATES[1:]  # no enum lookups on the hot path
_I32_MAX: Final = 2**31 - 1


class Hop(NamedTuple):
    """One link of an explanation: ``node`` is affected because of the next hop's node, through
    a relationship of type ``relationship`` (stored ``node -> next`` when ``direction`` is
    ``out``, ``next -> node`` when ``in``), decided by redundancy group ``group`` if set.
    The last hop is the failed CI itself and has no relationship.

    A named tuple: immutable, and about half a frozen dataclass's cost to make (a page of
    explanations makes hundreds)."""

    node: int
    relationship: str | None = None
    direction: Direction | None = None
    group: str | None = None


# Hop(...) without the Python frame of its generated __new__ (all four fields given)
_new_hop: Final = cast(
    "Callable[[type[Hop], tuple[int, str | None, Direction | None, None]], Hop]", tuple.__new__
)
_FEW: Final = 12  # CIs up to which a page's states are read as scalars, not arrays
_LEAVES: Final = _FEW  # failed CIs up to which propagate looks for leaves (see _leaves)

_T = TypeVar("_T")


class _once(Generic[_T]):
    """``functools.cached_property`` without the lock Python 3.11 takes on every first read
    (3.12 dropped it): a radius's figures cost microseconds to read, and computing one twice
    in two threads at once is harmless (the same value)."""

    def __init__(self, compute: Callable[[Any], _T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _once[_T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> _T | _once[_T]:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.compute(obj)
        return value


class _Walk:
    """The records of one walk of :meth:`BlastRadius.paths` (see :func:`_walk_back`), kept
    so that :meth:`BlastRadius.rule` finds the links it worked out: read into lists when
    first asked, so that a page nobody asks the rules of pays nothing for them."""

    __slots__ = ("_at", "_records", "_types", "flat", "rows")

    def __init__(self, flat: I32, rows: dict[int, int]) -> None:
        self.flat = flat  # _RECORD int32 per record
        self.rows = rows  # record -> the membership row that decided it
        self._at: dict[int, int] = {}  # CI << 2 | code -> record
        self._records: list[int] = []  # flat, as ints
        self._types: list[int] = []  # per record, the type number of its entry

    def link(self, node: int, code: int, types: npt.NDArray[np.int16]) -> tuple[int, int] | None:
        """:meth:`BlastRadius._link` of ``node`` reaching ``code``, if this walk met it."""
        if not self._records:
            flat = self.flat
            keys = flat[0::_RECORD].astype(np.int64) << 2 | flat[1::_RECORD]
            self._at = dict(zip(keys.tolist(), range(keys.shape[0]), strict=True))
            self._records = flat.tolist()
            self._types = types[flat[4::_RECORD]].tolist() if types.shape[0] else []
        record = self._at.get(node << 2 | code)
        if record is None:
            return None
        parent = self._records[_RECORD * record + 3]
        if parent < 0:  # a failed CI
            return -1, -1
        row = self.rows.get(record)
        if row is not None:
            return -2 - row, -1
        return self._records[_RECORD * parent], self._types[record]


class BlastRadius:
    """The result of :func:`propagate`: what is affected, how badly, how far, and why.

    ``affected`` lists every affected CI (the failed ones included) in the order they failed,
    then those at risk, with ``states`` (1 at risk, 2 degraded, 3 down) and ``distances``
    alongside; ``nodes`` is the same set nearest first. Per-CI questions (:meth:`code_of`,
    :meth:`path`, :meth:`rule`) are answered from working arrays the index lends until this
    object is garbage-collected.
    """

    # CI: what _start(CI) reads, where known without reading (see _knew_leaves)
    _known: Mapping[int, tuple[int, int, int]] = MappingProxyType({})

    def __init__(
        self,
        index: ImpactIndex,
        *,
        view: View,
        filter: ImpactFilter,
        failed: Mapping[int, ImpactState],
        baseline: I8 | None,
        scratch: Scratch,
        count: int,
        limit: int,
    ) -> None:
        self._s = scratch  # first: __del__ gives it back to the index's pool
        self.index = index
        self.view = view
        self.filter = filter
        self.failed = dict(failed)
        self.baseline = baseline
        self._zero = scratch.zero  # scratch times are stored as zero + hops
        self._limit = limit
        self.count = count
        # copies (also of states and distances, when asked): the scratch goes back to the
        # index's pool with this object
        self.affected: I32 = scratch.failed_queue[:count].copy()
        # per (CI, state code): its link (rule(), worked out once), and the explanation of
        # each CI asked for (paths(): a page asked again is not walked again)
        self._links: dict[tuple[int, int], tuple[int, int]] = {}
        self._chains: dict[int, tuple[Hop, ...]] = {}  # key: CI << 2 | code
        self._walks: list[_Walk] = []  # the records of each walk of paths(), for rule()

    def _knew_leaves(self, down: list[int], degraded: list[int]) -> None:
        """What :func:`_leaves` wrote, kept as it was written: each failed CI's state at
        step 0, and the counts. A small answer's explanations and counts then cost no reads
        of the working arrays."""
        self._known = known = {}
        for v in down:
            known[v] = (v, _DOWN, 0)
        for v in degraded:
            known[v] = (v, _DEG, 0)
        self.__dict__["counts"] = {  # what the _once property would compute
            _AT_RISK_STATE: 0,
            _DEGRADED_STATE: len(degraded),
            _DOWN_STATE: len(down),
        }

    def __del__(self) -> None:
        self.index.give_back(self._s)  # cheaper than a weakref.finalize per query

    @_once
    def states(self) -> I8:
        """Per ``affected`` CI: 1 at risk, 2 degraded, 3 down."""
        return self._s.out_state[: self.count].copy()

    @_once
    def distances(self) -> I32:
        """Per ``affected`` CI: hops from the failed CIs to its final state."""
        return self._s.out_distance[: self.count].copy()

    @_once
    def counts(self) -> dict[ImpactState, int]:
        """How many affected CIs (the failed ones included) are in each state."""
        if self.count <= _FEW:  # a handful: counted as Python ints, no array call
            codes = self.states.tolist()
            return {state: codes.count(code) for state, code in STATE_CODES.items()}
        per_code = np.bincount(self.states.view(np.uint8), minlength=4).tolist()
        return dict(zip(STATES[1:], per_code[1:], strict=True))  # codes 1-3: the enum's order

    def _within(self, times: I32, nodes: I32) -> npt.NDArray[np.bool_]:
        """Which of ``nodes`` have a time of this query in ``times``, within the limit."""
        hops = times[nodes] - np.int32(self._zero)
        return hops.view(np.uint32) <= self._limit

    def _time(self, times: I32, node: int) -> int:
        """``node``'s time in ``times`` in hops; INF when none or past the limit."""
        hops = int(times[node]) - self._zero
        return hops if 0 <= hops <= self._limit else INF

    @_once
    def nodes(self) -> I32:
        """Affected CIs (failed ones included), nearest first, then by node number."""
        if self.count <= 1:
            return self.affected.copy()
        if self.count <= _FEW:  # a handful: sorted as Python ints, few array calls
            hops = self._s.out_distance[: self.count].tolist()
            pairs = sorted(zip(hops, self.affected.tolist(), strict=True))
            return np.array([node for _, node in pairs], dtype=np.int32)
        n, distances = self.index.node_count, self.distances
        if not distances.shape[0] or int(distances.max()) < _I32_MAX // max(n, 1) - 1:
            # one int32 key per CI (sorts twice as fast as int64); no distance overflows it
            key = distances * np.int32(n) + self.affected
            key.sort()
            return key % np.int32(max(n, 1))
        wide = (distances.astype(np.int64) << 32) | self.affected.astype(np.int64)
        return (np.sort(wide) & 0xFFFFFFFF).astype(np.int32)

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
        """Why ``node`` reached state ``code`` when it did: a parent, -1 for a failed CI, or
        ``-2 - row`` for the membership that broke a group's quorum."""
        return self._link(node, code)[0]

    def _link(self, node: int, code: int) -> tuple[int, int]:
        """:meth:`_cause`, memoised, with the type number of the plain entry from the parent
        (-1 for a failed CI or a group).

        Worked out from the times (the simulation records none, so that only the CIs whose
        explanation is read pay for it): a CI that went down (failed) one step before, with a
        plain entry of this view into ``node``, as the simulation gives plain entries the
        precedence; else a group of ``node`` whose verdict reached ``code`` one step before,
        and a member it lost then. A link a page's walk already worked out (:meth:`paths`) is
        read from its records."""
        key = (node, code)
        found = self._links.get(key)
        if found is None:
            for walk in self._walks:
                found = walk.link(node, code, self.view.csr.types)
                if found is not None:
                    break
            else:
                found = self._find_link(node, code)
            self._links[key] = found
        return found

    def _find_link(self, node: int, code: int) -> tuple[int, int]:
        s = self._s
        if code == _RISK:
            return int(s.p_risk[node]), -1
        down = code == _DOWN
        times = s.t_down if down else s.t_fail
        t = self._time(times, node)
        if t == 0:
            return -1, -1
        reverse = self.index.reverse
        sources = reverse.indices[int(reverse.indptr[node]) : int(reverse.indptr[node + 1])]
        csr = self.view.csr
        ptr, cols = csr.indptr, csr.indices
        for u in sources[times[sources] == self._zero + t - 1].tolist():
            start, end = int(ptr[u]), int(ptr[u + 1])
            at = start + int(cols[start:end].searchsorted(node))
            if at < end and int(cols[at]) == node:
                return u, int(csr.types[at])
        return self._group_cause(node, t - 1, down), -1

    def _group_cause(self, node: int, step: int, down: bool) -> int:
        g, s, zero = self.index.groups, self._s, self._zero
        row_ok, baseline = self.view.row_ok, self.baseline
        # groups are sorted by owner; keys of the owners' dtype, or numpy would cast the
        # whole owner column (one copy per group: O(groups) per call)
        lo, hi = g.owner.searchsorted(np.array((node, node + 1), dtype=g.owner.dtype))
        for group in range(int(lo), int(hi)):
            first, last = int(g.indptr[group]), int(g.indptr[group + 1])
            keep = np.flatnonzero(row_ok[first:last] & (g.member[first:last] >= 0))
            members = g.member[first:last][keep]
            at_down = s.t_down[members].astype(np.int64) - zero
            at_fail = s.t_fail[members].astype(np.int64) - zero
            before = (
                baseline[members].astype(np.int64)
                if baseline is not None
                else np.zeros(members.shape[0], dtype=np.int64)
            )
            counts = _lost_small if members.shape[0] <= _SMALL_GROUP else _lost
            lose = (int(g.lose_down[group]), int(g.lose_fail[group]))
            now = _verdict(*counts(at_down, at_fail, before, step), *lose)
            was = _verdict(*counts(at_down, at_fail, before, step - 1), *lose)
            if (now == _DOWN and was < _DOWN) if down else (now >= _DEG and was == 0):
                hit = (at_down == step) if down else (at_down == step) | (at_fail == step)
                return -2 - (first + int(keep[np.flatnonzero(hit)[0]]))
        raise AssertionError(f"no cause found for CI {node} at step {step + 1}")

    def _decided(self, nodes: I32, codes: I32, steps: I32, *, compiled: bool) -> I32:
        """The membership row that decided each CI ``nodes[i]`` reaching ``codes[i]`` at
        ``steps[i]`` (> 0) where no plain entry explains it: the group that put it at risk,
        else :meth:`_group_cause`'s, all at once through :func:`_group_links` when
        ``compiled``."""
        s, g = self._s, self.index.groups
        steps = steps - 1  # the step of the lost member
        if not compiled:
            causes = [
                int(s.p_risk[x]) if code == _RISK else self._group_cause(x, t, code == _DOWN)
                for x, code, t in zip(nodes.tolist(), codes.tolist(), steps.tolist(), strict=True)
            ]
            return -2 - np.array(causes, dtype=np.int32)
        rows = np.empty(nodes.shape[0], dtype=np.int32)
        baseline = self.baseline
        _group_kernel()(
            g.owner, g.indptr, g.member, g.rules, self.view.row_ok, s.times,
            _NO_BASELINE if baseline is None else np.ascontiguousarray(baseline, dtype=np.int8),
            baseline is not None, self._zero, nodes, steps, codes == _DOWN, rows,
        )  # fmt: skip
        risk = codes == _RISK
        if risk.any():
            rows[risk] = -2 - s.p_risk[nodes[risk]]
        if (rows < 0).any():
            at = int(np.flatnonzero(rows < 0)[0])
            raise AssertionError(f"no cause found for CI {nodes[at]} at step {steps[at] + 1}")
        return rows

    def _group_hops(self, nodes: list[int], rows: list[int]) -> list[Hop]:
        """The hops of ``nodes`` whose states the redundancy-group memberships ``rows``
        decided: through the relationship type :meth:`ImpactIndex.gated_type` gives (the
        first type of the row that the view lets carry failure), named after the group."""
        g, index = self.index.groups, self.index
        names, directions = index.topology.type_names, index.hop_directions
        at = np.array(rows, dtype=np.int64)
        masks = (g.types[at] & self.view.type_mask).tolist()
        hops = []
        for x, mask, group in zip(nodes, masks, g.group[at].tolist(), strict=True):
            t = (mask & -mask).bit_length() - 1  # the lowest type number set; -1 for none
            name, direction = (names[t], directions[t]) if 0 <= t < len(names) else (None, None)
            hops.append(Hop(x, name, direction, g.names[group][1]))
        return hops

    def path(self, node: int) -> list[Hop]:
        """The explanation of ``node``: hops back to a failed CI, ``distance`` + 1 long.

        Raises NotFoundError when ``node`` is not affected.
        """
        return self.paths([node])[0]

    def paths(self, nodes: Iterable[int]) -> list[list[Hop]]:
        """:meth:`path` of each of ``nodes`` (a page): one call of :func:`_walk_back` walks
        back from all of them at once (compiled when the propagation kernel is), a few more
        only past the links redundancy groups decided; then each explanation is assembled
        once per (CI, state) and shared by the paths through it.

        Raises NotFoundError when one of ``nodes`` is not affected.
        """
        asked = nodes if isinstance(nodes, list) else list(nodes)
        chains = self._chains
        if len(asked) > _FEW:
            cis, codes, steps = self._starts(np.asarray(asked, dtype=np.int32))
            keys = fresh = (cis.astype(np.int64) << 2 | codes).tolist()
            if chains:  # some explained before
                where = [i for i, key in enumerate(keys) if key not in chains]
                fresh = [keys[i] for i in where]
                cis, codes, steps = cis[where], codes[where], steps[where]
            if not fresh:
                return [list(chains[key]) for key in keys]
            tails = self._walk(cis, codes, steps)
            chains.update(zip(fresh, tails, strict=True))
            if fresh is keys:  # all walked now
                return list(map(list, tails))
            return [list(chains[key]) for key in keys]
        # a few CIs: their states read as scalars, no array calls unless some walk is needed
        known, keys, todo = self._known, [], []
        for asked_x in asked:
            x, code, t = known.get(asked_x) or self._start(int(asked_x))
            key = x << 2 | code
            keys.append(key)
            if key not in chains:
                if t:
                    todo.append((x, code, t))
                else:  # a failed CI: its own explanation
                    chains[key] = (_new_hop(Hop, (x, None, None, None)),)
        if todo:
            nodes_, codes_, steps_ = zip(*todo, strict=True)
            tails = self._walk(
                np.array(nodes_, dtype=np.int32),
                np.array(codes_, dtype=np.int8),
                np.array(steps_, dtype=np.int32),
            )
            chains.update(zip([x << 2 | code for x, code, _ in todo], tails, strict=True))
        return [list(chains[key]) for key in keys]

    def _start(self, node: int) -> tuple[int, int, int]:
        """``node``, its state code and distance, read as scalars. Raises NotFoundError
        when ``node`` is not affected."""
        s, zero, limit = self._s, self._zero, self._limit
        down, fail = s.times[node].tolist()
        if 0 <= down - zero <= limit:
            return node, _DOWN, down - zero
        if 0 <= fail - zero <= limit:
            return node, _DEG, fail - zero
        risk = int(s.risk[node, 0]) - zero
        if 0 <= risk <= limit:
            return node, _RISK, risk
        raise NotFoundError(f"{self.index.topology.ids[node]!r} is not affected")

    def _starts(self, asked: I32) -> tuple[I32, I8, I32]:
        """:meth:`_start` of many CIs, as arrays: ``asked``, their codes and distances."""
        s, zero = self._s, np.int32(self._zero)
        hops = s.times[asked] - zero  # went down, failed
        within = hops.view(np.uint32) <= self._limit
        codes = np.where(within[:, 0], np.int8(_DOWN), within[:, 1].astype(np.int8) << 1)
        steps = np.where(within[:, 0], hops[:, 0], hops[:, 1])
        if not codes.all():  # at risk, or not affected
            at = np.flatnonzero(codes == 0)
            risk = s.t_risk[asked[at]] - zero
            out = np.flatnonzero(risk.view(np.uint32) > self._limit)
            if out.shape[0]:
                node = int(asked[at[out[0]]])
                raise NotFoundError(f"{self.index.topology.ids[node]!r} is not affected")
            codes[at] = _RISK
            steps[at] = risk
        return asked, codes, steps

    def _walk(self, nodes: I32, codes: I8, steps: I32) -> list[tuple[Hop, ...]]:
        """The explanations of ``nodes[i]`` reaching state ``codes[i]`` at ``steps[i]``.

        :func:`_walk_back` follows plain entries back from all of them at once, one record
        per (CI, code) on the way; a record it leaves without a parent past step 0 was
        decided by a redundancy group (or is at risk): its membership is worked out here and
        the walk goes on from that member, in one more call for all such records. The
        explanations are then assembled nearest the failed CIs first, sharing their tails."""
        s, index, groups = self._s, self.index, self.index.groups
        reverse, csr = index.reverse, self.view.csr
        kernel = _links_for(index)
        room = int(steps.sum()) + steps.shape[0]  # records: at most the hops asked
        records = np.empty(1 + _RECORD * room, dtype=np.int32)
        records[0] = 0
        table = np.zeros(1 << (4 * room).bit_length(), dtype=np.int32)
        rows: dict[int, int] = {}  # record -> the membership row that decided it
        waiting: list[int] = []  # records whose parent the next call walks from
        done = 0
        first: list[int] = []  # each start's record
        calls = 0
        while nodes.shape[0]:
            left = kernel(
                reverse.indptr, reverse.indices, csr.indptr, csr.indices, s.times,
                nodes, codes, steps, records, table,
            )  # fmt: skip
            calls += 1
            count = int(records[0])
            view = records[1 : 1 + _RECORD * count].reshape(count, _RECORD)
            if waiting:  # the records decided by a group: their member's record
                view[waiting, 3] = steps  # (the kernel left each start's record in steps)
            else:
                first = steps.tolist()
            if not left:
                break
            head = view[done:]
            stuck = np.flatnonzero((head[:, 3] < 0) & (head[:, 2] > 0)) + done
            found = view[stuck, :3].T.copy()  # CIs, codes, steps
            decided = self._decided(*found, compiled=kernel is not _walk_back)
            waiting = stuck.tolist()
            rows.update(zip(waiting, decided.tolist(), strict=True))
            done = count
            # the walk goes on from each lost member, down or failed one step before
            nodes = groups.member[decided]
            steps = found[2] - 1
            went_down = s.t_down[nodes] == steps + np.int32(self._zero)
            codes = np.where(went_down, np.int8(_DOWN), np.int8(_DEG))
        count = int(records[0])
        flat = records[1 : 1 + _RECORD * count]
        # one Hop per record, made in one pass as if each came through its plain entry
        xs, parents = flat[0::_RECORD].tolist(), flat[3::_RECORD].tolist()
        hops: list[Hop]
        if csr.types.shape[0]:  # an entry's type (records with no entry are redone below)
            types = csr.types[flat[4::_RECORD]].tolist()
            names, directions = index.topology.type_names, index.hop_directions
            hops = list(
                map(
                    _new_hop,
                    repeat(Hop),
                    zip(
                        xs,
                        map(names.__getitem__, types),
                        map(directions.__getitem__, types),
                        repeat(None),
                    ),
                )
            )
        else:
            hops = [Hop(x) for x in xs]
        for record, parent in enumerate(parents):
            if parent < 0:  # a failed CI
                hops[record] = Hop(xs[record])
        if rows:
            made = self._group_hops([xs[record] for record in rows], list(rows.values()))
            for record, hop in zip(rows, made, strict=True):
                hops[record] = hop
        # each record's explanation: its hop, then its parent's (tails[-1]: nothing), the
        # parents' first: one call appended them first, more calls continued the walk from
        # the members of groups, nearer the failed CIs: by step then
        order = range(count) if calls == 1 else np.argsort(flat[2::_RECORD], kind="stable").tolist()
        tails: list[tuple[Hop, ...]] = [()] * (count + 1)
        for record in order:
            tails[record] = (hops[record],) + tails[parents[record]]
        self._walks.append(_Walk(flat, rows))
        return list(map(tails.__getitem__, first))

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


_SMALL_GROUP: Final = 32  # members up to which a group's losses are counted in plain Python


def _lost(
    at_down: npt.NDArray[np.int64],
    at_fail: npt.NDArray[np.int64],
    before: npt.NDArray[np.int64],
    by: int,
) -> tuple[int, int]:
    """Members of a group lost by step ``by`` (down; down or degraded), baseline included."""
    lost_down = int((((at_down >= 0) & (at_down <= by)) | (before >= _DOWN)).sum())
    lost_fail = int((((at_fail >= 0) & (at_fail <= by)) | (before >= _DEG)).sum())
    return lost_down, lost_fail


def _lost_small(
    at_down: npt.NDArray[np.int64],
    at_fail: npt.NDArray[np.int64],
    before: npt.NDArray[np.int64],
    by: int,
) -> tuple[int, int]:
    """:func:`_lost` for a few members: plain Python beats a dozen numpy calls."""
    was = before.tolist()
    lost_down = sum(b >= _DOWN or 0 <= d <= by for d, b in zip(at_down.tolist(), was, strict=True))
    lost_fail = sum(b >= _DEG or 0 <= f <= by for f, b in zip(at_fail.tolist(), was, strict=True))
    return lost_down, lost_fail


def _verdict(lost_down: int, lost_fail: int, lose_down: int, lose_fail: int) -> int:
    if lost_down >= lose_down:
        return _DOWN
    return _DEG if lost_fail >= lose_fail else 0


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
    depth = filter.depth
    if depth is not None and not 0 <= depth <= Limits.MAX_DEPTH:
        raise LimitExceededError(f"depth {depth} is outside 0..{Limits.MAX_DEPTH}", field="depth")
    limit = INF - 1 if depth is None else depth
    view = index.view(filter)
    flags = view.flags
    n = len(flags)  # a flag byte per CI (index.node_count, without two properties)
    if baseline is not None and baseline.shape != (n,):
        raise ValidationError(f"baseline has shape {baseline.shape}, expected ({n},)")
    down_seeds: list[int] = []
    deg_seeds: list[int] = []
    # Leaves: no failed CI has a plain entry or a membership in the view, so none can fail
    # another and the answer is theirs alone, which _leaves writes without the cost of
    # calling the kernel (most CIs are leaves: users, top services). A few are checked.
    leaves = len(failures) <= _LEAVES
    for node, state in failures.items():
        if not 0 <= node < n:
            raise NotFoundError(f"no CI numbered {node}")
        if leaves and flags[node]:
            leaves = False
        if state is _DOWN_STATE:
            down_seeds.append(node)
        elif state is _DEGRADED_STATE:
            deg_seeds.append(node)
        else:
            raise ValidationError(
                f"a failed CI is down or degraded, not {state}", item=index.topology.ids[node]
            )

    s = index.borrow()
    s.begin()
    if leaves:
        count = _leaves(s, down_seeds, deg_seeds)
    else:
        # Should the run raise, the scratch is not given back: a run cut short (an interrupt
        # in the plain-Python kernel) may leave states and group counters set that the next
        # query would take for its own.
        count = _run(
            index,
            view,
            s,
            np.array(down_seeds, dtype=np.int32) if down_seeds else _NO_SEEDS,
            np.array(deg_seeds, dtype=np.int32) if deg_seeds else _NO_SEEDS,
            baseline=baseline,
            limit=limit,
        )
    radius = BlastRadius(  # gives the scratch back when collected
        index,
        view=view,
        filter=filter,
        failed=failures,
        baseline=baseline,
        scratch=s,
        count=count,
        limit=limit,
    )
    if leaves:
        radius._knew_leaves(down_seeds, deg_seeds)
    return radius


def _leaves(s: Scratch, down: list[int], degraded: list[int]) -> int:
    """The kernel's writes for failed CIs none of which can fail another: each at step 0
    (:func:`_simulate`'s first two loops; its state bytes stay clear). Returns the count."""
    zero, nf = s.zero, 0
    for v in down:
        s.t_down[v] = s.t_fail[v] = zero  # went down, and failed then
        s.failed_queue[nf], s.out_state[nf], s.out_distance[nf] = v, _DOWN, 0
        nf += 1
    for v in degraded:
        s.t_fail[v] = zero
        s.failed_queue[nf], s.out_state[nf], s.out_distance[nf] = v, _DEG, 0
        nf += 1
    return nf


_NO_BASELINE: Final = np.zeros(0, dtype=np.int8)
_NO_SEEDS: Final = np.zeros(0, dtype=np.int32)


def _run(
    index: ImpactIndex,
    view: View,
    s: Scratch,
    down: I32,
    degraded: I32,
    *,
    baseline: I8 | None,
    limit: int,
) -> int:
    g = index.groups
    return int(
        _kernel_for(index)(
            view.csr.indptr,
            view.csr.indices,
            view.flags,
            g.by_member_indptr,
            g.by_member,
            g.by_member_group,
            view.member_ok,
            view.row_ok,
            g.member,
            g.indptr,
            g.rules,
            _NO_BASELINE if baseline is None else np.ascontiguousarray(baseline, dtype=np.int8),
            baseline is not None,
            down,
            degraded,
            s.zero,
            limit,
            s.times,
            s.risk,
            s.state,
            s.groups,
            s.touched,
            s.decided,
            s.failed_queue,
            s.down_queue,
            s.out_state,
            s.out_distance,
        )
    )


def _simulate(  # noqa: PLR0917  (one compiled loop: numba takes positional arguments)
    ptr: Any,
    idx: Any,
    flags: Any,
    mptr: Any,
    mrows: Any,
    mgroup: Any,
    mok: Any,
    row_ok: Any,
    g_member: Any,
    g_indptr: Any,
    rules: Any,
    baseline: Any,
    has_base: bool,
    down_seeds: Any,
    degraded_seeds: Any,
    zero: int,
    limit: int,
    tt: Any,
    risk: Any,
    sb: Any,
    gs: Any,
    touched: Any,
    decided: Any,
    qf: Any,
    qd: Any,
    out_state: Any,
    out_dist: Any,
) -> int:
    """The synchronous simulation, compiled by numba (see :func:`_kernel`); returns how many
    CIs are affected: ``qf[:count]``, with ``out_state`` and ``out_dist`` alongside.

    ``tt[v]`` holds (down, failed) times of CI ``v`` as ``zero`` + step, ``risk[v]`` (time,
    cause) of being at risk. Other causes are not recorded: :meth:`BlastRadius._cause` works
    them out from the times, for the few CIs whose explanation is read. A CI that goes down
    fails then too unless it failed before, so a down time implies a failed time. ``sb[v]``
    says the same as ``tt[v]`` in one byte (0 neither, 1 failed, 3 down): the loop reads it,
    writes both, and clears ``sb`` for every CI it reached before it returns. ``qf`` lists CIs
    as they fail (then those at risk), ``qd`` those that go down after they failed, so step
    ``t``'s CIs are one slice of each. At step ``t`` (while ``t < limit``): each CI that failed
    at ``t`` carries its state over its plain entries (down when it also went down at ``t``),
    and one that went down at ``t`` having failed before carries down; each counts against its
    groups (a member lost before, per ``baseline``, counts from the start instead); a group
    whose verdict worsens decides its owner at ``t + 1`` unless a plain entry already did.
    ``flags`` (per CI: bit 0 plain entries, bit 1 memberships) lets the many CIs with neither
    cost one byte. Afterwards, owners of touched groups that did not fail are at risk from the
    step after their group's first failure (the earliest such group is the cause), and the
    touched groups' counters (``gs``: first step, lost down, lost failed, first row; ``rules``:
    needed to lose down, failed; owner) are reset.
    """
    nf = 0  # CIs in qf
    nd = 0
    for v in down_seeds:
        tt[v, 0] = tt[v, 1] = zero
        sb[v] = 3
        qf[nf] = v
        out_state[nf] = 3
        out_dist[nf] = 0
        nf += 1
    for v in degraded_seeds:
        tt[v, 1] = zero
        sb[v] = 1
        qf[nf] = v
        out_state[nf] = 2
        out_dist[nf] = 0
        nf += 1
    n_touched = 0
    fs = ds = 0  # where step t's CIs start in qf, qd
    t = 0
    while t < limit and (fs < nf or ds < nd):
        fe, de = nf, nd
        nxt = zero + t + 1
        n_dec = 0
        # step t's failed CIs (out_state says which went down too), then those that went
        # down at t having failed before (or, rarely, at t by another entry)
        for k in range(fs, fe + de - ds):
            if k < fe:
                u = qf[k]
                lost = True
                went_down = out_state[k] == 3
            else:
                u = qd[ds + k - fe]
                lost = False
                went_down = True
            f = flags[u]
            if f == 0:  # no plain entry, no group: a leaf
                continue
            if not f & 1:
                pass
            elif went_down and lost:  # the common case
                for j in range(ptr[u], ptr[u + 1]):
                    v = idx[j]
                    b = sb[v]
                    if b == 0:
                        sb[v] = 3
                        tt[v, 0] = tt[v, 1] = nxt
                        qf[nf] = v
                        out_state[nf] = 3
                        nf += 1
                    elif b == 1:
                        sb[v] = 3
                        tt[v, 0] = nxt
                        qd[nd] = v
                        nd += 1
            elif lost:
                for j in range(ptr[u], ptr[u + 1]):
                    v = idx[j]
                    if sb[v] == 0:
                        sb[v] = 1
                        tt[v, 1] = nxt
                        qf[nf] = v
                        out_state[nf] = 2
                        nf += 1
            else:
                for j in range(ptr[u], ptr[u + 1]):
                    v = idx[j]
                    b = sb[v]
                    if b < 3:
                        sb[v] = 3
                        tt[v, 0] = nxt
                        if b == 0:
                            tt[v, 1] = nxt
                            qf[nf] = v
                            out_state[nf] = 3
                            nf += 1
                        else:
                            qd[nd] = v
                            nd += 1
            if not f & 2:
                continue
            for j in range(mptr[u], mptr[u + 1]):
                if not mok[j]:
                    continue
                g = mgroup[j]
                if gs[g, 0] == INF:  # first news from this group
                    gs[g, 0] = t
                    gs[g, 3] = mrows[j]
                    touched[n_touched] = g
                    n_touched += 1
                    if has_base:  # members lost before count from the start
                        lost_down = lost_fail = 0
                        for row in range(g_indptr[g], g_indptr[g + 1]):
                            m = g_member[row]
                            if m >= 0 and row_ok[row]:
                                lost_down += baseline[m] >= 3
                                lost_fail += baseline[m] >= 2
                        gs[g, 1] = lost_down
                        gs[g, 2] = lost_fail
                before = baseline[u] if has_base else 0
                down, fail = gs[g, 1], gs[g, 2]
                need_down, need_fail = rules[g, 0], rules[g, 1]
                was = 2 if down >= need_down else (1 if fail >= need_fail else 0)
                down += went_down and before < 3
                fail += lost and before < 2
                gs[g, 1] = down
                gs[g, 2] = fail
                verdict = 2 if down >= need_down else (1 if fail >= need_fail else 0)
                if verdict > was:  # the owner fails at t + 1 (1), goes down (2) or both
                    decided[n_dec, 0] = g
                    decided[n_dec, 1] = verdict
                    n_dec += 1
        for i in range(n_dec):  # after the plain entries, as their causes come first
            owner = rules[decided[i, 0], 2]
            b = sb[owner]
            if decided[i, 1] == 2:
                if b < 3:
                    sb[owner] = 3
                    tt[owner, 0] = nxt
                    if b == 0:
                        tt[owner, 1] = nxt
                        qf[nf] = owner
                        out_state[nf] = 3
                        nf += 1
                    else:
                        qd[nd] = owner
                        nd += 1
            elif b == 0:
                sb[owner] = 1
                tt[owner, 1] = nxt
                qf[nf] = owner
                out_state[nf] = 2
                nf += 1
        for i in range(fe, nf):  # this step's CIs, in one sequential pass
            out_dist[i] = t + 1
        fs, ds = fe, de
        t += 1
    if nd:  # CIs that went down after failing: down is their final state
        for k in range(nf):
            if out_state[k] == 2:
                u = qf[k]
                if sb[u] == 3:
                    out_state[k] = 3
                    out_dist[k] = tt[u, 0] - zero
    for i in range(n_touched):  # touched in step order: the first group to reach an owner
        g = touched[i]
        at = gs[g, 0] + 1
        owner = rules[g, 2]
        if at <= limit and sb[owner] == 0 and risk[owner, 0] < zero:
            risk[owner, 0] = zero + at
            risk[owner, 1] = -2 - gs[g, 3]
            qf[nf] = owner
            out_state[nf] = 1
            out_dist[nf] = at
            nf += 1
        gs[g, 0] = INF
        gs[g, 1] = 0
        gs[g, 2] = 0
    for i in range(nf):
        sb[qf[i]] = 0
    return nf


# CIs + plain entries from which an index loads the compiled kernel (about a second, more
# to compile it once per install); below, the plain-Python source answers in milliseconds, so
# a small CMDB (a demo, one CLI run) never loads numba. Once loaded, every index uses it.
COMPILE_FROM = 20_000


def _kernel_for(index: ImpactIndex) -> Callable[..., int]:
    if _compiled:  # once loaded, every index uses it (read on the path of every query)
        return _compiled[0]
    if index.node_count + index.plain.csr.edge_count >= COMPILE_FROM:
        return _kernel()
    return _simulate


_compiled: list[Callable[..., int]] = []  # the compiled kernel, once loaded


def _kernel() -> Callable[..., int]:
    """:func:`_simulate` compiled by numba: on first use in a process, from numba's on-disk
    cache (``__pycache__``), else compiled there and then (seconds, once per install)."""
    if not _compiled:  # two threads may both load it: harmless, the first one is used
        import numba  # imported here: it takes ~0.5 s

        _compiled.append(numba.njit(cache=True, nogil=True)(_simulate))
    return _compiled[0]


_RECORD: Final = 5  # int32 per record of _walk_back: CI, code, step, parent record, entry


def _walk_back(  # noqa: PLR0917  (compiled by numba: positional arguments)
    rev_ptr: Any,
    rev_idx: Any,
    ptr: Any,
    cols: Any,
    times: Any,
    nodes: Any,
    codes: Any,
    steps: Any,
    records: Any,
    table: Any,
) -> int:
    """Walk back from each start (``nodes[i]`` reached state ``codes[i]`` at step
    ``steps[i]``) to a failed CI along plain entries; returns how many records it left
    without a parent past step 0 (a redundancy group's or an at-risk link: worked out in
    Python, which then calls again from the member that was lost).

    One record per (CI, code) met, appended to ``records``: ``records[0]`` counts them (in
    and out), record ``p`` is ``records[1 + 5p : 6 + 5p]``: CI, code, step, the record of its
    parent (-1: none found: a failed CI at step 0, else the link is not a plain entry) and
    the place of the plain entry ``parent -> CI`` in the view (``ptr``/``cols``, rows
    sorted; -1 when none). ``table`` (a power of two long, zeros at first, kept across the
    calls of one walk) finds the record of a (CI, code) met before: a walk stops there, as
    the paths of one page share their tails. Each walk's records are appended nearest the
    failed CI first, so that within one call a parent's record precedes its child's. Each
    ``steps[i]`` is replaced by its start's record. The parent is the first CI of the
    reverse row that went down (failed, for a degraded CI) one step before, with a plain
    entry into the CI: as the simulation gives plain entries the precedence."""
    mask = table.shape[0] - 1
    count = records[0] if records.shape[0] else 0
    left = 0
    for i in range(nodes.shape[0]):
        x = nodes[i]
        code = codes[i]
        t = steps[i]
        begin = count  # this walk's records, from the start back
        tail = -1  # the record met before where it stops, if any
        while True:
            h = ((int(x) * 4 + int(code)) * 2654435761) & mask
            found = table[h] - 1
            while found >= 0 and (records[1 + 5 * found] != x or records[2 + 5 * found] != code):
                h = (h + 1) & mask
                found = table[h] - 1
            if found >= 0:  # met before: its explanation goes on from there
                tail = found
                break
            at = 1 + 5 * count
            count += 1
            records[at] = x
            records[at + 1] = code
            records[at + 2] = t
            records[at + 4] = -1
            if t == 0:
                break
            if code == 1:  # at risk: a group's verdict
                left += 1
                break
            column = 0 if code == 3 else 1
            want = times[x, column] - 1
            parent = -1
            for k in range(rev_ptr[x], rev_ptr[x + 1]):
                u = rev_idx[k]
                if times[u, column] != want:
                    continue
                lo = ptr[u]
                hi = ptr[u + 1]
                end = hi
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if cols[mid] < x:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo < end and cols[lo] == x:
                    parent = u
                    records[at + 4] = lo
                    break
            if parent < 0:  # decided by a redundancy group
                left += 1
                break
            x = parent
            t -= 1
            code = 3 if times[parent, 0] == want else 2
        # the walk's records nearest the failed CI first, each the parent of the next
        for j in range((count - begin) // 2):
            a = 1 + 5 * (begin + j)
            b = 1 + 5 * (count - 1 - j)
            for f in range(5):
                records[a + f], records[b + f] = records[b + f], records[a + f]
        for p in range(begin, count):
            records[4 + 5 * p] = tail if p == begin else p - 1
            h = ((int(records[1 + 5 * p]) * 4 + int(records[2 + 5 * p])) * 2654435761) & mask
            while table[h]:
                h = (h + 1) & mask
            table[h] = p + 1
        steps[i] = count - 1 if count > begin else tail
    if records.shape[0]:
        records[0] = count
    return left


def _group_links(  # noqa: PLR0917  (compiled by numba: positional arguments)
    owner: Any,
    g_indptr: Any,
    member: Any,
    rules: Any,
    row_ok: Any,
    times: Any,
    baseline: Any,
    has_base: bool,
    zero: int,
    nodes: Any,
    steps: Any,
    down: Any,
    rows: Any,
) -> None:
    """:meth:`BlastRadius._group_cause` of many CIs at once: ``rows[i]`` gets the membership
    by which a group of ``nodes[i]`` (``owner``, sorted) decided it down (``down[i]``) or
    failed at step ``steps[i] + 1``: the first member lost at ``steps[i]`` of the first group
    whose verdict reached that state then and not before; -1 when none did. ``rules`` are
    :attr:`impact.index.Groups.rules` (members lost from which the owner is down, degraded).
    Members that are not in the topology or whose row does not pass the filter (``row_ok``)
    count as up."""
    for i in range(nodes.shape[0]):
        node = nodes[i]
        step = steps[i]
        downed = down[i]
        rows[i] = -1
        lo = 0
        hi = owner.shape[0]
        while lo < hi:  # the node's first group
            mid = (lo + hi) >> 1
            if owner[mid] < node:
                lo = mid + 1
            else:
                hi = mid
        group = lo
        while group < owner.shape[0] and owner[group] == node:
            first = g_indptr[group]
            last = g_indptr[group + 1]
            now_down = now_fail = was_down = was_fail = 0
            for r in range(first, last):
                m = member[r]
                if m < 0 or not row_ok[r]:
                    continue
                at_down = times[m, 0] - zero
                at_fail = times[m, 1] - zero
                before = baseline[m] if has_base else 0
                if before >= 3 or 0 <= at_down <= step:
                    now_down += 1
                    if before >= 3 or at_down < step:
                        was_down += 1
                if before >= 2 or 0 <= at_fail <= step:
                    now_fail += 1
                    if before >= 2 or at_fail < step:
                        was_fail += 1
            a = rules[group, 0]  # lost members that make it down
            b = rules[group, 1]  # degraded
            now = 3 if now_down >= a else (2 if now_fail >= b else 0)
            was = 3 if was_down >= a else (2 if was_fail >= b else 0)
            group += 1
            if (now == 3 and was < 3) if downed else (now >= 2 and was == 0):
                for r in range(first, last):
                    m = member[r]
                    if m < 0 or not row_ok[r]:
                        continue
                    if times[m, 0] - zero == step or (not downed and times[m, 1] - zero == step):
                        rows[i] = r
                        break
                break


def _links_for(index: ImpactIndex) -> Callable[..., int]:
    """:func:`_walk_back` compiled whenever the propagation kernel is (see
    :data:`COMPILE_FROM`), else its plain-Python source."""
    return _links_kernel() if _kernel_for(index) is not _simulate else _walk_back


@functools.cache
def _links_kernel() -> Callable[..., int]:
    """:func:`_walk_back` compiled; :func:`_group_kernel` is loaded with it, so that
    :func:`warm_up` readies both."""
    import numba

    _group_kernel()
    return numba.njit(cache=True, nogil=True)(_walk_back)


@functools.cache
def _group_kernel() -> Callable[..., None]:
    """:func:`_group_links` compiled, and run once on nothing with the argument types of a
    query (the dtypes of :class:`impact.index.Groups`, ``View.row_ok``, ``Scratch.times``),
    so that its machine code is loaded before the first explanation needs it."""
    import numba

    kernel = numba.njit(cache=True, nogil=True)(_group_links)
    i32, no = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.bool_)
    kernel(
        i32, i32, i32, np.zeros((0, 4), dtype=np.int32), no, np.zeros((0, 2), dtype=np.int32),
        _NO_BASELINE, False, 0, i32, i32, no, i32,
    )  # fmt: skip
    return kernel


def warm_up(index: ImpactIndex) -> float:
    """Load (or compile) the kernel ``index`` uses, run it once with no failure and keep the
    working arrays it used, so that no query pays for either; returns the seconds it took.
    :func:`impact.index.build_index` calls it."""
    start = time.perf_counter()
    s = index.borrow()
    s.begin()
    none = np.zeros(0, dtype=np.int32)
    try:
        _run(index, index.plain, s, none, none, baseline=None, limit=0)
        reverse, csr = index.reverse, index.plain.csr
        _links_for(index)(
            reverse.indptr, reverse.indices, csr.indptr, csr.indices, s.times,
            none, np.zeros(0, dtype=np.int8), none, none, none,
        )  # fmt: skip
    finally:
        index.give_back(s)
    return time.perf_counter() - start
