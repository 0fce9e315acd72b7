"""The resident impact index: the propagation graph of one topology as CSR arrays.

A relationship ``(source)-[TYPE]->(target)`` becomes zero, one or two *propagation entries*
``u -> v`` ("if u fails, v is affected"), as the registry's :class:`~graph.model.Propagation`
of ``TYPE`` says. Entries from a member of a redundancy group into the CI owning the group are
*gated*: the group's quorum decides, so they live in the membership table instead of the CSR.

Memory per relationship (measured by :meth:`ImpactIndex.nbytes`): forward CSR 4 B index +
2 B type, reverse CSR 4 B + 2 B, so 12 B, plus row pointers per CI and the membership table
per redundancy group, and per view one flag byte per CI: about 24 B on the generated 1M-CI
CMDBs. Only the reverse CSR (for :mod:`impact.causes`, a scipy BFS) keeps spare room for
virtual roots. scipy's edge weights are one read-only float64 seen through a zero stride, so
they cost no memory. The index is immutable once built; :func:`index_for` caches one per store
and topology ``generation``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order

from graph.errors import ConfigurationError, UnknownClassError, UnknownRelationshipTypeError
from graph.model import Direction, Propagation, Registry
from graph.store import Topology

I32 = npt.NDArray[np.int32]
I16 = npt.NDArray[np.int16]
I8 = npt.NDArray[np.int8]
U64 = npt.NDArray[np.uint64]
Bools = npt.NDArray[np.bool_]

INF: Final = 2**30  # "never" as a time; larger than any distance
CHAIN: Final = 64  # start times one scipy call handles (longer spans are split)
_MAX_TYPES: Final = 64  # relationship types a uint64 mask can hold


_ONE: Final = np.ones(1, dtype=np.float64)[0]


@dataclass(frozen=True, slots=True)
class ImpactFilter:
    """What an impact traversal may follow.

    ``depth``: at most this many hops from a failed CI (None: unlimited). ``classes``: only CIs
    of these classes are affected or carry failure (the failed CIs always do); empty: all.
    ``types``: only relationships of these types carry failure; empty: all that propagate.
    """

    depth: int | None = None
    classes: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()


NO_FILTER: Final = ImpactFilter()


class Search:
    """A scipy BFS from virtual root ``order[0]`` (at time ``first``); ``preds`` is scipy's
    predecessor array as it came (virtual roots are numbered from the CSR's node count).
    After :meth:`assign_times`, level ``k`` (time ``first + k``) is
    ``order[ends[k - 1]:ends[k]]``."""

    __slots__ = ("ends", "first", "order", "preds")

    def __init__(self, order: I32, preds: I32, first: int) -> None:
        self.order = order
        self.preds = preds
        self.first = first
        self.ends: list[int] = [1]

    def assign_times(self, times: I32, zero: int, limit: int) -> int:
        """Write each node's BFS time (as ``zero`` + time) into ``times``, level by level, up
        to ``limit``; returns how many entries of ``order`` (the root included) are within it.

        Every node of the search must hold a value below ``zero + first`` in ``times`` but
        those that already hold exactly their BFS time (sources whose time is final). BFS
        order lists each level's children after the level, so past a level's start "the
        parent has an earlier time" holds up to the level's end and never after: a binary
        search finds the end, and only the final write touches every node.
        """
        order, preds = self.order, self.preds
        count = int(order.shape[0])
        t = self.first
        floor = zero + t
        times[order[0]] = floor
        ends = self.ends = [1]
        end = 1
        while end < count and t < limit:
            t += 1
            start, lo, hi = end, end + 1, count
            while lo < hi:
                mid = (lo + hi) >> 1
                if floor <= times[preds[order[mid]]] < zero + t:
                    lo = mid + 1
                else:
                    hi = mid
            end = lo
            times[order[start:end]] = zero + t
            ends.append(end)
        return end


class _Csr:
    """A CSR adjacency. With ``roots``, spare room after its last row holds a chain of virtual
    roots, so a multi-source BFS with per-source start times is one scipy call without copying
    arrays (:meth:`search`, :meth:`bfs`); without, it is just the rows."""

    def __init__(
        self,
        node_count: int,
        rows: I32,
        cols: I32,
        types: I16,
        *,
        sort: bool = True,
        roots: bool = True,
    ) -> None:
        if sort:
            order = np.lexsort((cols, rows))
            rows, cols, types = rows[order], cols[order], types[order]
        n, e = node_count, int(cols.shape[0])
        self.node_count = n
        self.edge_count = e
        self.roots = roots
        self.indptr: I32 = np.zeros(n + CHAIN + 2 if roots else n + 1, dtype=np.int32)
        np.cumsum(np.bincount(rows, minlength=n), out=self.indptr[1 : n + 1])
        self.indices: I32 = np.empty(e + n + CHAIN if roots else e, dtype=np.int32)
        self.indices[:e] = cols
        self.types: I16 = types.astype(np.int16, copy=False)
        self._lock = threading.Lock()

    @staticmethod
    def _weights(size: int) -> npt.NDArray[np.float64]:
        # scipy copies any other dtype to float64 on every call, and never reads the weights
        # of a BFS: one float64 1.0 seen ``size`` times (a zero stride) costs no memory
        return np.broadcast_to(_ONE, (size,))

    def nbytes(self) -> int:
        return int(self.indptr.nbytes + self.indices.nbytes + self.types.nbytes)

    def row(self, node: int) -> tuple[I32, I16]:
        start, end = int(self.indptr[node]), int(self.indptr[node + 1])
        return self.indices[start:end], self.types[start:end]

    def search(self, sources: I32, starts: I32) -> Search | None:
        """One scipy BFS from ``sources``, each entering at its time in ``starts`` through a
        chain of virtual roots after the last row; None when the start times span ``CHAIN`` or
        more (the caller splits them). Nothing is copied out of scipy's answer."""
        if not self.roots:
            raise TypeError("this CSR keeps no room for virtual roots")
        low = int(starts.min())
        if int(starts.max()) - low >= CHAIN:
            return None
        n, e = self.node_count, self.edge_count
        rel = starts - low
        span = int(rel.max()) + 1
        if span == 1:
            tail = sources
            lengths = np.array([sources.shape[0]], dtype=np.int64)
        else:
            # per start time: its sources, then the next virtual root of the chain
            by_time = np.argsort(rel, kind="stable")
            counts = np.bincount(rel, minlength=span)
            ends = np.cumsum(counts)
            pieces: list[I32] = []
            for j in range(span):
                pieces.append(sources[by_time[ends[j] - counts[j] : ends[j]]])
                if j + 1 < span:
                    pieces.append(np.array([n + j + 1], dtype=np.int32))
            tail = np.concatenate(pieces)
            lengths = counts.astype(np.int64)
            lengths[:-1] += 1
        size = n + span
        with self._lock:
            self.indices[e : e + tail.shape[0]] = tail
            self.indptr[n + 1 : n + span + 1] = e + np.cumsum(lengths)
            graph = csr_matrix(
                (
                    self._weights(e + tail.shape[0]),
                    self.indices[: e + tail.shape[0]],
                    self.indptr[: size + 1],
                ),
                shape=(size, size),
            )
            order, preds = breadth_first_order(graph, n, directed=True, return_predecessors=True)
        return Search(
            order.astype(np.int32, copy=False), preds.astype(np.int32, copy=False), low - 1
        )

    def bfs(self, sources: I32, starts: I32) -> tuple[I32, I32, I32]:
        """Shortest hop times from ``sources`` (each starting at its time in ``starts``).

        Returns ``(nodes, times, parents)`` for every reached node, in BFS order; a parent is
        -1 when the node's time is its own start time.
        """
        if sources.shape[0] == 0:
            empty = np.empty(0, dtype=np.int32)
            return empty, empty, empty
        found = self.search(sources, starts)
        if found is None:  # rare: split, then keep each node's best
            return self._bfs_split(sources, starts)
        n = self.node_count
        times = np.full(n + CHAIN + 2, -_I32_MAX, dtype=np.int32)
        end = found.assign_times(times, 0, INF - 1)
        order = found.order[1:end]
        nodes = order[order < n]
        parents = found.preds[nodes]
        parents[parents >= n] = -1
        return nodes, times[nodes], parents

    def _bfs_split(self, sources: I32, starts: I32) -> tuple[I32, I32, I32]:
        best = np.full(self.node_count, INF, dtype=np.int32)
        parent = np.full(self.node_count, -1, dtype=np.int32)
        low = int(starts.min())
        for chunk in range(low, int(starts.max()) + 1, CHAIN):
            pick = (starts >= chunk) & (starts < chunk + CHAIN)
            nodes, times, parents = self.bfs(sources[pick], starts[pick])
            better = times < best[nodes]
            best[nodes[better]] = times[better]
            parent[nodes[better]] = parents[better]
        reached = np.flatnonzero(best < INF).astype(np.int32)
        return reached, best[reached], parent[reached]


@dataclass(frozen=True, eq=False)
class Groups:
    """Redundancy groups as flat arrays; ``rows`` are memberships (group, member)."""

    names: list[tuple[int, str]]  # group -> (owner node, group name)
    owner: I32
    size: I32  # members declared, including ids the topology does not know
    down_needed: I32  # members that must be up for the owner not to be down
    degraded_needed: I32
    # per group, side by side for the propagation kernel (one cache line per group): members
    # lost (down; down or degraded) from which the owner is down; degraded (each
    # ``size - needed + 1``); the owner; unused
    rules: I32
    indptr: I32  # group -> its membership rows
    group: I32  # row -> its group
    member: I32  # row -> member node (-1: a member id the topology does not know)
    types: U64  # row -> bit mask of propagating relationship types member -> owner
    by_member_indptr: I32  # node -> rows where it is the member (and can carry failure)
    by_member: I32
    by_member_group: I32  # the group of each row of ``by_member`` (read in the same order)
    is_member: Bools  # node -> has such rows

    @property
    def count(self) -> int:
        return int(self.owner.shape[0])

    @property
    def lose_down(self) -> I32:
        return self.rules[:, 0]

    @property
    def lose_fail(self) -> I32:
        return self.rules[:, 1]

    def nbytes(self) -> int:
        arrays = (
            self.owner,
            self.size,
            self.down_needed,
            self.degraded_needed,
            self.rules,
            self.indptr,
            self.group,
            self.member,
            self.types,
            self.by_member_indptr,
            self.by_member,
            self.by_member_group,
            self.is_member,
        )
        return sum(int(a.nbytes) for a in arrays)


@dataclass(frozen=True, eq=False)
class View:
    """The plain (ungated) entries that pass a filter, as one CSR, and which redundancy-group
    memberships the filter lets carry failure. Cached per filter on the index."""

    csr: _Csr
    node_allowed: Bools
    type_mask: np.uint64  # allowed relationship types as bits
    # per membership row: a relationship of an allowed type carries the member's failure to
    # the owner, and the owner's class is allowed
    row_ok: Bools
    # the same per row of ``Groups.by_member``, in that order (the kernel reads it alongside)
    member_ok: Bools
    # per CI, what the propagation kernel does with it once it failed: bit 0 it has plain
    # entries in this view, bit 1 it is a redundancy group member (most CIs, users and other
    # leaves, are neither: one byte read, nothing else touched)
    flags: I8

    def entries(self) -> tuple[I32, I32, I16]:
        """Every plain entry as (from, to, type) arrays."""
        csr = self.csr
        n, e = csr.node_count, csr.edge_count
        rows = np.repeat(np.arange(n, dtype=np.int32), np.diff(csr.indptr[: n + 1]))
        return rows, csr.indices[:e], csr.types

    def nbytes(self) -> int:
        return (
            self.csr.nbytes()
            + int(self.row_ok.nbytes)
            + int(self.member_ok.nbytes)
            + int(self.flags.nbytes)
        )


class Scratch:
    """Per-query working arrays, reused across queries.

    Per CI: the step it went down (``times[:, 0]``) or failed, i.e. went down or degraded
    (``times[:, 1]``), side by side so that one cache line answers both; and the step and
    cause of being put at risk (``risk``): ``-2 - row`` for membership ``row`` of the group
    that did (the causes of the other states are worked out when asked). A time is stored as
    ``zero + hops`` with a ``zero`` past every time of the queries before (:meth:`begin`), so
    nothing needs resetting between queries: an older value means "not this time". The same
    states as one byte per CI (``state``: 1 failed, 3 down), which the propagation kernel
    reads instead of the times (an eighth of the bytes: its random reads stay in the CPU's
    cache) and clears for the CIs it reached before it returns. The queues hold the CIs in
    the order they failed (then those at risk) and those that went down after failing, with
    the state and distance of each failed CI alongside. Per redundancy group (``groups``,
    side by side): the step of its first failure, members lost so far (down, failed), and the
    membership of the first failure; and one step's decisions. The kernel resets the groups
    it touched before it returns.
    """

    def __init__(self, node_count: int, group_count: int) -> None:
        n = node_count
        # no time of a query exceeds the CIs there are
        self.window = n + 4
        self.zero = 0
        self.times: I32 = np.zeros((n, 2), dtype=np.int32)
        self.risk: I32 = np.zeros((n, 2), dtype=np.int32)
        self.t_down, self.t_fail = self.times[:, 0], self.times[:, 1]
        self.t_risk, self.p_risk = self.risk[:, 0], self.risk[:, 1]
        self.failed_queue: I32 = np.zeros(n, dtype=np.int32)
        self.down_queue: I32 = np.zeros(n, dtype=np.int32)
        self.out_state: I8 = np.zeros(n, dtype=np.int8)
        self.out_distance: I32 = np.zeros(n, dtype=np.int32)
        self.state: I8 = np.zeros(n, dtype=np.int8)
        g = group_count
        self.groups: I32 = np.zeros((g, 4), dtype=np.int32)  # first step, down, failed, row
        self.groups[:, 0] = INF
        self.touched: I32 = np.zeros(g, dtype=np.int32)
        # decisions of one step: a group may decide failed and down at once
        self.decided: I32 = np.zeros((2 * g + 2, 2), dtype=np.int32)

    def begin(self) -> None:
        """Move ``zero`` past every time written so far."""
        zero = self.zero + self.window
        if zero + self.window >= _I32_MAX:  # once in ~2**31 / window queries
            self.times.fill(0)
            self.risk.fill(0)
            zero = self.window
        self.zero = zero


_I32_MAX: Final = 2**31 - 1


@dataclass(eq=False)
class ImpactIndex:
    """The propagation graph of one :class:`~graph.store.Topology`. Build with
    :func:`build_index`; treat as read-only."""

    topology: Topology
    propagation: tuple[Propagation, ...]  # per topology type
    plain: View  # plain entries u -> v, unfiltered
    reverse: _Csr  # every entry (plain and gated), v -> u: "what can make v fail" (causes, paths)
    groups: Groups
    kernel_seconds: float = 0.0  # loading (or compiling) the propagation kernel at build
    _views: OrderedDict[tuple[frozenset[str], frozenset[str]], View] = field(
        default_factory=OrderedDict, repr=False
    )
    _views_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _pool: list[Scratch] = field(default_factory=list, repr=False)

    def with_topology(self, topology: Topology) -> ImpactIndex:
        """This index for ``topology``, a later snapshot of the same structure (only its CI
        statuses differ: see ``Topology.structure``): every array shared, no rebuild, and so
        are the filtered views (none depends on statuses) and the pool of working arrays."""
        if topology.ids is not self.topology.ids and topology.ids != self.topology.ids:
            raise ValueError("with_topology needs a snapshot of the same structure")
        return ImpactIndex(
            topology=topology,
            propagation=self.propagation,
            plain=self.plain,
            reverse=self.reverse,
            groups=self.groups,
            _views=self._views,
            _views_lock=self._views_lock,
            _pool=self._pool,
        )

    def borrow(self) -> Scratch:
        """Working arrays for one query; hand them back with :meth:`give_back`."""
        try:
            return self._pool.pop()  # atomic: no lock on the path of every query
        except IndexError:
            return Scratch(self.node_count, self.groups.count)

    def give_back(self, scratch: Scratch) -> None:
        pool = self._pool
        # two threads may both pass the size check (the pool then holds a few more); never
        # pool one scratch twice, or two queries would share it
        if len(pool) < 4 and scratch not in pool:  # Scratch compares by identity
            pool.append(scratch)

    @property
    def node_count(self) -> int:
        return self.topology.node_count

    @property
    def generation(self) -> str:
        return self.topology.generation

    def nbytes(self) -> int:
        """Bytes held by the index's own arrays (not the topology it was built from)."""
        return self.plain.nbytes() + self.reverse.nbytes() + self.groups.nbytes()

    def type_number(self, name: str) -> int:
        try:
            return self.topology.type_names.index(name)
        except ValueError:
            raise UnknownRelationshipTypeError(
                f"unknown relationship type {name!r}; known: {', '.join(self.topology.type_names)}",
                field="types",
            ) from None

    def class_number(self, name: str) -> int:
        try:
            return self.topology.class_names.index(name)
        except ValueError:
            raise UnknownClassError(
                f"unknown CI class {name!r}; known: {', '.join(self.topology.class_names)}",
                field="classes",
            ) from None

    def view(self, filter: ImpactFilter) -> View:
        """The plain CSR restricted to ``filter``'s classes and types (cached, 8 at most)."""
        if not filter.classes and not filter.types:
            return self.plain  # the common case, without the cache's lock
        key = (filter.classes, filter.types)
        with self._views_lock:
            found = self._views.get(key)
            if found is not None:
                self._views.move_to_end(key)
                return found
        built = self._build_view(filter)
        with self._views_lock:
            self._views[key] = built
            while len(self._views) > 8:
                self._views.popitem(last=False)
        return built

    def _build_view(self, filter: ImpactFilter) -> View:
        n = self.node_count
        if filter.classes:
            wanted = np.zeros(len(self.topology.class_names) + 1, dtype=np.bool_)
            for name in filter.classes:
                wanted[self.class_number(name)] = True
            # class -1 (unknown to the registry) indexes the last slot, which stays False
            node_allowed = wanted[self.topology.classes]
        else:
            node_allowed = np.ones(n, dtype=np.bool_)
        if filter.types:
            numbers = [self.type_number(name) for name in filter.types]
            type_mask = np.uint64(sum(1 << t for t in set(numbers)))
        else:
            type_mask = np.uint64((1 << len(self.topology.type_names)) - 1)
        if not filter.classes and not filter.types:
            return self.plain
        rows, cols, types = self.plain.entries()
        keep = node_allowed[cols]
        if filter.types:
            allowed_types = np.zeros(len(self.topology.type_names), dtype=np.bool_)
            allowed_types[numbers] = True
            keep &= allowed_types[types]
        return _view(
            n,
            rows[keep],
            cols[keep],
            types[keep],
            groups=self.groups,
            node_allowed=node_allowed,
            type_mask=type_mask,
        )

    @cached_property
    def hop_directions(self) -> tuple[Direction, ...]:
        """Per topology type: how an explanation hop through it is stored (``out``: from the
        affected CI to the one that failed it, as failure travels to the source)."""
        return tuple(_HOP_DIRECTION.get(rule, Direction.BOTH) for rule in self.propagation)

    def edge_type(self, parent: int, child: int, view: View) -> str | None:
        """The name of a relationship type carrying failure from ``parent`` to ``child``."""
        cols, types = view.csr.row(parent)
        hit = np.flatnonzero(cols == child)
        if hit.shape[0]:
            return self.topology.type_names[int(types[hit[0]])]
        return None

    def gated_type(self, row: int, view: View) -> str | None:
        """The relationship type by which membership ``row`` carries failure to its owner."""
        mask = int(self.groups.types[row]) & int(view.type_mask)
        for t, name in enumerate(self.topology.type_names):
            if mask >> t & 1:
                return name
        return None


def build_index(topology: Topology, registry: Registry) -> ImpactIndex:
    """The impact index of ``topology``, with propagation rules from ``registry``.

    Parameters
    ----------
    topology : Topology
        What ``Store.topology()`` returns.
    registry : Registry
        The relationship types (their :class:`~graph.model.Propagation`) of the store.

    Returns
    -------
    ImpactIndex

    Examples
    --------
    >>> from graph.model import DEFAULT_REGISTRY
    >>> from impact.testing import topology_of
    >>> topo = topology_of([("app", "DEPENDS_ON", "db"), ("team", "OWNS", "app")])
    >>> index = build_index(topo, DEFAULT_REGISTRY)
    >>> index.plain.csr.edge_count  # db -> app only: OWNS carries no failure
    1
    """
    if len(topology.type_names) > _MAX_TYPES:
        raise ConfigurationError(
            f"the registry has {len(topology.type_names)} relationship types; impact analysis "
            f"supports at most {_MAX_TYPES}: merge types that mean the same"
        )
    propagation = tuple(registry.relationship_type(t).propagation for t in topology.type_names)
    n = topology.node_count
    src = topology.src.astype(np.int32, copy=False)
    dst = topology.dst.astype(np.int32, copy=False)
    types = topology.rel_types.astype(np.int16, copy=False)
    rule = np.array([_RULE[p] for p in propagation] + [0], dtype=np.int8)[types]
    valid = (src >= 0) & (dst >= 0) & (src != dst)
    to_source = valid & ((rule & 1) != 0)  # target fails => source affected: dst -> src
    to_target = valid & ((rule & 2) != 0)
    u = np.concatenate((dst[to_source], src[to_target]))
    v = np.concatenate((src[to_source], dst[to_target]))
    t = np.concatenate((types[to_source], types[to_target]))

    groups, gated = _build_groups(topology, u, v, t)
    plain = ~gated
    reverse = _Csr(n, v, u, t)
    everything = np.ones(n, dtype=np.bool_)
    mask = np.uint64((1 << len(topology.type_names)) - 1)
    view = _view(
        n, u[plain], v[plain], t[plain], groups=groups, node_allowed=everything, type_mask=mask
    )
    index = ImpactIndex(topology, propagation, view, reverse, groups)
    # load (or compile, once per install) the propagation kernel now, not in the first query
    from impact.propagation import warm_up

    index.kernel_seconds = warm_up(index)
    return index


def _view(
    n: int, u: I32, v: I32, t: I16, *, groups: Groups, node_allowed: Bools, type_mask: np.uint64
) -> View:
    row_ok = (groups.types & type_mask) != 0
    if groups.member.shape[0]:
        row_ok &= node_allowed[groups.owner[groups.group]]
    csr = _Csr(n, u, v, t, roots=False)
    flags = (np.diff(csr.indptr) > 0).astype(np.int8)
    flags |= groups.is_member.astype(np.int8) << 1
    return View(csr, node_allowed, type_mask, row_ok, row_ok[groups.by_member], flags)


_HOP_DIRECTION: Final = {Propagation.TO_SOURCE: Direction.OUT, Propagation.TO_TARGET: Direction.IN}

_RULE = {
    Propagation.TO_SOURCE: 1,
    Propagation.TO_TARGET: 2,
    Propagation.BOTH: 3,
    Propagation.NONE: 0,
}


def _build_groups(topology: Topology, u: I32, v: I32, t: I16) -> tuple[Groups, Bools]:
    n = topology.node_count
    names: list[tuple[int, str]] = []
    owners: list[int] = []
    sizes: list[int] = []
    down_needed: list[int] = []
    degraded_needed: list[int] = []
    row_group: list[int] = []
    row_member: list[int] = []
    for owner in sorted(topology.redundancy):
        for group in topology.redundancy[owner]:
            g = len(owners)
            names.append((owner, group.name))
            owners.append(owner)
            size = len(group.members)
            sizes.append(size)
            down_needed.append(group.down_below.needed(size))
            degraded_needed.append(group.degraded_below.needed(size))
            for member_id in group.members:
                row_group.append(g)
                row_member.append(_number_or_missing(topology, member_id))
    i32 = np.int32
    group_of = np.array(row_group, dtype=i32)
    member = np.array(row_member, dtype=i32)
    owner_arr = np.array(owners, dtype=i32)
    indptr = np.zeros(len(owners) + 1, dtype=i32)
    np.cumsum(np.bincount(group_of, minlength=len(owners)), out=indptr[1:])

    # Which propagation entries are gated, and each membership's type mask.
    gated = np.zeros(u.shape[0], dtype=np.bool_)
    masks = np.zeros(member.shape[0], dtype=np.uint64)
    if member.shape[0]:
        row_owner = owner_arr[group_of]
        row_key = row_owner.astype(np.int64) * n + member
        entry_key = v.astype(np.int64) * n + u
        known = member >= 0
        keys = np.unique(row_key[known])
        gated = np.isin(entry_key, keys)
        if gated.any():
            gated_keys = entry_key[gated]
            slot = np.searchsorted(keys, gated_keys)
            per_key = np.zeros(keys.shape[0], dtype=np.uint64)
            np.bitwise_or.at(per_key, slot, np.left_shift(np.uint64(1), t[gated].astype(np.uint64)))
            where = np.searchsorted(keys, row_key)
            where = np.minimum(where, keys.shape[0] - 1)
            hit = known & (keys[where] == row_key)
            masks[hit] = per_key[where[hit]]

    # a membership with no relationship carrying failure to the owner never counts: leave
    # it out of the member -> rows table that propagation walks
    by_member_order = np.argsort(member, kind="stable").astype(i32)
    sorted_members = member[by_member_order]
    counts = (sorted_members >= 0) & (masks[by_member_order] != 0)
    by_member_order = by_member_order[counts]
    sorted_members = sorted_members[counts]
    by_member_indptr = np.zeros(n + 1, dtype=i32)
    np.cumsum(np.bincount(sorted_members, minlength=n), out=by_member_indptr[1:])
    declared = np.array(sizes, dtype=i32)
    rules = np.zeros((len(owners), 4), dtype=i32)
    rules[:, 0] = declared - np.array(down_needed, dtype=i32) + 1
    rules[:, 1] = declared - np.array(degraded_needed, dtype=i32) + 1
    rules[:, 2] = owner_arr
    groups = Groups(
        names=names,
        owner=owner_arr,
        size=declared,
        down_needed=np.array(down_needed, dtype=i32),
        degraded_needed=np.array(degraded_needed, dtype=i32),
        rules=rules,
        indptr=indptr,
        group=group_of,
        member=member,
        types=masks,
        by_member_indptr=by_member_indptr,
        by_member=by_member_order,
        by_member_group=group_of[by_member_order],
        is_member=np.diff(by_member_indptr) > 0,
    )
    return groups, gated


def _number_or_missing(topology: Topology, ci: str) -> int:
    from graph.errors import NotFoundError
    from graph.model import CiId

    try:
        return topology.number(CiId(ci))
    except NotFoundError:
        return -1


# --------------------------------------------------------------------------------------------
# One index per store and generation


class _HasTopology(Protocol):
    """A store, as far as :func:`index_for` reads it (``generation()``, when the store has
    it, is the cheap check; see :class:`impact.resident.IndexSource`)."""

    registry: Registry

    def topology(self) -> Topology: ...


def index_for(store: _HasTopology) -> ImpactIndex:
    """The store's impact index, in sync with it: one generation round trip when nothing
    moved, else a synchronous rebuild. The index is the process's one resident index of the
    store (:func:`impact.resident.resident_for`); long-running servers that may answer from
    a snapshot a little behind use their own :class:`impact.resident.ResidentIndex`."""
    from impact.resident import FRESH, resident_for  # resident builds on this module

    return resident_for(store).get(max_staleness=FRESH).index


def names_of(index: ImpactIndex, nodes: Iterable[int]) -> list[str]:
    ids = index.topology.ids
    return [ids[n] for n in nodes]
