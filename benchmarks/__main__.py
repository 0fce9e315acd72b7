"""``python -m benchmarks``: every performance figure of the project, peers side by side.

``make bench`` runs ``--size 100000``; ``make bench-full`` runs ``--size 1000000 --full``.
Each measure is one cold run and up to ``--repeat`` warm runs (median, p95; fast impact
answers more, ``IMPACT_FILL_S``), checked against
its case's reference answer before its time counts; tables go to stdout, results to
``benchmarks/results/<date>.json``, and the summary to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks import impact_peers as ip
from benchmarks import neo4j_peers as nx4
from benchmarks import report, store_peers
from benchmarks.generate import GeneratedCmdb, diamond_ladder, generate, star, write_csv
from benchmarks.measure import (
    Row,
    Status,
    Timing,
    machine,
    machine_line,
    measure,
    progress,
    skipped,
)
from benchmarks.ours_neo4j import Answer, OursOnNeo4j
from graph.model import DEFAULT_REGISTRY, CiId
from graph.sqlite_store import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
GROUPS = ("store", "impact", "import", "api")
IMPORT_ROWS = 10_000
PER_ROW_CAP = 2_000  # per-row MERGE rows actually run (then extrapolated)
WARM_ROWS = 100  # per-row MERGE rows run untimed first (per type, for relationships)
EMBEDDED_PER_ROW_CAP = 500
STORE_PER_ROW_CAP = 300  # per-row Neo4j store calls actually run (then extrapolated)
STAR_MAX = 100_000  # the star micro-graph's dependents with --full
QUICK_STAR_MAX = 20_000  # ... without (it is loaded into Neo4j through the store too)
NEO4J_SLOW_S = 10.0  # a Neo4j query slower than this cold gets no warm runs
QUICK_BUDGET_S = 10.0  # seconds of warm runs beyond the first five (make bench)
FULL_BUDGET_S = 30.0  # the same with --full
# impact answers (read-only): warm runs beyond --repeat until they took this long in all (at
# most measure.MAX_FILL_RUNS): a median of microsecond answers needs more than five
IMPACT_FILL_S = 0.05
NEO4J_LOAD_BUDGET_S = 600.0  # --full: skip the Neo4j graph when loading it would take longer
PROBE = 50_000  # CIs and relationships of the --full write-throughput probe
PROBE_WARM_UP = 10_000  # CIs written and deleted first, untimed (the server's JIT warm-up)
SYNC_MAX = 20_000  # CIs in the generated CSV the import engine runs on (--full)
SYNC_SYNTHETIC_MAX = 100_000  # CIs of importers.generic.write_synthetic_csv for re-import
SYNC_NEO4J_QUICK = 10_000  # ... into Neo4j without --full
# make bench (no --full) keeps to a few minutes with five warm runs of everything it runs:
# the Neo4j peers that take seconds to a minute a run (the naive path query, ANY SHORTEST)
# and the first requests after a change run only from the cases whose labels start with
# these; make bench-full runs them everywhere. The naive query finishes from a database and
# from the star's hub (it times out from a site).
NAIVE_QUICK = ("one database", "star of")
SHORTEST_QUICK = ("one host", "one database", "3 random hosts", "star of")
AFTER_CHANGE_QUICK = ("one database",)
# ... and with --full (a synchronous resync re-reads the whole topology: ~20 s at 1M CIs)
AFTER_CHANGE_FULL = ("one database", "one site (worst case)")
QUICK_PATH_CAP = 100_000  # UNION ALL path enumeration rows without --full (1,000,000 with)


def _named(quick: Sequence[str]) -> str:
    return ", ".join("the star's hub" if q == "star of" else q for q in quick)


@dataclass(frozen=True, slots=True)
class Options:
    size: int
    seed: int
    full: bool
    repeat: int
    budget_s: float
    only: tuple[str, ...]
    out: Path
    docs: Path | None
    neo4j: bool
    workdir: Path | None
    neo4j_load_budget_s: float = NEO4J_LOAD_BUDGET_S

    @property
    def depths(self) -> tuple[int, ...]:
        """Neighbourhood fetch depths of the store group: depth 3 (seconds a run on Neo4j,
        capped at 10,000 CIs) only with --full."""
        return (1, 2, 3) if self.full else (1, 2)


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time store, impact, import and API operations against their peers.",
        epilog="examples:\n  python -m benchmarks --size 100000            (make bench)\n"
        "  python -m benchmarks --size 1000000 --full     (make bench-full)\n"
        "  python -m benchmarks --size 10000 --only impact --no-neo4j",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", type=int, default=100_000, help="CIs to generate")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--full", action="store_true", help="more failure cases and a 50k-CI API map"
    )
    parser.add_argument("--repeat", type=int, default=5, help="warm runs per measure (>= 1)")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help=f"seconds of warm runs after which a measure stops, once it has had five (or "
        f"--repeat, when fewer); default {QUICK_BUDGET_S:.0f}, {FULL_BUDGET_S:.0f} with --full",
    )
    parser.add_argument("--only", default=",".join(GROUPS), help="groups: " + ",".join(GROUPS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-docs", action="store_true", help="do not update the docs page")
    parser.add_argument(
        "--no-neo4j",
        action="store_true",
        help="skip Neo4j peers (each prints a skipped row); also CMDB_BENCH_NEO4J=0",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="for temporary stores")
    parser.add_argument(
        "--neo4j-load-budget",
        type=float,
        default=NEO4J_LOAD_BUDGET_S,
        help="--full: seconds the Neo4j load may take at the probed throughput, else the "
        "Neo4j graph peers say skipped with the figures (default %(default).0f)",
    )
    args = parser.parse_args(argv)
    only = tuple(g.strip() for g in args.only.split(",") if g.strip())
    unknown = sorted(set(only) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return Options(
        size=args.size,
        seed=args.seed,
        full=args.full,
        repeat=args.repeat,
        budget_s=args.budget
        if args.budget is not None
        else (FULL_BUDGET_S if args.full else QUICK_BUDGET_S),
        only=only,
        out=args.out,
        docs=None if args.no_docs else args.docs,
        neo4j=not args.no_neo4j and os.environ.get("CMDB_BENCH_NEO4J", "1") != "0",
        workdir=args.workdir,
        neo4j_load_budget_s=args.neo4j_load_budget,
    )


# --------------------------------------------------------------------------------------------
# store


@dataclass(eq=False)
class NeoGraph:
    """The Neo4j database the store and impact groups share, loaded once through our store
    (``Neo4jStore``, ``Limits.MAX_BATCH`` per call); ``loaded`` names the datasets in it."""

    target: nx4.Neo4jTarget
    store: Any = None  # graph.neo4j_store.Neo4jStore, opened after the wipe
    loaded: set[str] = field(default_factory=set)

    def open(self) -> Any:
        from graph.neo4j_store import Neo4jStore  # type: ignore[import-not-found,unused-ignore]

        self.close()
        t = self.target
        self.store = Neo4jStore(t.uri, user=t.user, password=t.password)
        return self.store

    def wipe(self) -> Any:
        """Empty the database and open a fresh store on it (which recreates its counters)."""
        self.close()
        nx4.wipe(self.target)
        self.loaded.clear()
        return self.open()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


def neo4j_plan(
    opts: Options, cmdb: GeneratedCmdb, neo: nx4.Neo4jTarget
) -> tuple[NeoGraph | None, str, list[Row]]:
    """Whether the generated CMDB is loaded into Neo4j in this run. ``bench`` always loads
    it; ``bench-full`` first measures the store's write throughput on a probe and skips the
    Neo4j graph (saying so, with the figures) when the load would not fit its budget."""
    if importlib.util.find_spec("graph.neo4j_store") is None:
        return None, "graph.neo4j_store is not in this tree yet", []
    graph = NeoGraph(neo)
    if not opts.full:
        return graph, "", []
    n_cis = min(PROBE, cmdb.ci_count)
    inside = np.flatnonzero((cmdb.src < n_cis) & (cmdb.dst < n_cis))[:PROBE].tolist()
    cis = [cmdb.ci(i) for i in range(n_cis)]
    rels = [cmdb.relationship(e) for e in inside]
    warm_ids = {ci.id for ci in cis[:PROBE_WARM_UP]}
    progress(f"neo4j: probing the store's write throughput ({len(cis):,} CIs, {len(rels):,} rels)")
    from graph.model import WriteContext

    ctx = WriteContext(actor="benchmarks", source="generator")
    try:
        # An untimed warm-up first: the first writes of a server just started are slow (JIT
        # compilation, cold caches). A cold probe measured 3,564 CIs/s and projected an 11 min
        # load, over the budget, where the whole 1M load had run at 8,102 CIs/s (~6 min).
        store = graph.wipe()
        store.upsert_cis(cis[:PROBE_WARM_UP], ctx)
        store.upsert_relationships(
            [r for r in rels if r.source in warm_ids and r.target in warm_ids], ctx
        )
        store = graph.wipe()
        start = time.perf_counter()
        store.upsert_cis(cis, ctx)
        cis_s = time.perf_counter() - start
        start = time.perf_counter()
        store.upsert_relationships(rels, ctx)
        rels_s = time.perf_counter() - start
        graph.wipe()
    except Exception as exc:  # the store failed: say so, run the rest without the graph
        graph.close()
        why = f"the write-throughput probe failed ({type(exc).__name__}: {str(exc)[:200]})"
        return (
            None,
            why,
            [Row("store", "write-throughput probe", "Neo4j store", Status.ERROR, note=why)],
        )
    ci_rate, rel_rate = len(cis) / cis_s, len(rels) / max(rels_s, 1e-9)
    projected = cmdb.ci_count / ci_rate + cmdb.relationship_count / rel_rate
    case = f"write-throughput probe ({len(cis):,} CIs, {len(rels):,} relationships, one call each)"
    rows = [
        Row(
            "store",
            case,
            "Neo4j store",
            rate=ci_rate,
            rate_unit="CIs/s",
            proxies={"rels/s": round(rel_rate), "projected load s": round(projected)},
            note=f"CIs {cis_s:.1f} s, relationships {rels_s:.1f} s; single run",
        )
    ]
    if projected <= opts.neo4j_load_budget_s:
        return graph, "", rows
    graph.close()
    why = (
        f"not loaded at {cmdb.ci_count:,} CIs: {cmdb.ci_count:,} CIs + "
        f"{cmdb.relationship_count:,} relationships through Neo4jStore would take "
        f"~{projected / 60:.0f} min at the measured {ci_rate:,.0f} CIs/s and "
        f"{rel_rate:,.0f} relationships/s, over the {opts.neo4j_load_budget_s / 60:.0f} min "
        "load budget (--neo4j-load-budget); `make bench` (100k) has the Neo4j figures"
    )
    return None, why, rows


def run_store(
    opts: Options, cmdb: GeneratedCmdb, neo: NeoGraph | None, why: str, tmp: Path
) -> list[Row]:
    rows: list[Row] = []
    path = tmp / "embedded-store"
    progress(f"store: loading {cmdb.ci_count:,} CIs into the embedded store at {path}")
    store = SqliteStore(path)
    try:
        rows += store_peers.load(store, cmdb, "embedded (SQLite)")
        same, detail = store_peers.same_topology(store.topology(), cmdb.topology())
        rows.append(
            Row(
                "store",
                "topology() equals the generator's",
                "embedded (SQLite)",
                Status.OK if same else Status.MISMATCH,
                note="ids, order and triples equal" if same else detail,
            )
        )
        rows += store_peers.operations(
            store,
            cmdb,
            "embedded (SQLite)",
            repeat=opts.repeat,
            seed=opts.seed,
            reopen=lambda: SqliteStore(path),
            budget_s=opts.budget_s,
            depths=opts.depths,
        )
    finally:
        store.close()
    peer = "Neo4j store"
    if neo is None:
        rows.append(skipped("store", "all store operations", peer, why))
        return rows
    progress("store: wiping the Neo4j database and loading it through Neo4jStore")
    neo_store = neo.wipe()
    rows += store_peers.load(neo_store, cmdb, peer)
    neo.loaded.add(cmdb.name)
    same, detail = store_peers.same_topology(neo_store.topology(), cmdb.topology())
    rows.append(
        Row(
            "store",
            "topology() equals the generator's",
            peer,
            Status.OK if same else Status.MISMATCH,
            note="ids, order and triples equal" if same else detail,
        )
    )
    target = neo.target
    rows += store_peers.operations(
        neo_store,
        cmdb,
        peer,
        repeat=opts.repeat,
        seed=opts.seed,
        reopen=lambda: type(neo_store)(target.uri, user=target.user, password=target.password),
        budget_s=opts.budget_s,
        depths=opts.depths,
    )
    return rows


# --------------------------------------------------------------------------------------------
# impact


@dataclass(frozen=True, slots=True)
class Case:
    label: str
    dataset: str
    sources: tuple[int, ...]  # node numbers in that dataset's topology


def impact_cases(opts: Options, cmdb: GeneratedCmdb, ids: Mapping[CiId, int]) -> list[Case]:
    rng = np.random.default_rng(opts.seed)
    host, db, app = cmdb.layer("host"), cmdb.layer("db"), cmdb.layer("app")

    def number(i: int) -> int:
        return ids[CiId(cmdb.ids[i])]

    def pick(layer_start: int, count: int, k: int) -> tuple[int, ...]:
        chosen = rng.choice(count, size=k, replace=False)
        return tuple(number(layer_start + int(c)) for c in chosen)

    cases = [
        Case("one site (worst case)", "cmdb", (number(cmdb.layer("site").start),)),
        Case("one shared hub (dns)", "cmdb", (number(cmdb.layer("shared").start),)),
        Case("one host", "cmdb", pick(host.start, host.count, 1)),
        Case("one database", "cmdb", pick(db.start, db.count, 1)),
        Case("3 random hosts", "cmdb", pick(host.start, host.count, 3)),
    ]
    if opts.full:
        cases += [
            Case("one application", "cmdb", pick(app.start, app.count, 1)),
            Case("30 random hosts", "cmdb", pick(host.start, host.count, min(30, host.count))),
        ]
    return cases


@dataclass(eq=False)
class Dataset:
    name: str
    cmdb: GeneratedCmdb
    graph: ip.PropagationGraph
    peers: dict[str, ip.Peer]
    cte: ip.SqliteCte | None


PEER_FLOOR = "scipy csgraph BFS + predecessors (floor)"
PEER_OURS = "ours (embedded): impact.propagation"
PEER_IGRAPH = "igraph subcomponent"
PEER_PY = "plain Python BFS + parent dict"
PEER_NX = "networkx descendants"
PEER_UNION = "SQLite recursive CTE, UNION (dedup)"
PEER_UNION_ALL = "SQLite recursive CTE, UNION ALL (paths, capped)"
PEER_NAIVE = f"Neo4j naive MATCH p=…* RETURN p ({nx4.NAIVE_TIMEOUT_S:.0f} s timeout)"
PEER_DISTINCT = "Neo4j var-length RETURN DISTINCT x (pruning BFS)"
PEER_SHORTEST = "Neo4j ANY SHORTEST, one path per CI"
PEER_OURS_NEO = "ours (neo4j), warm: resident index in sync"
PEER_OURS_NEO_COLD = "ours (neo4j), first request after a change: synchronous resync"
PEER_OURS_NEO_STALE = "ours (neo4j), first request after a change: serving policy"
PEER_OURS_NEO_WATCHED = (
    "ours (neo4j), warm: generation watched in the background "
    f"(recheck {OursOnNeo4j.RECHECK_MS:.0f} ms)"
)
PEER_OURS_NEO_STATUS = (
    "ours (neo4j), first request after a status change: synchronous (status column only)"
)
PEERS_OURS_NEO = (
    PEER_OURS_NEO,
    PEER_OURS_NEO_WATCHED,
    PEER_OURS_NEO_COLD,
    PEER_OURS_NEO_STATUS,
    PEER_OURS_NEO_STALE,
)


def build_dataset(
    name: str, cmdb: GeneratedCmdb, opts: Options, tmp: Path, rows: list[Row]
) -> Dataset:
    topology = cmdb.topology(DEFAULT_REGISTRY)
    graph = ip.propagation_graph(topology, DEFAULT_REGISTRY)
    peers: dict[str, ip.Peer] = {}
    builders: list[tuple[str, Callable[[], ip.Peer]]] = [
        (PEER_FLOOR, lambda: ip.make_scipy(graph)),
        (PEER_IGRAPH, lambda: ip.make_igraph(graph)),
        (PEER_PY, lambda: ip.make_python_bfs(graph)),
        (PEER_NX, lambda: ip.make_networkx(graph)),
    ]
    reason = ip.ours_available()
    if reason is None:
        builders.insert(1, (PEER_OURS, lambda: ip.make_ours(topology, DEFAULT_REGISTRY)))
    else:
        rows.append(skipped("impact", f"{name}: build", PEER_OURS, reason))
    for peer, build in builders:
        m = measure(build, repeat=1, warm=False)
        peers[peer] = m.result
        per_rel = ip.index_bytes_per_relationship(m.result)
        rows.append(
            Row(
                "impact",
                f"{name}: build the peer's structure",
                peer,
                timing=m.timing,
                baseline=peer == PEER_FLOOR,
                proxies={} if per_rel is None else {"index bytes/relationship": round(per_rel, 1)},
                note="single run",
            )
        )
    m_cte = measure(lambda: ip.SqliteCte(graph, tmp), repeat=1, warm=False)
    rows.append(
        Row(
            "impact",
            f"{name}: build the peer's structure",
            "SQLite table prop(u, v)",
            timing=m_cte.timing,
            note="single run",
        )
    )
    progress(f"impact: {name}: {graph.node_count:,} CIs, {graph.edge_count:,} propagation entries")
    return Dataset(name, cmdb, graph, peers, m_cte.result)


def run_impact(
    opts: Options,
    *,
    cmdb: GeneratedCmdb,
    neo: NeoGraph | None,
    why: str,
    tmp: Path,
) -> tuple[list[Row], Dataset]:
    rows: list[Row] = []
    star_n = min(STAR_MAX if opts.full else QUICK_STAR_MAX, opts.size)
    datasets = {
        "cmdb": build_dataset("cmdb", cmdb, opts, tmp, rows),
        "diamond": build_dataset("diamond ladder 12x4", diamond_ladder(12, 4), opts, tmp, rows),
        "star": build_dataset(f"star of {star_n:,}", star(star_n), opts, tmp, rows),
    }
    main = datasets["cmdb"]
    numbers = {ci: n for n, ci in enumerate(main.graph.topology.ids)}
    cases = impact_cases(opts, cmdb, numbers)
    for key in ("diamond", "star"):
        d = datasets[key]
        root = d.graph.topology.number(CiId(d.cmdb.roots["root"]))
        cases.append(Case(f"{d.name}: the root", key, (root,)))

    ours: OursOnNeo4j | None = None
    if neo is not None:
        try:
            ours = _load_neo4j(neo, [d.cmdb for d in datasets.values()], rows)
        except Exception as exc:  # report, skip the Neo4j peers, keep the in-process ones
            progress(f"impact: loading Neo4j failed: {exc}")
            why = f"the data could not be loaded into Neo4j ({type(exc).__name__}: {exc})"

    for case in cases:
        d = datasets[case.dataset]
        progress(f"impact: {case.label}")
        floor = measure(
            partial(d.peers[PEER_FLOOR], case.sources),
            repeat=opts.repeat,
            budget_s=opts.budget_s,
            fill_s=IMPACT_FILL_S,
        )
        reference, _ = floor.result
        scanned = ip.edges_scanned(d.graph, reference)
        rows.append(
            Row(
                "impact",
                case.label,
                PEER_FLOOR,
                timing=floor.timing,
                baseline=True,
                proxies={"reached": int(reference.shape[0]), "edges scanned": scanned},
            )
        )
        for peer, fn in d.peers.items():
            if peer == PEER_FLOOR:
                continue
            rows.append(_checked(opts, case, peer, partial(fn, case.sources), reference))
        if d.cte is not None:
            cte = d.cte
            rows.append(
                _checked(opts, case, PEER_UNION, partial(cte.union, case.sources), reference)
            )
            cap = ip.PATH_CAP if opts.full else QUICK_PATH_CAP
            m = measure(
                partial(cte.union_all, case.sources, cap),
                repeat=opts.repeat,
                budget_s=opts.budget_s,
                fill_s=IMPACT_FILL_S,
            )
            produced = int(m.result[1]["rows"])
            capped = produced >= cap
            rows.append(
                Row(
                    "impact",
                    case.label,
                    PEER_UNION_ALL,
                    Status.CAPPED if capped else Status.OK,
                    timing=m.timing,
                    proxies=dict(m.result[1]),
                    note=(
                        f"cut at {cap:,} rows (paths, or walks round cycles): a lower bound"
                        if capped
                        else "every path enumerated"
                    ),
                )
            )
        ids = [str(d.graph.topology.ids[n]) for n in case.sources]
        expected = {str(d.graph.topology.ids[int(n)]) for n in reference.tolist()}
        if neo is None or ours is None:
            rows += [
                skipped("impact", case.label, p, why)
                for p in (
                    PEER_NAIVE,
                    PEER_DISTINCT,
                    PEER_SHORTEST,
                    *PEERS_OURS_NEO,
                )
            ]
            continue
        rows += _neo4j_impact(
            opts, case=case, d=d, ids=ids, expected=expected, neo=neo.target, ours=ours
        )
    if ours is not None:
        ours.restore()
    for d in datasets.values():
        if d.cte is not None:
            d.cte.close()
    return rows, main


def _checked(
    opts: Options, case: Case, peer: str, fn: Callable[[], ip.Answer], reference: np.ndarray
) -> Row:
    try:
        m = measure(fn, repeat=opts.repeat, budget_s=opts.budget_s, fill_s=IMPACT_FILL_S)
    except Exception as exc:  # a peer that breaks is reported, the run goes on
        return Row("impact", case.label, peer, Status.ERROR, note=f"{type(exc).__name__}: {exc}")
    reached, proxies = m.result
    same, detail = ip.same_set(reference, reached)
    return Row(
        "impact",
        case.label,
        peer,
        Status.OK if same else Status.MISMATCH,
        timing=m.timing,
        proxies={"reached": int(reached.shape[0]), **proxies},
        note="" if same else f"answer differs from the floor: {detail}",
    )


def _load_neo4j(neo: NeoGraph, cmdbs: Sequence[GeneratedCmdb], rows: list[Row]) -> OursOnNeo4j:
    """Every dataset in the Neo4j database, through our store (the store group may have
    loaded the CMDB already), and our resident index synchronised with it."""
    from graph.model import Relationship

    if cmdbs[0].name not in neo.loaded:
        progress("impact: wiping the Neo4j database")
        neo.wipe()
    store = neo.store if neo.store is not None else neo.open()
    for cmdb in cmdbs:
        if cmdb.name in neo.loaded:
            continue
        progress(f"impact: loading {cmdb.name} into Neo4j through Neo4jStore")
        loaded = store_peers.load(store, cmdb, "Neo4j store")
        neo.loaded.add(cmdb.name)
        if cmdb is cmdbs[0]:  # the store group did not run: keep the throughput figures
            for r in loaded:
                r.group, r.case = "impact", f"neo4j: load through Neo4jStore, {r.case}"
            rows += loaded
    ladder = cmdbs[1]
    # carries no failure: toggled to move the generation before a first request after a change
    marker = Relationship(source=CiId(ladder.ids[0]), type="OWNS", target=CiId(ladder.ids[1]))
    ours = OursOnNeo4j(store, marker)
    m = measure(ours.sync, repeat=1, warm=False)
    index = m.result
    topo = index.topology
    rows.append(
        Row(
            "impact",
            "neo4j: synchronise the resident index (topology() + build_index)",
            PEER_OURS_NEO,
            timing=m.timing,
            proxies={
                "nodes": topo.node_count,
                "relationships": topo.edge_count,
                "index bytes/relationship": round(index.nbytes() / max(topo.edge_count, 1), 1),
            },
            note="every dataset of this run in one database; single run; " + ours.freshness(),
        )
    )
    return ours


def _neo4j_impact(
    opts: Options,
    *,
    case: Case,
    d: Dataset,
    ids: list[str],
    expected: set[str],
    neo: nx4.Neo4jTarget,
    ours: OursOnNeo4j,
) -> list[Row]:
    rows: list[Row] = []
    rows += _ours_neo4j(opts, case, ids, expected, ours)
    to_source, to_target = d.graph.single_direction()
    peers = (PEER_NAIVE, PEER_DISTINCT, PEER_SHORTEST)
    if to_target:
        return rows + [
            skipped(
                "impact",
                case.label,
                p,
                f"{', '.join(to_target)} carry failure source->target: not one var-length pattern",
            )
            for p in peers
        ]
    for peer, query, timeout, profile, quick in (
        (PEER_NAIVE, nx4.naive_query(to_source), nx4.NAIVE_TIMEOUT_S, False, NAIVE_QUICK),
        (PEER_DISTINCT, nx4.distinct_query(to_source), nx4.QUERY_TIMEOUT_S, True, None),
        (PEER_SHORTEST, nx4.shortest_query(to_source), nx4.QUERY_TIMEOUT_S, True, SHORTEST_QUICK),
    ):
        if quick is not None and not opts.full and not case.label.startswith(quick):
            rows.append(
                skipped(
                    "impact",
                    case.label,
                    peer,
                    f"make bench runs it from {_named(quick)} only (seconds to a minute a "
                    "run elsewhere); make bench-full runs it everywhere",
                )
            )
            continue
        try:
            m = measure(
                partial(nx4.reach, neo, query, ids, timeout),
                repeat=opts.repeat,
                budget_s=opts.budget_s,
                fill_s=IMPACT_FILL_S,
                warm_if_cold_under_s=NEO4J_SLOW_S,
            )
        except Exception as exc:
            if nx4.is_timeout(exc):
                rows.append(
                    Row(
                        "impact",
                        case.label,
                        peer,
                        Status.TIMEOUT,
                        note=f"no answer within the {timeout:.0f} s server-side timeout",
                    )
                )
            else:
                rows.append(
                    Row(
                        "impact",
                        case.label,
                        peer,
                        Status.ERROR,
                        note=f"{type(exc).__name__}: {str(exc)[:200]}",
                    )
                )
            continue
        found, streamed = m.result
        proxies: dict[str, int | float | str] = {"reached": len(found), "rows": streamed}
        if profile and m.timing.runs:  # PROFILE runs the query again: only cheap ones
            try:
                proxies["db hits"] = nx4.db_hits(neo, query, ids)
            except Exception as exc:  # PROFILE is a proxy: its failure is a note, not a stop
                proxies["db hits"] = f"n/a ({type(exc).__name__})"
        same = found == expected
        notes = []
        if not same:
            notes.append(f"{len(found)} reached vs {len(expected)} expected")
        if not m.timing.runs:
            notes.append(f"cold run over {NEO4J_SLOW_S:.0f} s: no warm runs")
        if peer == PEER_DISTINCT and streamed > len(found):
            notes.append(
                f"{streamed - len(found):,} duplicate rows despite DISTINCT (one pruning BFS "
                "per start node; deduplicated client-side)"
            )
        rows.append(
            Row(
                "impact",
                case.label,
                peer,
                Status.OK if same else Status.MISMATCH,
                timing=m.timing,
                proxies=proxies,
                note="; ".join(notes),
            )
        )
    _compare_ours(rows)
    return rows


def _ours_neo4j(
    opts: Options, case: Case, ids: list[str], expected: set[str], ours: OursOnNeo4j
) -> list[Row]:
    """``ours (neo4j)`` warm (resident index synchronised) and the first request after a
    change, under the synchronous policy (snapshot and index build included) and under the
    serving policy (the previous snapshot, flagged behind, refreshed in the background);
    reach sets checked against the floor's."""
    rows: list[Row] = []
    topo_ids = ours.sync().topology.ids

    def check(result: Answer) -> tuple[Status, str]:
        found = {topo_ids[n] for n in result.reached.tolist()}
        if found == expected:
            return Status.OK, ""
        return Status.MISMATCH, f"{len(found)} reached vs {len(expected)} expected"

    def warm_row(
        peer: str,
        fn: Callable[[], Answer],
        note: Callable[[], str],
        around: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> Row:
        try:
            with around():
                m = measure(fn, repeat=opts.repeat, budget_s=opts.budget_s, fill_s=IMPACT_FILL_S)
        except Exception as exc:
            return Row(
                "impact", case.label, peer, Status.ERROR, note=f"{type(exc).__name__}: {exc}"
            )
        status, wrong = check(m.result)
        return Row(
            "impact",
            case.label,
            peer,
            status,
            timing=m.timing,
            proxies=dict(m.result.proxies),
            note=wrong or note(),
        )

    rows.append(
        warm_row(
            PEER_OURS_NEO,
            partial(ours.warm, ids),
            lambda: "generation round trip per request + propagate + first-page explanations",
        )
    )
    rows.append(
        warm_row(PEER_OURS_NEO_WATCHED, partial(ours.watched, ids), ours.watch_note, ours.watching)
    )
    after_change = AFTER_CHANGE_FULL if opts.full else AFTER_CHANGE_QUICK
    if not case.label.startswith(after_change):
        rows += [
            skipped(
                "impact",
                case.label,
                peer,
                f"timed from {_named(after_change)} only (re-reading the snapshot dominates "
                "and does not depend on the case; make bench-full adds the site)",
            )
            for peer in (PEER_OURS_NEO_COLD, PEER_OURS_NEO_STATUS, PEER_OURS_NEO_STALE)
        ]
        return rows

    def fresh_row(peer: str, run: Callable[[], tuple[list[float], Answer, str]], what: str) -> Row:
        """A row of first requests demanding a fresh answer after a change: ``run`` gives
        their times, the first answer and what went wrong beyond its reach set ("" if none)."""
        nonlocal topo_ids
        try:
            times, first, wrong = run()
            topo_ids = ours.sync().topology.ids
            status, note = check(first)
            if wrong:
                status, note = Status.MISMATCH, wrong
        except Exception as exc:
            return Row(
                "impact", case.label, peer, Status.ERROR, note=f"{type(exc).__name__}: {exc}"
            )
        return Row(
            "impact",
            case.label,
            peer,
            status,
            timing=Timing(times[0], tuple(times[1:])),
            proxies=dict(first.proxies),
            note=note or what,
        )

    def resynced() -> tuple[list[float], Answer, str]:
        return (*ours.cold(ids, 1 + opts.repeat), "")

    def restatused() -> tuple[list[float], Answer, str]:
        times, first, updates = ours.cold_status(ids, 1 + opts.repeat)
        rebuilt = len(times) - updates
        return times, first, f"{rebuilt} requests rebuilt the index" if rebuilt else ""

    rows.append(
        fresh_row(
            PEER_OURS_NEO_COLD,
            resynced,
            "after a change: topology() snapshot + build_index + propagate + explanations",
        )
    )
    rows.append(
        fresh_row(
            PEER_OURS_NEO_STATUS,
            restatused,
            "after a status change: the status column read alone (statuses_since), the "
            "index's other arrays kept, + propagate + explanations",
        )
    )
    try:
        run = ours.serving(ids, expected, 1 + opts.repeat)
        rows.append(
            Row(
                "impact",
                case.label,
                PEER_OURS_NEO_STALE,
                Status.OK if run.ok else Status.MISMATCH,
                timing=Timing(run.times[0], tuple(run.times[1:])),
                proxies=dict(run.proxies),
                note=run.note,
            )
        )
    except Exception as exc:
        rows.append(
            Row(
                "impact",
                case.label,
                PEER_OURS_NEO_STALE,
                Status.ERROR,
                note=f"{type(exc).__name__}: {exc}",
            )
        )
    return rows


def _compare_ours(rows: list[Row]) -> None:
    """Say, in the ``ours (neo4j)`` rows, how they compare with Neo4j's own queries (issue
    4's targets: within 2x of RETURN DISTINCT, 100x faster than the naive query)."""
    by_peer = {r.peer: r for r in rows if r.status == Status.OK and r.timing is not None}
    distinct, naive = by_peer.get(PEER_DISTINCT), by_peer.get(PEER_NAIVE)
    for peer in PEERS_OURS_NEO:
        row = by_peer.get(peer)
        if row is None or row.timing is None:
            continue
        parts = []
        if distinct is not None and distinct.timing is not None:
            parts.append(f"{row.timing.median_ms / distinct.timing.median_ms:.2f}x DISTINCT")
        if naive is not None and naive.timing is not None:
            times = naive.timing.median_ms / row.timing.median_ms
            parts.append(f"naive {times:,.0f}x slower" if times >= 10 else f"{times:.2f}x naive")
        if parts:
            row.note = "; ".join([*parts, row.note] if row.note else parts)


# --------------------------------------------------------------------------------------------
# import


def run_import(
    opts: Options,
    cmdb: GeneratedCmdb,
    neo: nx4.Neo4jTarget | None,
    why: str,
    tmp: Path,
    *,
    graph_ok: bool = True,
) -> list[Row]:
    """``graph_ok``: the Neo4j graph fits this size's load budget (else the Neo4j import
    engine figures are taken at the quick size)."""
    rows: list[Row] = []
    count = min(IMPORT_ROWS, cmdb.ci_count)
    node_rows = nx4.node_rows(cmdb, 0, count)
    inside = np.flatnonzero((cmdb.src < count) & (cmdb.dst < count))[:IMPORT_ROWS].tolist()
    rel_rows = nx4.rel_rows(cmdb, inside)
    rel_count = len(inside)
    cis = [cmdb.ci(i) for i in range(count)]
    rels = [cmdb.relationship(e) for e in inside]
    case_nodes = f"{count:,} CI rows"
    case_rels = f"{rel_count:,} relationship rows"

    # The embedded store: one batch per call vs one call per row.
    from graph.model import WriteContext

    ctx = WriteContext(actor="benchmarks", source="generator")
    for case, items, write_name in (
        (case_nodes, cis, "upsert_cis"),
        (case_rels, rels, "upsert_relationships"),
    ):

        def batched(items: Sequence[Any] = items, write_name: str = write_name) -> float:
            store = _fresh_store(tmp, cis if items is rels else [])
            try:
                start = time.perf_counter()
                getattr(store, write_name)(items, ctx)
                return time.perf_counter() - start
            finally:
                store.close()

        secs = sorted(batched() for _ in range(min(opts.repeat, 3)))
        rows.append(
            Row(
                "import",
                case,
                "embedded store, one upsert call (one transaction)",
                rate=len(items) / secs[len(secs) // 2],
                rate_unit="rows/s",
                note=f"median of {len(secs)} fresh loads",
                baseline=True,
            )
        )
        store = _fresh_store(tmp, cis if items is rels else [])
        try:
            capped = items[:EMBEDDED_PER_ROW_CAP]
            start = time.perf_counter()
            for item in capped:
                getattr(store, write_name)([item], ctx)
            spent = time.perf_counter() - start
        finally:
            store.close()
        rows.append(
            Row(
                "import",
                case,
                "embedded store, one upsert call per row",
                rate=len(capped) / spent,
                rate_unit="rows/s",
                note=f"{len(capped):,} rows run, {len(items):,} extrapolated: "
                f"{spent * len(items) / len(capped):.1f} s (fsync per commit)",
            )
        )

    peers = ("Neo4j per-row MERGE (auto-commit)", "Neo4j batched UNWIND MERGE")
    if neo is None:
        for case in (case_nodes, case_rels):
            rows += [skipped("import", case, p, why) for p in peers]
    else:
        try:
            rows += _neo4j_import(
                opts,
                neo=neo,
                node_rows=node_rows,
                rel_rows=rel_rows,
                rel_count=rel_count,
                cis=cis,
                rels=rels,
                case_nodes=case_nodes,
                case_rels=case_rels,
            )
        except Exception as exc:
            rows.append(
                Row(
                    "import", case_nodes, "Neo4j", Status.ERROR, note=f"{type(exc).__name__}: {exc}"
                )
            )

    if (
        importlib.util.find_spec("graph.sync_bench") is None
        or importlib.util.find_spec("importers.generic") is None
    ):
        rows.append(
            skipped(
                "import",
                "import engine",
                "import engine",
                "graph/sync_bench.py or importers/generic.py missing",
            )
        )
        return rows
    jobs: list[tuple[str, str, Callable[[], list[Row]]]] = []
    n_embedded = min(opts.size, SYNC_SYNTHETIC_MAX)
    jobs.append(
        (
            _reimport_case(n_embedded),
            "import engine (embedded store)",
            partial(_reimport, tmp, n_embedded, "embedded store", None),
        )
    )
    n_neo = min(opts.size, SYNC_SYNTHETIC_MAX if opts.full and graph_ok else SYNC_NEO4J_QUICK)
    if neo is None:
        rows.append(skipped("import", _reimport_case(n_neo), "import engine (Neo4j store)", why))
    else:
        jobs.append(
            (
                _reimport_case(n_neo),
                "import engine (Neo4j store)",
                partial(_reimport, tmp, n_neo, "Neo4j store", neo),
            )
        )
    if opts.full:
        jobs.append(
            (
                "generated CSV via graph.sync: first import, then unchanged re-import",
                "import engine (embedded store)",
                partial(_sync_import, opts, tmp),
            )
        )
        jobs.append(
            (
                _cli_case(opts.size),
                "cmdb import csv (embedded store)",
                partial(_cli_import, tmp, opts.size),
            )
        )
    for case, peer, job in jobs:
        try:
            rows += job()
        except Exception as exc:  # a failing engine is reported, the run goes on
            rows.append(
                Row(
                    "import",
                    case,
                    peer,
                    Status.ERROR,
                    note=f"{type(exc).__name__}: {str(exc)[:300]}",
                )
            )
    return rows


def _reimport_case(cis: int) -> str:
    return (
        f"synthetic CSV of {cis:,} CIs + {2 * cis:,} relationships via graph.sync: "
        "first import vs unchanged re-import"
    )


def _reimport(tmp: Path, cis: int, label: str, neo: nx4.Neo4jTarget | None) -> list[Row]:
    """``graph.sync_bench.measure_import``: the engine on ``write_synthetic_csv`` files into an
    empty store, twice (the second run must write nothing); parsing included."""
    from graph.sync_bench import measure_import
    from importers.base import SourceFile
    from importers.generic import iter_csv_chunks, write_synthetic_csv

    paths = write_synthetic_csv(tmp / f"synthetic-{cis}", cis, 2 * cis)
    files = [SourceFile(name=p.name, path=p) for p in paths]
    store: Any
    if neo is None:
        store = SqliteStore(Path(tempfile.mkdtemp(prefix="reimport-", dir=tmp)))
    else:
        graph = NeoGraph(neo)
        store = graph.wipe()
    progress(f"import: measure_import of {cis:,} synthetic CIs into the {label}")
    try:
        t = measure_import(store, lambda: iter_csv_chunks(files))
    finally:
        store.close()
    case = _reimport_case(cis)
    peer = f"import engine ({label})"
    items = t.cis + t.relationships
    return [
        Row(
            "import",
            case,
            f"{peer}, first import",
            timing=Timing(t.first_s * 1000, ()),
            rate=items / t.first_s,
            rate_unit="items/s",
            proxies={"cis": t.cis, "relationships": t.relationships},
            baseline=True,
            note="single run",
        ),
        Row(
            "import",
            case,
            f"{peer}, unchanged re-import",
            timing=Timing(t.reimport_s * 1000, ()),
            rate=items / t.reimport_s,
            rate_unit="items/s",
            proxies={"speedup": round(t.speedup, 2)},
            note=f"{t.speedup:.1f}x faster than its first import; single run",
        ),
    ]


def _cli_case(cis: int) -> str:
    return f"cmdb import csv of {cis:,} synthetic CIs + {cis:,} relationships (own process)"


def _cli_import(tmp: Path, cis: int) -> list[Row]:
    """``graph.sync_bench.measure_cli_import``: the whole CLI in a child process, streaming the
    CSV, and its peak resident memory (issue 5: under 1 GB at 1M CIs)."""
    from benchmarks.cli_import import measure

    progress(f"import: cmdb import csv of {cis:,} synthetic CIs in a child process")
    figures = measure(tmp / f"cli-{cis}", cis, cis, str(tmp / "cli-store"))
    rss_mib = figures.peak_rss_bytes / 2**20
    ok = figures.returncode == 0
    return [
        Row(
            "import",
            _cli_case(cis),
            "cmdb import csv (embedded store)",
            Status.OK if ok else Status.ERROR,
            timing=Timing(figures.seconds * 1000, ()),
            rate=2 * cis / figures.seconds,
            rate_unit="items/s",
            proxies={"peak RSS MiB": round(rss_mib)},
            note=f"peak RSS {rss_mib:,.0f} MiB; single run"
            if ok
            else f"exit {figures.returncode}: {figures.stderr[-300:]}",
        )
    ]


def _sync_import(opts: Options, tmp: Path) -> list[Row]:
    """``cmdb import csv`` as the engine runs it on the generator's own CSV (realistic
    classes and attributes): streamed chunks, reconciliation, source records; twice on the
    same files (the second run should write nothing)."""
    from graph.sync import run_import
    from importers.base import SourceFile
    from importers.generic import iter_csv_chunks

    case = "generated CSV via graph.sync: first import, then unchanged re-import"
    small = generate(min(opts.size, SYNC_MAX), opts.seed)
    paths = write_csv(small, tmp / "generated-csv")
    files = [SourceFile(name=p.name, path=p) for p in paths]
    store = SqliteStore(tmp / "sync-store")
    rows = []
    try:
        for label in ("first import", "unchanged re-import"):
            progress(f"import: graph.sync {label} of {small.ci_count:,} CIs")
            start = time.perf_counter()
            report_ = run_import(store, iter_csv_chunks(files), source="bench-csv", format="csv")
            spent = time.perf_counter() - start
            counts = {k: v for k, v in report_.counts().items() if v}
            rows.append(
                Row(
                    "import",
                    case,
                    f"import engine, {label} (embedded store)",
                    timing=Timing(spent * 1000, ()),
                    rate=(small.ci_count + small.relationship_count) / spent,
                    rate_unit="items/s",
                    proxies=dict(counts),
                    baseline=label == "first import",
                    note=f"{small.ci_count:,} CIs + {small.relationship_count:,} relationships; "
                    "parse included; single run",
                )
            )
    finally:
        store.close()
    return rows


def _fresh_store(tmp: Path, preload: Sequence[Any]) -> SqliteStore:
    from graph.model import WriteContext

    store = SqliteStore(Path(tempfile.mkdtemp(prefix="import-", dir=tmp)))
    if preload:
        store.upsert_cis(preload, WriteContext(actor="benchmarks"))
    return store


def _neo4j_import(
    opts: Options,
    *,
    neo: nx4.Neo4jTarget,
    node_rows: list[dict[str, Any]],
    rel_rows: dict[str, list[list[str]]],
    rel_count: int,
    cis: Sequence[Any],
    rels: Sequence[Any],
    case_nodes: str,
    case_rels: str,
) -> list[Row]:
    rows: list[Row] = []
    pairs = [(t, p) for t, ps in rel_rows.items() for p in ps]
    capped_rels: dict[str, list[list[str]]] = {}
    for t, p in pairs[:PER_ROW_CAP]:
        capped_rels.setdefault(t, []).append(p)
    capped_nodes = node_rows[:PER_ROW_CAP]
    nx4.ensure_schema(neo)

    def timed(fn: Callable[[], None], before: Callable[[], None]) -> float:
        before()
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def nodes_only() -> None:
        nx4.wipe(neo)

    def nodes_loaded() -> None:
        nx4.wipe(neo)
        nx4.unwind_nodes(neo, node_rows)

    progress("import: Neo4j per-row MERGE vs UNWIND")
    # Warm runs, as everywhere else: each technique runs once untimed first (the server plans
    # its queries and its JIT compiles the write path: on a server just started, a first load
    # of these 10,000 CI rows took 2.3 s, the next five 0.3-0.6 s; 0.2 s once warm), then
    # the per-row rows once and the batched loads ``repeat`` times.
    loads = max(opts.repeat, 1)
    timed(lambda: nx4.per_row_nodes(neo, capped_nodes[:WARM_ROWS]), nodes_only)
    timed(lambda: nx4.unwind_nodes(neo, node_rows), nodes_only)
    per_row_nodes = timed(lambda: nx4.per_row_nodes(neo, capped_nodes), nodes_only)
    unwind_nodes = sorted(
        timed(lambda: nx4.unwind_nodes(neo, node_rows), nodes_only) for _ in range(loads)
    )
    warm_rels = {t: ps[:WARM_ROWS] for t, ps in capped_rels.items()}
    timed(lambda: nx4.per_row_relationships(neo, warm_rels), nodes_loaded)
    timed(lambda: nx4.unwind_relationships(neo, rel_rows), nodes_loaded)
    per_row_rels = timed(lambda: nx4.per_row_relationships(neo, capped_rels), nodes_loaded)
    unwind_rels = sorted(
        timed(lambda: nx4.unwind_relationships(neo, rel_rows), nodes_loaded) for _ in range(loads)
    )
    for case, total, capped, per_row, unwind in (
        (case_nodes, len(node_rows), len(capped_nodes), per_row_nodes, unwind_nodes),
        (case_rels, rel_count, min(rel_count, PER_ROW_CAP), per_row_rels, unwind_rels),
    ):
        mid = unwind[len(unwind) // 2]
        rows.append(
            Row(
                "import",
                case,
                "Neo4j batched UNWIND MERGE",
                rate=total / mid,
                rate_unit="rows/s",
                note=f"median of {len(unwind)} warm loads into a wiped database",
            )
        )
        rows.append(
            Row(
                "import",
                case,
                "Neo4j per-row MERGE (auto-commit)",
                rate=capped / per_row,
                rate_unit="rows/s",
                note=f"{capped:,} rows run, {total:,} extrapolated: "
                f"{per_row * total / capped:.1f} s",
            )
        )
    rows += _neo4j_store_rows(
        neo, cis, rels, loads=loads, case_nodes=case_nodes, case_rels=case_rels
    )
    nx4.wipe(neo)
    return rows


def _neo4j_store_rows(
    neo: nx4.Neo4jTarget,
    cis: Sequence[Any],
    rels: Sequence[Any],
    *,
    loads: int,
    case_nodes: str,
    case_rels: str,
) -> list[Row]:
    """The same rows through our Neo4j store: one ``upsert`` call vs one call per row; and
    the statements one call sends replayed without the store (the server's part alone)."""
    graph = NeoGraph(neo)
    progress("import: Neo4j store, one call vs one call per row")
    try:
        return [
            *_neo4j_store_case(neo, graph, case_nodes, cis, (), loads=loads),
            *_neo4j_store_case(neo, graph, case_rels, rels, cis, loads=loads),
        ]
    finally:
        graph.close()


def _neo4j_store_case(
    neo: nx4.Neo4jTarget,
    graph: NeoGraph,
    case: str,
    items: Sequence[Any],
    cis: Sequence[Any],
    *,
    loads: int,
) -> list[Row]:
    """``items`` (CIs, or relationships between ``cis``) through the store, three ways."""
    from graph.model import WriteContext

    ctx = WriteContext(actor="benchmarks", source="generator")
    write_name = "upsert_cis" if not cis else "upsert_relationships"

    def wiped() -> Any:
        store = graph.wipe()
        if cis:
            store.upsert_cis(cis, ctx)
        return store

    def load(sent: list[tuple[str, dict[str, Any]]] | None = None) -> float:
        store = wiped()
        with _statements_sent(sent):
            start = time.perf_counter()
            getattr(store, write_name)(items, ctx)
            return time.perf_counter() - start

    # Warm, as the raw loads: one untimed load first. The last load records what it sends:
    # the relationships' rows name CIs that are still stored when they are replayed.
    sent: list[tuple[str, dict[str, Any]]] = []
    load()
    batched = sorted([*(load() for _ in range(loads - 1)), load(sent)])
    replayed = _replayed(neo, graph, sent, relationships=bool(cis), loads=loads)
    store = wiped()
    capped = items[:STORE_PER_ROW_CAP]
    start = time.perf_counter()
    for item in capped:
        getattr(store, write_name)([item], ctx)
    per_row = time.perf_counter() - start
    mid = batched[len(batched) // 2]
    return [
        Row(
            "import",
            case,
            "Neo4j store, one upsert call (one transaction)",
            rate=len(items) / mid,
            rate_unit="rows/s",
            note=f"median of {len(batched)} warm loads into a wiped database",
        ),
        Row(
            "import",
            case,
            "Neo4j store's statements replayed (server alone)",
            rate=len(items) / replayed[len(replayed) // 2],
            rate_unit="rows/s",
            note=f"median of {len(replayed)} warm replays: the {len(sent)} statements one "
            "call sent (every property, the creation entries, the generation), in one "
            "transaction, without the store's reads and client work",
        ),
        Row(
            "import",
            case,
            "Neo4j store, one upsert call per row",
            rate=len(capped) / per_row,
            rate_unit="rows/s",
            note=f"{len(capped):,} rows run, {len(items):,} extrapolated: "
            f"{per_row * len(items) / len(capped):.1f} s; "
            f"one call is {per_row * len(items) / len(capped) / mid:,.0f}x faster",
        ),
    ]


@contextmanager
def _statements_sent(into: list[tuple[str, dict[str, Any]]] | None) -> Iterator[None]:
    """Record what the Neo4j store's writes send (``_Write.send``: every statement that
    changes something; the store's reads run apart) into ``into``, if given."""
    if into is None:
        yield
        return
    from graph.neo4j_store import _Write  # type: ignore[import-not-found,unused-ignore]

    send = _Write.send

    def recording(self: Any, query: Any, **params: Any) -> None:
        into.append((query, params))
        send(self, query, **params)

    _Write.send = recording  # type: ignore[method-assign]
    try:
        yield
    finally:
        _Write.send = send  # type: ignore[method-assign]


def _replayed(
    neo: nx4.Neo4jTarget,
    graph: NeoGraph,
    sent: Sequence[tuple[str, dict[str, Any]]],
    *,
    relationships: bool,
    loads: int,
) -> list[float]:
    """Seconds of each replay of ``sent`` in one transaction, one untimed first, sorted. CIs
    are replayed into a wiped database; relationships over the CIs they were recorded
    against (their rows name the ends by internal node id), their relationships deleted."""

    def replay() -> float:
        if relationships:
            nx4.run(neo, "MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS")
        else:
            graph.wipe()
            graph.close()
        start = time.perf_counter()
        with neo.driver.session() as session:
            session.execute_write(lambda tx: [tx.run(q, p).consume() for q, p in sent])
        return time.perf_counter() - start

    replay()
    return sorted(replay() for _ in range(loads))


# --------------------------------------------------------------------------------------------
# api


def run_api(opts: Options, cmdb: GeneratedCmdb, main: Dataset | None) -> list[Row]:
    from benchmarks import api_peers

    rows: list[Row] = []
    if main is None:
        topology = cmdb.topology(DEFAULT_REGISTRY)
        graph = ip.propagation_graph(topology, DEFAULT_REGISTRY)
    else:
        graph = main.graph
    position = {ci: i for i, ci in enumerate(cmdb.ids)}
    root = graph.topology.number(CiId(cmdb.ids[cmdb.layer("site").start]))
    sizes = [min(10_000, cmdb.ci_count)] + ([min(50_000, cmdb.ci_count)] if opts.full else [])
    for size in sizes:
        data = api_peers.map_of(graph, root, size, lambda ci: cmdb.record(position[ci]))
        case = f"dependency map of {len(data.nodes):,} CIs, {len(data.edges):,} relationships"
        progress(f"api: {case}")
        peers = api_peers.make_peers(data)
        reference = orjson.loads(peers["orjson only (floor)"]())["data"]["dependencyJson"]
        for peer, fn in peers.items():
            m = measure(fn, repeat=opts.repeat, budget_s=opts.budget_s)
            same = _api_decode(orjson.loads(m.result)["data"]) == reference
            rows.append(
                Row(
                    "api",
                    case,
                    peer,
                    Status.OK if same else Status.MISMATCH,
                    timing=m.timing,
                    baseline=peer.endswith("(floor)"),
                    proxies={"bytes": len(m.result), "leaf values": api_peers.leaf_values(data)},
                    note="" if same else "payload differs from the floor's",
                )
            )
        rows.append(skipped("api", case, "ours (served form)", "api/ serves no GraphQL yet"))
    return rows


def _api_decode(data: dict[str, Any]) -> dict[str, Any]:
    if "dependencyJson" in data:
        return data["dependencyJson"]  # type: ignore[no-any-return]
    if "dependencyMap" in data:
        return data["dependencyMap"]  # type: ignore[no-any-return]
    c = data["dependencyColumns"]
    nodes = [
        {"id": i, "name": n, "ciClass": k, "status": s, "environment": e, "criticality": r}
        for i, n, k, s, e, r in zip(
            c["id"],
            c["name"],
            c["ciClass"],
            c["status"],
            c["environment"],
            c["criticality"],
            strict=True,
        )
    ]
    edges = [
        {"source": s, "target": t, "type": y}
        for s, t, y in zip(c["source"], c["target"], c["type"], strict=True)
    ]
    return {"nodes": nodes, "edges": edges}


# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse(argv)
    began = time.perf_counter()
    started = datetime.now(UTC)
    neo, why = nx4.connect(opts.neo4j)
    info = machine(neo.version if neo else f"none ({why})")
    line = machine_line(info)
    print(f"machine: {line}", flush=True)
    start = time.perf_counter()
    cmdb = generate(opts.size, opts.seed)
    gen_s = time.perf_counter() - start
    print(
        f"dataset: {cmdb.name}: {cmdb.ci_count:,} CIs, {cmdb.relationship_count:,} "
        f"relationships, generated in {gen_s:.1f} s",
        flush=True,
    )
    rows: list[Row] = []
    phases: dict[str, float] = {"generate": gen_s}
    main_dataset: Dataset | None = None
    graph: NeoGraph | None = None
    graph_why = why
    with tempfile.TemporaryDirectory(prefix="cmdb-bench-", dir=opts.workdir) as tmp_name:
        tmp = Path(tmp_name)
        try:
            if neo is not None and {"store", "impact"} & set(opts.only):
                start = time.perf_counter()
                graph, graph_why, probe_rows = neo4j_plan(opts, cmdb, neo)
                rows += probe_rows
                if opts.full:
                    phases["neo4j probe"] = time.perf_counter() - start
                if graph is None:
                    print(f"neo4j: {graph_why}", flush=True)
            if "store" in opts.only:
                start = time.perf_counter()
                rows += run_store(opts, cmdb, graph, graph_why, tmp)
                phases["store"] = time.perf_counter() - start
            if "impact" in opts.only:
                start = time.perf_counter()
                impact_rows, main_dataset = run_impact(
                    opts, cmdb=cmdb, neo=graph, why=graph_why, tmp=tmp
                )
                rows += impact_rows
                phases["impact"] = time.perf_counter() - start
            if graph is not None:
                graph.close()
            if "import" in opts.only:
                start = time.perf_counter()
                rows += run_import(opts, cmdb, neo, why, tmp, graph_ok=graph_why == "")
                phases["import"] = time.perf_counter() - start
            if "api" in opts.only:
                start = time.perf_counter()
                rows += run_api(opts, cmdb, main_dataset)
                phases["api"] = time.perf_counter() - start
        finally:
            if graph is not None:
                graph.close()
            if neo is not None:
                neo.close()
    report.assign_ratios(rows)
    print()
    print(report.tables(rows))
    prop_entries = (
        main_dataset.graph.edge_count
        if main_dataset
        else ip.propagation_graph(cmdb.topology(), DEFAULT_REGISTRY).edge_count
    )
    run: dict[str, Any] = {
        "date": started.date().isoformat(),
        "started": started.isoformat(timespec="seconds"),
        "command": "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv),
        "size": opts.size,
        "seed": opts.seed,
        "full": opts.full,
        "repeat": opts.repeat,
        "budget_s": opts.budget_s,
        "impact_fill_s": IMPACT_FILL_S,
        "groups": list(opts.only),
        "machine": info,
        "machine_line": line,
        "dataset": {
            "name": cmdb.name,
            "cis": cmdb.ci_count,
            "relationships": cmdb.relationship_count,
            "propagation_entries": prop_entries,
            "classes": cmdb.class_counts(),
            "types": cmdb.type_counts(),
            "redundancy_groups": cmdb.redundancy.count,
            "generate_s": round(gen_s, 2),
        },
        "neo4j": neo.uri if neo is not None else None,
        "neo4j_graph": "loaded through Neo4jStore" if graph_why == "" else graph_why,
        "duration_s": round(time.perf_counter() - began, 1),
        "phases_s": {k: round(v, 1) for k, v in phases.items()},
        "rows": [r.to_json() for r in rows],
    }
    path, run, rows = report.write_results(opts.out / f"{run['date']}.json", run, rows)
    print(f"\nresults: {path}", flush=True)
    if opts.docs is not None:
        report.update_docs(opts.docs, opts.size, report.section(run, rows))
        print(f"docs: {opts.docs}", flush=True)
    total = time.perf_counter() - began
    spent = ", ".join(f"{k} {v:.0f} s" for k, v in phases.items())
    aim = "bench-full aims at 40 min" if opts.full else "make bench aims at a few minutes"
    print(f"wall time: {total / 60:.1f} min ({spent}); {aim}", flush=True)
    bad = [r for r in rows if r.status in (Status.MISMATCH, Status.ERROR)]
    for r in bad:
        print(f"bench: {r.status}: {r.group} / {r.case} / {r.peer}: {r.note}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
