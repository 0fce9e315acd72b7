"""In-process impact peers: who is reached when some CIs fail, on one propagation graph.

The propagation graph comes from a :class:`~graph.store.Topology` and the registry: a
``TO_SOURCE`` relationship carries failure from its target to its source, ``TO_TARGET`` the
other way, ``BOTH`` both ways, ``NONE`` not at all. Every peer answers the same question,
"the set of CIs reachable from the failed ones (themselves included)", and is checked against
the scipy answer (the floor) before its time counts.

Peers: scipy ``csgraph.breadth_first_order`` with predecessors (floor), igraph
``subcomponent``, a plain Python BFS with a parent dict, networkx ``descendants``, SQLite
recursive CTEs (``UNION``: reachability; ``UNION ALL``: path enumeration, capped), and ours
(``impact.propagation.propagate``, redundancy-aware).
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order

from graph.model import Propagation, Registry
from graph.store import Topology

I32 = npt.NDArray[np.int32]
Answer = tuple[I32, dict[str, int | float | str]]  # sorted reached nodes, proxies
Peer = Callable[[Sequence[int]], Answer]

PATH_CAP = 1_000_000  # rows a UNION ALL path enumeration may produce before it is cut


@dataclass(eq=False)
class PropagationGraph:
    """``u -> v``: when ``u`` fails, ``v`` is affected. Node numbers are the topology's."""

    topology: Topology
    u: I32
    v: I32
    directions: dict[str, Propagation]  # per relationship type present in the graph
    _csr: tuple[I32, I32, npt.NDArray[np.float64]] | None = field(default=None, repr=False)

    @property
    def node_count(self) -> int:
        return self.topology.node_count

    @property
    def edge_count(self) -> int:
        return int(self.u.shape[0])

    def out_degree(self) -> npt.NDArray[np.int64]:
        return np.bincount(self.u, minlength=self.node_count).astype(np.int64)

    def single_direction(self) -> tuple[list[str], list[str]]:
        """Types that carry failure target -> source, and source -> target."""
        to_source = sorted(
            t for t, p in self.directions.items() if p in (Propagation.TO_SOURCE, Propagation.BOTH)
        )
        to_target = sorted(
            t for t, p in self.directions.items() if p in (Propagation.TO_TARGET, Propagation.BOTH)
        )
        return to_source, to_target


def propagation_graph(topology: Topology, registry: Registry) -> PropagationGraph:
    """The propagation graph of ``topology`` under ``registry``'s rules."""
    rules = [registry.relationship_type(name).propagation for name in topology.type_names]
    code = np.array(
        [
            {Propagation.TO_SOURCE: 1, Propagation.TO_TARGET: 2, Propagation.BOTH: 3}.get(p, 0)
            for p in rules
        ]
        + [0],
        dtype=np.int8,
    )[topology.rel_types]
    src, dst = topology.src.astype(np.int32), topology.dst.astype(np.int32)
    to_source, to_target = (code & 1) != 0, (code & 2) != 0
    u = np.concatenate((dst[to_source], src[to_target]))
    v = np.concatenate((src[to_source], dst[to_target]))
    # two relationship types between the same pair are one propagation entry
    key = np.unique((u.astype(np.int64) << 32) | v.astype(np.int64))
    present = np.unique(topology.rel_types[code != 0])
    return PropagationGraph(
        topology,
        (key >> 32).astype(np.int32),
        (key & 0xFFFFFFFF).astype(np.int32),
        {topology.type_names[int(t)]: rules[int(t)] for t in present.tolist()},
    )


def edges_scanned(graph: PropagationGraph, reached: I32) -> int:
    """Propagation entries a traversal that visits ``reached`` must look at: a proxy that
    does not depend on the machine."""
    degree = graph.out_degree()
    return int(degree[reached].sum())


# --------------------------------------------------------------------------------------------
# Peers. Each ``make_*`` builds what the peer needs (timed by the caller as its set-up) and
# returns the query function.


def make_scipy(graph: PropagationGraph) -> Peer:
    """scipy csgraph BFS from a virtual root linked to the failed CIs (one C call)."""
    n, e = graph.node_count, graph.edge_count
    # CSR with one spare row (the virtual root, number n) whose columns are written per query
    indptr = np.zeros(n + 2, dtype=np.int32)
    np.cumsum(np.bincount(graph.u, minlength=n), out=indptr[1 : n + 1])
    indices = np.empty(e + n, dtype=np.int32)
    indices[:e] = graph.v  # the graph's edges are sorted by u, then v
    weights = np.ones(e + n, dtype=np.float64)

    def run(sources: Sequence[int]) -> Answer:
        k = len(sources)
        indices[e : e + k] = sources
        indptr[n + 1] = e + k
        matrix = csr_matrix(
            (weights[: e + k], indices[: e + k], indptr), shape=(n + 1, n + 1), copy=False
        )
        order, preds = breadth_first_order(matrix, n, directed=True, return_predecessors=True)
        reached = np.sort(order[1:].astype(np.int32))
        return reached, {"parents": int((preds[reached] >= 0).sum())}

    return run


def make_igraph(graph: PropagationGraph) -> Peer:
    import igraph

    g = igraph.Graph(
        n=graph.node_count, edges=np.column_stack((graph.u, graph.v)).tolist(), directed=True
    )

    def run(sources: Sequence[int]) -> Answer:
        if len(sources) == 1:
            reached = g.subcomponent(int(sources[0]), mode="out")
        else:  # igraph has no multi-source subcomponent: union of one call per source
            found: set[int] = set()
            for s in sources:
                found.update(g.subcomponent(int(s), mode="out"))
            reached = list(found)
        return np.sort(np.array(reached, dtype=np.int32)), {}

    return run


def make_python_bfs(graph: PropagationGraph) -> Peer:
    """A plain BFS over lists of lists, keeping a parent per reached CI (the explanation)."""
    n = graph.node_count
    bounds = np.searchsorted(graph.u, np.arange(n + 1)).tolist()
    targets = graph.v.tolist()
    adjacency = [targets[bounds[i] : bounds[i + 1]] for i in range(n)]

    def run(sources: Sequence[int]) -> Answer:
        parent: dict[int, int] = {int(s): -1 for s in sources}
        queue = deque(parent)
        while queue:
            x = queue.popleft()
            for y in adjacency[x]:
                if y not in parent:
                    parent[y] = x
                    queue.append(y)
        return np.sort(np.fromiter(parent, dtype=np.int32, count=len(parent))), {}

    return run


def make_networkx(graph: PropagationGraph) -> Peer:
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(range(graph.node_count))
    g.add_edges_from(zip(graph.u.tolist(), graph.v.tolist(), strict=True))

    def run(sources: Sequence[int]) -> Answer:
        found: set[int] = set()
        for s in sources:
            found.add(int(s))
            found.update(nx.descendants(g, int(s)))
        return np.sort(np.fromiter(found, dtype=np.int32, count=len(found))), {}

    return run


class SqliteCte:
    """The propagation graph as a table ``prop(u, v)`` with its primary key as the index,
    in a throw-away SQLite file: the relational (iTop-style) reference."""

    def __init__(self, graph: PropagationGraph, directory: Path | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="bench-cte-", dir=directory)
        self.db = sqlite3.connect(Path(self._dir.name) / "prop.sqlite3")
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA cache_size=-262144")
        self.db.execute(
            "CREATE TABLE prop (u INTEGER NOT NULL, v INTEGER NOT NULL, PRIMARY KEY (u, v))"
            " WITHOUT ROWID"
        )
        self.db.executemany(
            "INSERT INTO prop VALUES (?, ?)", zip(graph.u.tolist(), graph.v.tolist(), strict=True)
        )
        self.db.commit()

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()

    def union(self, sources: Sequence[int]) -> Answer:
        rows = self.db.execute(
            "WITH RECURSIVE r(n) AS (SELECT value FROM json_each(?)"
            " UNION SELECT p.v FROM prop AS p JOIN r ON p.u = r.n) SELECT n FROM r",
            (str([int(s) for s in sources]),),
        ).fetchall()
        reached = np.sort(np.array([r[0] for r in rows], dtype=np.int32))
        return reached, {"rows": len(rows)}

    def union_all(self, sources: Sequence[int], cap: int = PATH_CAP) -> Answer:
        """Path (walk) enumeration, cut at ``cap`` rows: on a graph with cycles it would not
        end. Returns no reach set (only counts)."""
        rows, distinct = self.db.execute(
            "WITH RECURSIVE r(n) AS (SELECT value FROM json_each(?)"
            " UNION ALL SELECT p.v FROM prop AS p JOIN r ON p.u = r.n)"
            " SELECT count(*), count(DISTINCT n) FROM (SELECT n FROM r LIMIT ?)",
            (str([int(s) for s in sources]), cap),
        ).fetchone()
        return np.empty(0, dtype=np.int32), {"rows": int(rows), "distinct": int(distinct)}


def index_bytes_per_relationship(peer: Peer) -> float | None:
    """What :func:`make_ours`'s resident index holds per relationship of its topology."""
    index = getattr(peer, "index", None)
    if index is None:
        return None
    return float(index.nbytes() / max(index.topology.edge_count, 1))


def make_ours(topology: Topology, registry: Registry) -> Peer:
    """Our propagation (``impact.propagation.propagate``): states, distances and an
    explanation per CI, redundancy quorums included. Affected in any state is the reach
    set when every redundancy group carries degradation on (the generator's groups do)."""
    from impact.index import build_index
    from impact.propagation import ImpactState, propagate

    index = build_index(topology, registry)

    def run(sources: Sequence[int]) -> Answer:
        radius = propagate(index, dict.fromkeys((int(s) for s in sources), ImpactState.DOWN))
        counts = radius.counts
        return np.sort(radius.affected), {
            "down": counts[ImpactState.DOWN],
            "degraded": counts[ImpactState.DEGRADED],
            "at_risk": counts[ImpactState.AT_RISK],
        }

    run.index = index  # type: ignore[attr-defined]  # for index_bytes_per_relationship
    return run


def ours_available() -> str | None:
    """None when ``impact.propagation`` can be imported, else why not."""
    try:
        import impact.index
        import impact.propagation  # noqa: F401
    except ImportError as exc:
        return f"impact.propagation not importable ({exc})"
    return None


def same_set(reference: I32, answer: I32) -> tuple[bool, str]:
    """Whether two sorted reach sets are equal, and if not a short description."""
    if reference.shape == answer.shape and bool(np.array_equal(reference, answer)):
        return True, ""
    missing = np.setdiff1d(reference, answer).shape[0]
    extra = np.setdiff1d(answer, reference).shape[0]
    return (
        False,
        f"{answer.shape[0]} reached vs {reference.shape[0]}: {missing} missing, {extra} extra",
    )


def describe(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)
