"""Neo4j peers: the real server from ``make neo4j`` (``scripts/neo4j.sh``), never a fake.

Connection from ``NEO4J_URI`` (default ``bolt://127.0.0.1:7687``), ``NEO4J_USER`` (``neo4j``),
``NEO4J_PASSWORD`` (``cmdb-dev-password``). The Community edition has one user database,
shared with the test suites: the harness wipes it before loading, so never run the benchmark
while someone's tests use the same server.

Schema used by the harness's own loader (the same as the Neo4j store's vocabulary): every CI
is a ``:CI`` node with ``id``, ``name``, ``class``, ``status`` and its class label from the
registry; relationships keep their registry type. Labels and types come only from the
registry; everything else is a parameter.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchmarks.generate import CLASSES, TYPES, GeneratedCmdb
from graph.model import DEFAULT_REGISTRY, Registry

if TYPE_CHECKING:
    import neo4j

NAIVE_TIMEOUT_S = 60.0  # the naive path query's server-side transaction timeout
QUERY_TIMEOUT_S = 120.0  # any other query
BATCH = 10_000  # rows per UNWIND


@dataclass(eq=False)
class Neo4jTarget:
    uri: str
    user: str
    password: str
    driver: neo4j.Driver
    version: str

    def close(self) -> None:
        self.driver.close()


def connect(enabled: bool) -> tuple[Neo4jTarget | None, str]:
    """The server, or None and why not (printed in every Neo4j row that is skipped)."""
    if not enabled:
        return None, "Neo4j peers turned off (--no-neo4j or CMDB_BENCH_NEO4J=0)"
    try:
        import neo4j
    except ImportError as exc:  # the driver is a runtime dependency; this means a broken venv
        return None, f"the neo4j driver cannot be imported ({exc})"
    uri = os.environ.get("NEO4J_URI", "bolt://127.0.0.1:7687")
    user = os.environ.get("NEO4J_USER", "neo4j")
    password = os.environ.get("NEO4J_PASSWORD", "cmdb-dev-password")
    driver = neo4j.GraphDatabase.driver(uri, auth=(user, password), connection_timeout=5.0)
    try:
        driver.verify_connectivity()
        records, _, _ = driver.execute_query(
            "CALL dbms.components() YIELD name, versions, edition "
            "RETURN name, versions[0] AS version, edition"
        )
    except Exception as exc:  # any failure to reach or log in: say it, skip Neo4j peers
        driver.close()
        return None, f"no Neo4j server at {uri} ({type(exc).__name__}: {exc}); run `make neo4j`"
    version = ", ".join(f"{r['name']} {r['version']} {r['edition']}" for r in records)
    return Neo4jTarget(uri, user, password, driver, version), ""


def run(target: Neo4jTarget, text: str, timeout: float = QUERY_TIMEOUT_S, **params: Any) -> Any:
    """An auto-commit query with a server-side timeout; returns the summary."""
    import neo4j

    with target.driver.session() as session:
        return session.run(neo4j.Query(text, timeout=timeout), params).consume()


def wipe(target: Neo4jTarget) -> None:
    """Empty the (shared) database, keeping constraints and indexes. Relationships go first,
    10,000 a transaction: a batch of 10,000 nodes detached at once holds every relationship
    of its hubs in one transaction (a 1M CMDB loaded through our store ran the server out of
    transaction memory that way)."""
    for query in (
        "MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS",
        "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS",
    ):
        run(target, query, timeout=900)


def ensure_schema(target: Neo4jTarget) -> None:
    """The uniqueness constraint every MERGE on ``:CI {id}`` needs (anchors §2.2)."""
    import neo4j

    try:
        run(target, "CREATE CONSTRAINT bench_ci_id IF NOT EXISTS FOR (n:CI) REQUIRE n.id IS UNIQUE")
    except neo4j.exceptions.ClientError as exc:
        if "EquivalentSchemaRule" not in (exc.code or ""):  # the store's own constraint
            raise


def counts(target: Neo4jTarget) -> tuple[int, int]:
    records, _, _ = target.driver.execute_query(
        "MATCH (n:CI) WITH count(n) AS nodes MATCH ()-[r]->() RETURN nodes, count(r) AS rels"
    )
    return int(records[0]["nodes"]), int(records[0]["rels"])


# --------------------------------------------------------------------------------------------
# Loading


def node_rows(cmdb: GeneratedCmdb, start: int, stop: int) -> list[dict[str, Any]]:
    ids, classes = cmdb.ids, cmdb.classes
    return [
        {"id": ids[i], "name": ids[i], "class": CLASSES[int(classes[i])], "status": "operational"}
        for i in range(start, stop)
    ]


def rel_rows(cmdb: GeneratedCmdb, picks: Sequence[int]) -> dict[str, list[list[str]]]:
    by_type: dict[str, list[list[str]]] = {}
    ids = cmdb.ids
    for e in picks:
        by_type.setdefault(TYPES[int(cmdb.types[e])], []).append(
            [ids[int(cmdb.src[e])], ids[int(cmdb.dst[e])]]
        )
    return by_type


def _chunks(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _label_of(ci_class: str, registry: Registry) -> str:
    return registry.ci_class(ci_class).label


def unwind_nodes(
    target: Neo4jTarget, rows: Sequence[dict[str, Any]], registry: Registry = DEFAULT_REGISTRY
) -> None:
    """Batched ``UNWIND … MERGE`` of CI rows, one query per class label and batch."""
    by_class: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_class.setdefault(row["class"], []).append(row)
    for ci_class, class_rows in by_class.items():
        label = _label_of(ci_class, registry)
        for batch in _chunks(class_rows, BATCH):
            run(
                target,
                "UNWIND $rows AS r MERGE (n:CI {id: r.id}) "  # label from the registry only
                f"SET n:{label}, n.name = r.name, n.class = r.class, n.status = r.status",
                rows=list(batch),
            )


def unwind_relationships(
    target: Neo4jTarget, by_type: dict[str, list[list[str]]], registry: Registry = DEFAULT_REGISTRY
) -> None:
    for rel_type, pairs in by_type.items():
        registry.relationship_type(rel_type)  # types come only from the registry
        for batch in _chunks(pairs, BATCH):
            run(
                target,
                "UNWIND $rows AS r MATCH (a:CI {id: r[0]}) MATCH (b:CI {id: r[1]}) "
                f"MERGE (a)-[:{rel_type}]->(b)",
                rows=list(batch),
            )


def per_row_nodes(target: Neo4jTarget, rows: Sequence[dict[str, Any]]) -> None:
    """One auto-commit ``MERGE`` per row: the naive importer."""
    with target.driver.session() as session:
        for row in rows:
            label = _label_of(row["class"], DEFAULT_REGISTRY)
            session.run(
                f"MERGE (n:CI {{id: $id}}) SET n:{label}, n.name = $name, n.class = $class, "
                "n.status = $status",
                row,
            ).consume()


def per_row_relationships(target: Neo4jTarget, by_type: dict[str, list[list[str]]]) -> None:
    with target.driver.session() as session:
        for rel_type, pairs in by_type.items():
            DEFAULT_REGISTRY.relationship_type(rel_type)
            for a, b in pairs:
                session.run(
                    f"MATCH (a:CI {{id: $a}}) MATCH (b:CI {{id: $b}}) MERGE (a)-[:{rel_type}]->(b)",
                    {"a": a, "b": b},
                ).consume()


def load(target: Neo4jTarget, cmdb: GeneratedCmdb) -> tuple[float, float]:
    """Load a whole generated CMDB with batched UNWIND; seconds for nodes and relationships."""
    start = time.perf_counter()
    for first in range(0, cmdb.ci_count, BATCH * 5):
        unwind_nodes(target, node_rows(cmdb, first, min(first + BATCH * 5, cmdb.ci_count)))
    nodes_s = time.perf_counter() - start
    start = time.perf_counter()
    for first in range(0, cmdb.relationship_count, BATCH * 5):
        picks = range(first, min(first + BATCH * 5, cmdb.relationship_count))
        unwind_relationships(target, rel_rows(cmdb, picks))
    return nodes_s, time.perf_counter() - start


# --------------------------------------------------------------------------------------------
# Impact queries


def _types(to_source: Sequence[str]) -> str:
    for rel_type in to_source:
        DEFAULT_REGISTRY.relationship_type(rel_type)  # only registry names reach the text
    return "|".join(to_source)


def naive_query(to_source: Sequence[str]) -> str:
    """Every path (one row per path): what a first Cypher impact query looks like."""
    return (
        "MATCH (s:CI) WHERE s.id IN $ids "
        f"MATCH p = (s)<-[:{_types(to_source)}*]-(x) RETURN p, x.id AS id"
    )


def distinct_query(to_source: Sequence[str]) -> str:
    """Distinct reachable CIs only: Neo4j plans a pruning BFS var-expand (no paths)."""
    return (
        "MATCH (s:CI) WHERE s.id IN $ids "
        f"MATCH (s)<-[:{_types(to_source)}*0..]-(x) RETURN DISTINCT x.id AS id"
    )


def shortest_query(to_source: Sequence[str]) -> str:
    """One shortest path per reached CI (5.21+), returned as its last hop."""
    return (
        "MATCH (s:CI) WHERE s.id IN $ids "
        f"MATCH p = ANY SHORTEST (s)<-[:{_types(to_source)}]-*(x) "
        "RETURN x.id AS id, CASE WHEN length(p) > 0 THEN nodes(p)[-2].id END AS parent"
    )


def reach(
    target: Neo4jTarget, query: str, ids: Sequence[str], timeout: float
) -> tuple[set[str], int]:
    """The distinct ``id`` column of a query and how many rows it streamed."""
    import neo4j

    found: set[str] = set(ids)
    rows = 0
    with target.driver.session() as session:
        result = session.run(neo4j.Query(query, timeout=timeout), {"ids": list(ids)})
        for record in result:
            found.add(record["id"])
            rows += 1
    return found, rows


def db_hits(target: Neo4jTarget, query: str, ids: Sequence[str]) -> int:
    """Total database hits of the query's PROFILE plan (deterministic for a plan)."""
    import neo4j

    with target.driver.session() as session:
        result = session.run(
            neo4j.Query("PROFILE " + query, timeout=QUERY_TIMEOUT_S), ids=list(ids)
        )
        for _ in result:  # the server only has the profile of a result it fully produced
            pass
        return _sum_hits(result.consume().profile or {})


def _sum_hits(plan: dict[str, Any]) -> int:
    return int(plan.get("dbHits", 0)) + sum(_sum_hits(c) for c in plan.get("children", []))


def is_timeout(exc: Exception) -> bool:
    code = getattr(exc, "code", "") or ""
    return "TransactionTimedOut" in code or "Timeout" in code or "terminated" in str(exc).lower()
