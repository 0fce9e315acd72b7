"""Store operations, the same calls on both stores: initial upsert throughput, unchanged
re-upsert, ``get_ci``, a ``list_cis`` page, ``neighbourhood`` at depth 1 and 3, and the
``topology()`` snapshot the impact index is built from."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from benchmarks.generate import GeneratedCmdb
from benchmarks.measure import Row, Status, measure, progress
from graph.model import CiId, Direction, Limits, WriteContext
from graph.store import ALL_CIS, CiFilter, Store, Topology

CHUNK = Limits.MAX_BATCH  # CIs or relationships per upsert call: the largest a store takes
RE_UPSERT = 10_000  # unchanged CIs written again per timed run
GET_CALLS = 200  # get_ci calls per timed run
GROUP = "store"


def load(store: Store, cmdb: GeneratedCmdb, peer: str, *, chunk: int = CHUNK) -> list[Row]:
    """Upsert the whole CMDB, CIs then relationships, ``chunk`` per call. Building the model
    objects is timed apart: it is the importer's cost, not the store's."""
    ctx = WriteContext(actor="benchmarks", source="generator")
    rows = []
    writers: list[tuple[str, Iterator[Sequence[Any]], Callable[[Any, WriteContext], Any]]] = [
        ("CIs", cmdb.iter_cis(chunk), store.upsert_cis),
        ("relationships", cmdb.iter_relationships(chunk), store.upsert_relationships),
    ]
    for what, chunks, write in writers:
        build = spent = 0.0
        total = 0
        while True:
            start = time.perf_counter()
            batch = next(chunks, None)
            build += time.perf_counter() - start
            if batch is None:
                break
            start = time.perf_counter()
            write(batch, ctx)
            spent += time.perf_counter() - start
            total += len(batch)
        progress(f"{peer}: {total:,} {what} of {cmdb.name} upserted in {spent:.1f} s")
        rows.append(
            Row(
                GROUP,
                f"initial upsert of {what} ({chunk:,} per call)",
                peer,
                timing=None,
                rate=total / spent if spent else None,
                rate_unit=f"{what}/s",
                proxies={"items": total, "seconds": round(spent, 2)},
                note=f"model objects built in {build:.1f} s (not counted); single run",
            )
        )
    return rows


def operations(
    store: Store,
    cmdb: GeneratedCmdb,
    peer: str,
    *,
    repeat: int,
    seed: int,
    reopen: Callable[[], Store] | None = None,
    budget_s: float = 30.0,
    depths: Sequence[int] = (1, 3),
) -> list[Row]:
    """Read and no-op write operations on a loaded store; ``depths``: of the neighbourhood
    fetches (depth 3 around an application reaches the 10,000-CI cap at 100k CIs)."""
    rng = np.random.default_rng(seed)
    ctx = WriteContext(actor="benchmarks", source="generator")
    rows: list[Row] = []
    sample = [
        cmdb.ci(int(i)) for i in rng.choice(cmdb.ci_count, min(RE_UPSERT, cmdb.ci_count), False)
    ]
    m = measure(lambda: store.upsert_cis(sample, ctx), repeat=repeat, budget_s=budget_s)
    rows.append(
        Row(
            GROUP,
            f"re-upsert {len(sample):,} unchanged CIs",
            peer,
            timing=m.timing,
            rate=len(sample) / (m.timing.median_ms / 1000),
            rate_unit="CIs/s",
            proxies={"unchanged": m.result.unchanged},
        )
    )
    ids = [CiId(cmdb.ids[int(i)]) for i in rng.integers(0, cmdb.ci_count, GET_CALLS)]

    def get_many() -> int:
        return sum(store.get_ci(i) is not None for i in ids)

    m_get = measure(get_many, repeat=repeat)
    rows.append(
        Row(
            GROUP,
            "get_ci by id (per call)",
            peer,
            timing=m_get.timing.scaled(1 / GET_CALLS),
            status=Status.OK if m_get.result == GET_CALLS else Status.MISMATCH,
            proxies={"found": m_get.result, "calls": GET_CALLS},
        )
    )
    for label, flt in (
        ("list_cis first page of 100", ALL_CIS),
        ("list_cis page of 100, class filter", CiFilter(classes=frozenset({"application"}))),
    ):
        m_list = measure(lambda f=flt: store.list_cis(f, first=100), repeat=repeat)  # type: ignore[misc]
        rows.append(
            Row(
                GROUP, label, peer, timing=m_list.timing, proxies={"rows": len(m_list.result.items)}
            )
        )
    app = cmdb.layer("app")
    root = CiId(cmdb.ids[app.start + int(rng.integers(0, app.count))])
    for depth in depths:
        m_nb = measure(
            lambda d=depth: store.neighbourhood([root], depth=d, direction=Direction.BOTH),  # type: ignore[misc]
            repeat=repeat,
            budget_s=budget_s,
        )
        rows.append(
            Row(
                GROUP,
                f"neighbourhood depth {depth} (an application, both directions)",
                peer,
                timing=m_nb.timing,
                proxies={
                    "cis": len(m_nb.result.cis),
                    "relationships": len(m_nb.result.relationships),
                },
                note="capped at the default limit of 10,000 CIs"
                if len(m_nb.result.cis) >= 10_000
                else "",
            )
        )
    if reopen is not None:

        def rebuild() -> Topology:
            fresh = reopen()
            try:
                return fresh.topology()
            finally:
                fresh.close()

        m_topo = measure(rebuild, repeat=repeat, budget_s=budget_s)
        rows.append(
            Row(
                GROUP,
                "topology() build (fresh store object)",
                peer,
                timing=m_topo.timing,
                proxies={"nodes": m_topo.result.node_count, "edges": m_topo.result.edge_count},
            )
        )
    m_cached = measure(store.topology, repeat=repeat)
    rows.append(
        Row(
            GROUP,
            "topology() cached (unchanged generation)",
            peer,
            timing=m_cached.timing,
            proxies={"nodes": m_cached.result.node_count},
        )
    )
    return rows


def same_topology(stored: Topology, generated: Topology) -> tuple[bool, str]:
    """Whether a store's topology is the generator's: same ids in the same order, the same
    (source, type, target) triples."""
    if stored.ids != generated.ids:
        return False, f"ids differ ({len(stored.ids)} stored vs {len(generated.ids)} generated)"

    def triples(t: Topology) -> np.ndarray:
        names = np.array([t.type_names.index(n) for n in t.type_names], dtype=np.int64)
        key = (t.src.astype(np.int64) << 36) | (t.dst.astype(np.int64) << 8) | names[t.rel_types]
        return np.sort(key)

    if stored.type_names != generated.type_names:
        return False, "relationship type order differs"
    if not np.array_equal(triples(stored), triples(generated)):
        return False, f"relationships differ ({stored.edge_count} vs {generated.edge_count})"
    return True, ""
