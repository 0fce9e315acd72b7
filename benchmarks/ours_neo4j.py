"""Our impact answer served from a Neo4j store: the ``ours (neo4j)`` peer.

The service answers impact questions from a resident index (:func:`impact.index.index_for`)
built from the store's :meth:`~graph.neo4j_store.Neo4jStore.topology` snapshot and kept while
the store's generation counter does not move. Two figures, both honest:

* **warm**: what a long-running API replica serves. ``index_for(store)`` (one round trip
  reading the generation; the cached snapshot and index are reused), ``propagate``, and the
  explanations of the answer's first page (states and distances of every affected CI, nearest
  first, and the explanation path of the first ``PAGE`` of them).
* **cold**: what the first request after a change pays. A change that carries no failure
  (an ``OWNS`` relationship between two micro-graph CIs, added or removed in turn, untimed)
  moves the generation; the timed call then re-reads the whole ``topology()`` from Neo4j and
  rebuilds the index before answering.

Freshness: the index is the snapshot of generation ``Topology.generation`` taken at
``Topology.as_of``; every call compares it with the store's current generation first, so an
answer never uses a snapshot older than the last committed structural write it can see.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from graph.model import CiId, Relationship, WriteContext, utcnow
from graph.store import Store
from impact.index import I32, ImpactIndex, index_for
from impact.propagation import ImpactState, propagate

PAGE = 100  # explanation paths built per answer: the API's first page


@dataclass(frozen=True, slots=True)
class Answer:
    reached: I32  # node numbers of the store's topology, sorted
    proxies: dict[str, int | float | str]


def answer(index: ImpactIndex, ids: Sequence[str]) -> Answer:
    """Propagate from ``ids`` (down) and build the explanations a first page shows."""
    topo = index.topology
    radius = propagate(index, dict.fromkeys((topo.number(CiId(i)) for i in ids), ImpactState.DOWN))
    nodes = radius.nodes  # nearest first
    states = radius.states
    hops = sum(len(radius.path(int(n))) for n in nodes[:PAGE])
    counts = np.bincount(states, minlength=4)
    return Answer(
        np.sort(radius.affected.astype(np.int32)),
        {
            "reached": int(radius.count),
            "down": int(counts[3]),
            "degraded": int(counts[2]),
            "at_risk": int(counts[1]),
            "path hops": hops,
        },
    )


@dataclass(eq=False)
class OursOnNeo4j:
    """The peer over one open store; ``marker`` is the no-failure relationship toggled to
    move the generation for cold runs."""

    store: Store
    marker: Relationship
    _marked: bool = field(default=False, init=False)
    _ctx: WriteContext = field(
        default_factory=lambda: WriteContext(actor="benchmarks", source="cold-run"), init=False
    )

    def sync(self) -> ImpactIndex:
        """The resident index, synchronised with the store (built if the generation moved)."""
        return index_for(self.store)

    def warm(self, ids: Sequence[str]) -> Answer:
        return answer(index_for(self.store), ids)

    def change(self) -> str:
        """A structural change that carries no failure; returns the new generation."""
        before = self.store.topology().generation
        if self._marked:
            self.store.delete_relationships([self.marker.key], self._ctx)
        else:
            self.store.upsert_relationships([self.marker], self._ctx)
        self._marked = not self._marked
        after = self.generation()
        if after == before:
            raise RuntimeError(
                f"toggling {self.marker.key} left the store's generation at {before}: "
                "a cold run would reuse the cached snapshot"
            )
        return after

    def cold(self, ids: Sequence[str], runs: int) -> tuple[list[float], Answer]:
        """``runs`` first-requests-after-a-change, in milliseconds, and the first answer."""
        times: list[float] = []
        first: Answer | None = None
        for _ in range(runs):
            self.change()
            start = time.perf_counter()
            result = answer(index_for(self.store), ids)
            times.append((time.perf_counter() - start) * 1000)
            first = first or result
        assert first is not None
        return times, first

    def generation(self) -> str:
        current = getattr(self.store, "generation", None)
        value = current() if callable(current) else None
        return str(value) if value is not None else self.store.topology().generation

    def restore(self) -> None:
        """Leave the store as loaded (the marker removed)."""
        if self._marked:
            self.store.delete_relationships([self.marker.key], self._ctx)
            self._marked = False

    def freshness(self) -> str:
        """How fresh the resident index is, for the report."""
        index = self.sync()
        topo = index.topology
        age = (utcnow() - topo.as_of).total_seconds()
        return (
            f"index of generation {topo.generation} (snapshot as_of "
            f"{topo.as_of.isoformat(timespec='seconds')}, {age:.0f} s old, equal to the "
            "store's current generation, which every call re-reads)"
        )
