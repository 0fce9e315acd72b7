"""Probable common causes: the upstream CIs that several failures share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from graph.model import Limits
from impact.index import I32, INF, ImpactIndex


@dataclass(frozen=True, slots=True)
class SharedCause:
    node: int
    explains: tuple[int, ...]  # positions in the ``failures`` given, in order
    distance: int  # the largest number of hops from this CI down to a failure it explains
    total_distance: int


def upstream(index: ImpactIndex, nodes: Sequence[int], depth: int | None = None) -> tuple[I32, I32]:
    """The CIs whose failure could reach any of ``nodes`` (them included), and the hops
    from each down to the nearest of them. Redundancy is ignored: a member of a group can
    degrade its owner, so it stays a candidate."""
    sources = np.unique(np.array(nodes, dtype=np.int32))
    if sources.shape[0] == 0:
        return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32)
    reached, times, _ = index.reverse.bfs(sources, np.zeros(sources.shape[0], dtype=np.int32))
    if depth is not None:
        keep = times <= depth
        reached, times = reached[keep], times[keep]
    return reached, times


def shared_causes(
    index: ImpactIndex,
    failures: Sequence[Sequence[int]],
    *,
    depth: int | None = Limits.MAX_DEPTH,
    limit: int = 20,
) -> list[SharedCause]:
    """Upstream CIs ranked by how many of ``failures`` each explains.

    Parameters
    ----------
    index : ImpactIndex
    failures : sequence of sequences of node numbers
        One entry per failure (an incident, or one failed CI): the CIs that failed in it.
    depth : int, optional
        Look at most this many hops upstream.
    limit : int
        Return at most this many causes.

    Returns
    -------
    list of SharedCause
        Most failures explained first; then the closest (smallest total distance).
        With several failures, only CIs explaining at least two are returned.

    Examples
    --------
    Two apps on one host, and the host on a switch: the host is the closest shared cause.

    >>> from graph.model import DEFAULT_REGISTRY, CiId
    >>> from impact.index import build_index
    >>> from impact.testing import topology_of
    >>> topo = topology_of([("a", "RUNS_ON", "host"), ("b", "RUNS_ON", "host"),
    ...                     ("host", "CONNECTS_TO", "switch"), ("c", "RUNS_ON", "other")])
    >>> index = build_index(topo, DEFAULT_REGISTRY)
    >>> causes = shared_causes(index, [[topo.number(CiId("a"))], [topo.number(CiId("b"))]])
    >>> [(topo.ids[c.node], c.explains, c.distance) for c in causes]
    [('host', (0, 1), 1), ('switch', (0, 1), 2)]
    """
    n = index.node_count
    count = np.zeros(n, dtype=np.int32)
    total = np.zeros(n, dtype=np.int64)
    worst = np.zeros(n, dtype=np.int32)
    per_failure: list[tuple[I32, I32]] = []
    for nodes in failures:
        reached, times = upstream(index, nodes, depth)
        per_failure.append((reached, times))
        count[reached] += 1
        total[reached] += times
        worst[reached] = np.maximum(worst[reached], times)
    need = 2 if len(failures) >= 2 else 1
    candidates = np.flatnonzero(count >= need)
    if candidates.shape[0] == 0:
        return []
    order = np.lexsort((candidates, total[candidates], -count[candidates]))
    chosen = candidates[order[:limit]]
    member = {int(c): i for i, c in enumerate(chosen)}
    explains: list[list[int]] = [[] for _ in chosen]
    for position, (reached, _) in enumerate(per_failure):
        hit = reached[np.isin(reached, chosen)]
        for node in hit.tolist():
            explains[member[node]].append(position)
    return [
        SharedCause(int(c), tuple(explains[i]), int(worst[c]), int(min(total[c], INF)))
        for i, c in enumerate(chosen)
    ]
