"""API peers: serving a dependency map of N CIs (performance-anchors §4).

The map is the first N CIs a breadth-first walk from a site reaches in the propagation graph
(6 scalar fields each) and every relationship among them (3 fields each), already in memory.
Each peer turns it into JSON bytes: strawberry typed objects (one resolver per field: the
naive schema), strawberry typed columnar lists, a strawberry ``JSON`` scalar carrying pre-built
dicts, and plain ``orjson.dumps`` (the floor). Our served form plugs in once ``api/`` serves
GraphQL.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import strawberry
from strawberry.scalars import JSON

from benchmarks.impact_peers import PropagationGraph

MapPayload = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class MapData:
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]

    @property
    def payload(self) -> MapPayload:
        return {"nodes": self.nodes, "edges": self.edges}


def map_of(
    graph: PropagationGraph, root: int, size: int, records: Callable[[str], dict[str, Any]]
) -> MapData:
    """The first ``size`` CIs reached from ``root`` and the relationships among them.
    ``records(id)`` gives a CI's name, environment and criticality."""
    topo = graph.topology
    order: list[int] = [root]
    seen = {root}
    bounds = np.searchsorted(graph.u, np.arange(graph.node_count + 1))
    k = 0
    while k < len(order) and len(order) < size:
        x = order[k]
        for y in graph.v[bounds[x] : bounds[x + 1]].tolist():
            if y not in seen and len(order) < size:
                seen.add(y)
                order.append(y)
        k += 1
    keep = np.zeros(topo.node_count, dtype=np.bool_)
    keep[order] = True
    nodes = []
    for n in order:
        ci_id = topo.ids[n]
        rec = records(ci_id)
        nodes.append(
            {
                "id": ci_id,
                "name": rec.get("name", ci_id),
                "ciClass": topo.class_names[int(topo.classes[n])],
                "status": "operational",
                "environment": rec.get("environment"),
                "criticality": rec.get("criticality"),
            }
        )
    pick = np.flatnonzero(keep[topo.src] & keep[topo.dst])
    edges = [
        {"source": topo.ids[s], "target": topo.ids[d], "type": topo.type_names[t]}
        for s, d, t in zip(
            topo.src[pick].tolist(),
            topo.dst[pick].tolist(),
            topo.rel_types[pick].tolist(),
            strict=True,
        )
    ]
    return MapData(nodes, edges)


@strawberry.type
class Node:
    id: str
    name: str
    ci_class: str
    status: str
    environment: str | None
    criticality: int | None


@strawberry.type
class Edge:
    source: str
    target: str
    type: str


@strawberry.type
class DependencyMap:
    nodes: list[Node]
    edges: list[Edge]


@strawberry.type
class Columns:
    id: list[str]
    name: list[str]
    ci_class: list[str]
    status: list[str]
    environment: list[str | None]
    criticality: list[int | None]
    source: list[str]
    target: list[str]
    type: list[str]


@dataclass(frozen=True, slots=True)
class Root:
    """What the resolvers hand out, built once before timing (the store's answer)."""

    typed: DependencyMap
    columns: Columns
    payload: MapPayload


@strawberry.type
class Query:
    @strawberry.field
    def dependency_map(self, info: strawberry.Info) -> DependencyMap:
        root: Root = info.root_value
        return root.typed

    @strawberry.field
    def dependency_columns(self, info: strawberry.Info) -> Columns:
        root: Root = info.root_value
        return root.columns

    @strawberry.field
    def dependency_json(self, info: strawberry.Info) -> JSON:
        root: Root = info.root_value
        return root.payload  # type: ignore[return-value]  # JSON is a NewType over object


SCHEMA = strawberry.Schema(query=Query)
TYPED_QUERY = (
    "{ dependencyMap { nodes { id name ciClass status environment criticality }"
    " edges { source target type } } }"
)
COLUMNS_QUERY = (
    "{ dependencyColumns { id name ciClass status environment criticality source target type } }"
)
JSON_QUERY = "{ dependencyJson }"


def make_peers(data: MapData) -> dict[str, Callable[[], bytes]]:
    """Peer name -> a function producing the response body."""
    root = Root(
        typed=DependencyMap(
            nodes=[
                Node(
                    id=n["id"],
                    name=n["name"],
                    ci_class=n["ciClass"],
                    status=n["status"],
                    environment=n["environment"],
                    criticality=n["criticality"],
                )
                for n in data.nodes
            ],
            edges=[
                Edge(source=e["source"], target=e["target"], type=e["type"]) for e in data.edges
            ],
        ),
        columns=Columns(
            id=[n["id"] for n in data.nodes],
            name=[n["name"] for n in data.nodes],
            ci_class=[n["ciClass"] for n in data.nodes],
            status=[n["status"] for n in data.nodes],
            environment=[n["environment"] for n in data.nodes],
            criticality=[n["criticality"] for n in data.nodes],
            source=[e["source"] for e in data.edges],
            target=[e["target"] for e in data.edges],
            type=[e["type"] for e in data.edges],
        ),
        payload=data.payload,
    )

    def execute(query: str) -> Callable[[], bytes]:
        def run() -> bytes:
            result = SCHEMA.execute_sync(query, root_value=root)
            if result.errors:
                raise RuntimeError(f"GraphQL errors: {result.errors}")
            return orjson.dumps({"data": result.data})

        return run

    payload = data.payload
    return {
        "strawberry typed objects": execute(TYPED_QUERY),
        "strawberry typed columnar lists": execute(COLUMNS_QUERY),
        "strawberry JSON scalar": execute(JSON_QUERY),
        "orjson only (floor)": lambda: orjson.dumps({"data": {"dependencyJson": payload}}),
    }


def leaf_values(data: MapData) -> int:
    return 6 * len(data.nodes) + 3 * len(data.edges)
