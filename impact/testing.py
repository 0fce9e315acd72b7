"""Small topologies written by hand, for examples, tests and docs.

>>> topo = topology_of([("app", "DEPENDS_ON", "db")], classes={"db": "database"})
>>> topo.ids, topo.class_names[topo.classes[1]]
(['app', 'db'], 'database')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from graph.model import DEFAULT_REGISTRY, CiId, RedundancyGroup, Registry, Status, utcnow
from graph.store import STATUS_ORDER, Topology


def topology_of(
    edges: Iterable[tuple[str, str, str]],
    *,
    nodes: Sequence[str] = (),
    classes: Mapping[str, str] | None = None,
    statuses: Mapping[str, Status] | None = None,
    redundancy: Mapping[str, Sequence[RedundancyGroup]] | None = None,
    registry: Registry = DEFAULT_REGISTRY,
    generation: str = "1",
) -> Topology:
    """A :class:`~graph.store.Topology` from ``(source, TYPE, target)`` triples.

    CIs are numbered in sorted id order, as the stores do; a CI's class defaults to
    ``application``.
    """
    edge_list = list(edges)
    names = sorted(
        {*nodes, *(s for s, _, _ in edge_list), *(t for _, _, t in edge_list)}
        | set(classes or {})
        | set(redundancy or {})
    )
    number = {name: i for i, name in enumerate(names)}
    type_names, class_names = registry.fingerprint()
    class_of = classes or {}
    status_of = statuses or {}
    return Topology(
        ids=[CiId(n) for n in names],
        classes=np.array(
            [class_names.index(class_of.get(n, "application")) for n in names], dtype=np.int16
        ),
        class_names=class_names,
        statuses=np.array(
            [STATUS_ORDER.index(status_of.get(n, Status.OPERATIONAL)) for n in names],
            dtype=np.int8,
        ),
        src=np.array([number[s] for s, _, _ in edge_list], dtype=np.int32),
        dst=np.array([number[t] for _, _, t in edge_list], dtype=np.int32),
        rel_types=np.array([type_names.index(r) for _, r, _ in edge_list], dtype=np.int16),
        type_names=type_names,
        redundancy={number[k]: tuple(v) for k, v in (redundancy or {}).items()},
        generation=generation,
        as_of=utcnow(),
    )
