"""Micro-benchmark of impact propagation, for this package's own measurements.

``python -m impact.bench [N] [--networkx]`` builds a synthetic CMDB-shaped topology (layers as
in ``docs/impact.md``: sites, hosts, VMs, databases, shared services, apps, business services,
users; apps run on 2-4 VMs as a redundancy group) and times :func:`bench_cases` against
scipy's BFS with predecessors on the same propagation graph (the floor, timed alternately with
ours so that a busy machine slows both alike) and networkx ``descendants`` (the naive
reference).

The shared ``make bench`` harness should call :func:`bench_cases` with an index built from its
own data (``impact.index.index_for(store)``) and the failure sets it wants to time.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order

from graph.model import DEFAULT_REGISTRY, CiId, RedundancyGroup, utcnow
from graph.store import STATUS_ORDER, Topology
from impact.index import NO_FILTER, ImpactFilter, ImpactIndex, build_index
from impact.propagation import ImpactState, propagate


@dataclass(frozen=True, slots=True)
class BenchResult:
    case: str
    failed: int
    affected: int
    median_ms: float
    p95_ms: float
    floor_ms: float | None = None  # scipy BFS + predecessors from the failed CI, same graph
    cold_ms: float | None = None  # the first run of the case (not in the median)

    @property
    def ratio(self) -> float | None:
        """Our median over the floor's (measured alternately, in the same run)."""
        return self.median_ms / self.floor_ms if self.floor_ms else None


def bench_cases(
    index: ImpactIndex,
    cases: Mapping[str, Sequence[int]],
    *,
    repeat: int = 7,
    filter: ImpactFilter = NO_FILTER,
    floor: bool = False,
) -> list[BenchResult]:
    """Time ``propagate`` (reach, states, distances and explanation pointers) per case.

    ``cases`` maps a label to the node numbers that fail (down). The first run of each case
    is reported apart (``cold_ms``) and not counted in the median; the kernel itself is
    loaded or compiled by :func:`~impact.index.build_index` (``ImpactIndex.kernel_seconds``).
    With ``floor``, each single-CI case also times scipy's
    ``breadth_first_order(..., return_predecessors=True)`` from that CI over every
    propagation entry, alternately with ours.
    """
    graph = propagation_graph(index) if floor else None
    results = []
    for label, nodes in cases.items():
        failures = dict.fromkeys(nodes, ImpactState.DOWN)
        start = time.perf_counter()
        radius = propagate(index, failures, filter=filter)
        cold = (time.perf_counter() - start) * 1000
        times, floors = [], []
        timed_floor = graph is not None and len(nodes) == 1
        if timed_floor:
            breadth_first_order(graph, nodes[0], return_predecessors=True)
        for _ in range(repeat):
            start = time.perf_counter()
            radius = propagate(index, failures, filter=filter)
            times.append((time.perf_counter() - start) * 1000)
            if timed_floor:
                start = time.perf_counter()
                breadth_first_order(graph, nodes[0], return_predecessors=True)
                floors.append((time.perf_counter() - start) * 1000)
        times.sort()
        results.append(
            BenchResult(
                label,
                len(nodes),
                radius.count,
                statistics.median(times),
                times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
                statistics.median(floors) if floors else None,
                cold,
            )
        )
    return results


def propagation_graph(index: ImpactIndex) -> csr_matrix:
    """Every propagation entry of ``index`` (plain and gated) as a scipy CSR matrix u -> v."""
    reverse, n = index.reverse, index.node_count
    counts = np.diff(reverse.indptr[: n + 1])
    targets = np.repeat(np.arange(n, dtype=np.int32), counts)
    sources = reverse.indices[: reverse.edge_count]
    return csr_matrix((np.ones(sources.shape[0]), (sources, targets)), shape=(n, n))


def synthetic_topology(n: int = 1_000_000, seed: int = 7) -> Topology:
    """A CMDB-shaped random topology of about ``n`` CIs (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    type_names, class_names = DEFAULT_REGISTRY.fingerprint()
    layers = [
        ("site", 0.00002),
        ("server", 0.03),
        ("virtual_machine", 0.2),
        ("database", 0.04),
        ("technical_service", 0.0001),
        ("application", 0.08),
        ("business_service", 0.008),
    ]
    starts: dict[str, tuple[int, int]] = {}
    at = 0
    for name, share in layers:
        count = max(2, int(n * share))
        starts[name] = (at, at + count)
        at += count
    starts["user"] = (at, max(at + 2, n))
    total = starts["user"][1]
    classes = np.empty(total, dtype=np.int16)
    for name, (lo, hi) in starts.items():
        classes[lo:hi] = class_names.index(name)

    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    typ: list[np.ndarray] = []

    def pick(layer: str, size: int) -> np.ndarray:
        lo, hi = starts[layer]
        return rng.integers(lo, hi, size)

    def link(layer: str, target: str, kind: str, fan: tuple[int, int]) -> tuple[np.ndarray, ...]:
        lo, hi = starts[layer]
        counts = rng.integers(fan[0], fan[1] + 1, hi - lo)
        s = np.repeat(np.arange(lo, hi), counts)
        d = pick(target, s.shape[0])
        src.append(s)
        dst.append(d)
        typ.append(np.full(s.shape[0], type_names.index(kind)))
        return s, d

    link("server", "site", "LOCATED_IN", (1, 1))
    link("virtual_machine", "server", "HOSTED_ON", (1, 2))
    link("database", "virtual_machine", "RUNS_ON", (1, 1))
    link("technical_service", "virtual_machine", "RUNS_ON", (2, 3))
    app_s, app_d = link("application", "virtual_machine", "RUNS_ON", (2, 4))
    link("application", "database", "DEPENDS_ON", (1, 2))
    link("application", "technical_service", "DEPENDS_ON", (1, 3))
    # 30 % of apps call an older app (a DAG), plus a few back edges (cycles)
    lo, hi = starts["application"]
    callers = np.arange(lo, hi)[rng.random(hi - lo) < 0.3]
    callees = lo + (rng.random(callers.shape[0]) * (callers - lo)).astype(np.int64)
    back = rng.random(callers.shape[0]) < 0.01
    callees[back] = rng.integers(lo, hi, int(np.count_nonzero(back)))
    src.append(callers)
    dst.append(callees)
    typ.append(np.full(callers.shape[0], type_names.index("DEPENDS_ON")))
    link("business_service", "application", "DEPENDS_ON", (3, 10))
    link("user", "business_service", "USES", (1, 4))

    redundancy: dict[int, tuple[RedundancyGroup, ...]] = {}
    ids = [CiId(f"ci{i:07d}") for i in range(total)]
    order = np.argsort(app_s, kind="stable")
    app_s, app_d = app_s[order], app_d[order]
    bounds = np.flatnonzero(np.diff(app_s)) + 1
    for owner, members in zip(app_s[np.r_[0, bounds]], np.split(app_d, bounds), strict=True):
        unique = sorted({ids[m] for m in members})
        if len(unique) > 1:
            redundancy[int(owner)] = (RedundancyGroup(name="vms", members=tuple(unique)),)
    return Topology(
        ids=ids,
        classes=classes,
        class_names=class_names,
        statuses=np.full(total, STATUS_ORDER.index(STATUS_ORDER[0]), dtype=np.int8),
        src=np.concatenate(src).astype(np.int32),
        dst=np.concatenate(dst).astype(np.int32),
        rel_types=np.concatenate(typ).astype(np.int16),
        type_names=type_names,
        redundancy=redundancy,
        generation="bench",
        as_of=utcnow(),
    )


def _timed(fn: Callable[[], object], repeat: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv: Sequence[str] = ()) -> None:
    sizes = [a for a in argv if not a.startswith("--")]
    n = int(sizes[0]) if sizes else 1_000_000
    start = time.perf_counter()
    topo = synthetic_topology(n)
    print(
        f"topology: {topo.node_count} CIs, {topo.edge_count} relationships, "
        f"{len(topo.redundancy)} redundancy groups ({time.perf_counter() - start:.1f} s)"
    )
    start = time.perf_counter()
    index = build_index(topo, DEFAULT_REGISTRY)
    print(
        f"index: built in {time.perf_counter() - start:.2f} s (of which loading or compiling "
        f"the propagation kernel {index.kernel_seconds:.2f} s), "
        f"{index.nbytes() / topo.edge_count:.1f} bytes per relationship"
    )
    class_of = {name: i for i, name in enumerate(topo.class_names)}

    def first(cls: str) -> int:
        return int(np.flatnonzero(topo.classes == class_of[cls])[0])

    servers = np.flatnonzero(topo.classes == class_of["server"])
    cases = {
        "site": [first("site")],
        "shared service": [first("technical_service")],
        "host": [int(servers[len(servers) // 2])],
        "db": [first("database")],
        "3 hosts": [int(s) for s in servers[:3]],
    }
    results = bench_cases(index, cases, repeat=9, floor=True)
    for r in results:
        floor = f"  scipy floor {r.floor_ms:6.2f} ms  x{r.ratio:.2f}" if r.floor_ms else ""
        print(
            f"{r.case:>15}: {r.affected:>8} affected  cold {r.cold_ms or 0:7.2f} ms  "
            f"median {r.median_ms:7.2f} ms  p95 {r.p95_ms:7.2f} ms{floor}"
        )
    if "--networkx" in argv:
        import networkx as nx

        entries = propagation_graph(index).tocoo()
        graph = nx.DiGraph()
        graph.add_edges_from(zip(entries.row.tolist(), entries.col.tolist(), strict=True))
        ms = _timed(lambda: nx.descendants(graph, cases["site"][0]), repeat=1)
        print(
            f"networkx descendants from site: {ms:.0f} ms "
            f"({ms / results[0].median_ms:.0f}x our median)"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
