"""Our impact answer served from a Neo4j store: the ``ours (neo4j)`` peer.

The service answers impact questions from a resident index
(:class:`impact.resident.ResidentIndex`) built from the store's
:meth:`~graph.neo4j_store.Neo4jStore.topology` snapshot; every request reads the store's
generation first (one round trip). Three figures, all honest:

* **warm** (:meth:`OursOnNeo4j.warm`): what a long-running API replica serves while in sync:
  the generation check (equal: the snapshot and index are reused), ``propagate``, and the
  explanations of the answer's first page (states and distances of every affected CI, nearest
  first, and the explanation path of the first ``PAGE`` of them).
* **first request after a change, serving policy** (:meth:`OursOnNeo4j.serving`): a change
  that carries no failure (an ``OWNS`` relationship between two micro-graph CIs, added or
  removed in turn, untimed) moves the generation; the timed request finds the snapshot behind,
  answers from it (saying so: ``Snapshot.fresh`` false, ``behind_since``) and leaves the
  refresh to the one background thread. Checked: the answer is the claimed snapshot's (its
  generation is the one before the change, and its reach set is the reference's: the change
  carries no failure); the background refresh completes; the next answer is fresh, in the new
  generation, and equal to the reference.
* **synchronous resync** (:meth:`OursOnNeo4j.cold`): today's cold, the policy of one-shot
  runs and of requests demanding a fresh answer: after the same change, the timed request
  re-reads the whole ``topology()`` from Neo4j and rebuilds the index before answering.

Freshness: the index is the snapshot of generation ``Topology.generation`` taken at
``Topology.as_of``; each answer's :class:`~impact.resident.Snapshot` says whether the store had
moved on when it was checked, and since when at most.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from graph.model import CiId, Relationship, WriteContext, utcnow
from graph.store import Store
from impact.index import I32, ImpactIndex
from impact.propagation import ImpactState, propagate
from impact.resident import FRESH, SERVING_STALENESS, ResidentIndex, Snapshot

PAGE = 100  # explanation paths built per answer: the API's first page
REFRESH_WAIT_S = 600.0  # a background refresh not done by then is reported as failed


@dataclass(frozen=True, slots=True)
class Answer:
    reached: I32  # node numbers of the answering snapshot's topology, in the order they failed
    proxies: dict[str, int | float | str]


def answer(index: ImpactIndex, ids: Sequence[str]) -> Answer:
    """Propagate from ``ids`` (down) and build the explanations a first page shows."""
    topo = index.topology
    radius = propagate(index, dict.fromkeys((topo.number(CiId(i)) for i in ids), ImpactState.DOWN))
    nodes = radius.nodes  # nearest first
    states = radius.states
    hops = sum(len(path) for path in radius.paths(nodes[:PAGE].tolist()))
    counts = np.bincount(states, minlength=4)
    return Answer(
        radius.affected,  # the check compares sets: no sort in the timed answer
        {
            "reached": int(radius.count),
            "down": int(counts[3]),
            "degraded": int(counts[2]),
            "at_risk": int(counts[1]),
            "path hops": hops,
        },
    )


def reach_ids(index: ImpactIndex, result: Answer) -> set[str]:
    """The CI ids of an answer, in the numbering of the snapshot that computed it."""
    ids = index.topology.ids
    return {str(ids[n]) for n in result.reached.tolist()}


@dataclass(frozen=True, slots=True)
class ServingRun:
    """The serving policy's first requests after a change: their times (ms), the first
    answer, whether every check held, and what the note says."""

    times: list[float]
    first: Answer
    ok: bool
    note: str
    proxies: dict[str, int | float | str]


@dataclass(eq=False)
class OursOnNeo4j:
    """The peer over one open store; ``marker`` is the no-failure relationship toggled to
    move the generation; ``resident`` is the replica's resident index (serving policy)."""

    store: Store
    marker: Relationship
    max_staleness: float = SERVING_STALENESS.total_seconds()
    resident: ResidentIndex = field(init=False)
    _marked: bool = field(default=False, init=False)
    _ctx: WriteContext = field(
        default_factory=lambda: WriteContext(actor="benchmarks", source="cold-run"), init=False
    )

    def __post_init__(self) -> None:
        self.resident = ResidentIndex(self.store, max_staleness=self.max_staleness)

    def sync(self) -> ImpactIndex:
        """The resident index, synchronised with the store (built if the generation moved)."""
        return self.resident.get(max_staleness=FRESH).index

    def warm(self, ids: Sequence[str]) -> Answer:
        snapshot = self.resident.get()
        result = answer(snapshot.index, ids)
        if not snapshot.fresh:  # nothing writes during warm runs: a stale one is a bug
            raise RuntimeError(f"warm answer from a snapshot behind the store: {snapshot}")
        return result

    def change(self) -> str:
        """A structural change that carries no failure; returns the new generation."""
        before = self.generation()
        if self._marked:
            self.store.delete_relationships([self.marker.key], self._ctx)
        else:
            self.store.upsert_relationships([self.marker], self._ctx)
        self._marked = not self._marked
        after = self.generation()
        if after == before:
            raise RuntimeError(
                f"toggling {self.marker.key} left the store's generation at {before}: "
                "a first request after it would find the snapshot in sync"
            )
        return after

    def cold(self, ids: Sequence[str], runs: int) -> tuple[list[float], Answer]:
        """``runs`` synchronous resyncs (first requests after a change demanding a fresh
        answer), in milliseconds, and the first answer."""
        times: list[float] = []
        first: Answer | None = None
        for _ in range(runs):
            self.sync()
            self.change()
            start = time.perf_counter()
            snapshot = self.resident.get(max_staleness=FRESH)
            result = answer(snapshot.index, ids)
            times.append((time.perf_counter() - start) * 1000)
            if not snapshot.fresh:
                raise RuntimeError(f"a synchronous resync answered from behind: {snapshot}")
            first = first or result
        assert first is not None
        return times, first

    def serving(self, ids: Sequence[str], expected: set[str], runs: int) -> ServingRun:
        """``runs`` first requests after a change under the serving policy (answer from the
        previous snapshot, refresh in the background), each checked as the module says."""
        times: list[float] = []
        refresh_s: list[float] = []
        behind_ms: list[float] = []
        problems: list[str] = []
        first: Answer | None = None
        for _ in range(runs):
            before = self.sync().generation
            after = self.change()
            start = time.perf_counter()
            snapshot = self.resident.get()
            result = answer(snapshot.index, ids)
            times.append((time.perf_counter() - start) * 1000)
            first = first or result
            problems += _claims(snapshot, result, before, after, expected)
            behind_ms.append(snapshot.behind.total_seconds() * 1000)
            if not self.resident.wait_idle(REFRESH_WAIT_S):
                problems.append(f"the background refresh was not done after {REFRESH_WAIT_S} s")
                break
            refresh_s.append(time.perf_counter() - start)
            following = self.resident.get()
            next_result = answer(following.index, ids)
            if not following.fresh or following.generation != after:
                problems.append(
                    f"after the refresh the answer used {following.generation} "
                    f"(fresh {following.fresh}), not the store's {after}"
                )
            elif reach_ids(following.index, next_result) != expected:
                problems.append("after the refresh the answer differs from the reference")
        assert first is not None
        done = (
            f"background refresh done {np.median(refresh_s):.2f} s after the request, next "
            "answer fresh and equal to the reference"
            if refresh_s and not problems
            else ""
        )
        note = "; ".join(problems) or (
            "answered from the previous snapshot (flagged behind, its reach set checked), " + done
        )
        return ServingRun(
            times,
            first,
            not problems,
            note,
            {
                **first.proxies,
                "behind ms (bound)": round(float(np.median(behind_ms)), 1),
                "refresh s": round(float(np.median(refresh_s)), 2) if refresh_s else "n/a",
            },
        )

    def generation(self) -> str:
        current = getattr(self.store, "generation", None)
        value = current() if callable(current) else None
        return str(value) if value is not None else self.store.topology().generation

    def restore(self) -> None:
        """Leave the store as loaded (the marker removed) and stop the background thread."""
        if self._marked:
            self.store.delete_relationships([self.marker.key], self._ctx)
            self._marked = False
        self.resident.close()

    def freshness(self) -> str:
        """How fresh the resident index is, for the report."""
        snapshot = self.resident.get()
        age = (utcnow() - snapshot.as_of).total_seconds()
        state = "equal to" if snapshot.fresh else "BEHIND"
        return (
            f"index of generation {snapshot.generation} (snapshot as_of "
            f"{snapshot.as_of.isoformat(timespec='seconds')}, {age:.0f} s old, {state} the "
            "store's current generation, which every request re-reads; the serving policy "
            f"answers from a snapshot at most {self.max_staleness:.0f} s behind and refreshes "
            "it in one background thread)"
        )


def _claims(
    snapshot: Snapshot, result: Answer, before: str, after: str, expected: set[str]
) -> list[str]:
    """What is wrong with a first answer after a change under the serving policy."""
    problems = []
    if snapshot.fresh:
        problems.append("the first request after the change claims to be fresh")
    if snapshot.generation != before:
        problems.append(f"answered from {snapshot.generation}, not the previous {before}")
    if snapshot.store_generation != after:
        problems.append(f"says the store is at {snapshot.store_generation}, not {after}")
    if reach_ids(snapshot.index, result) != expected:
        problems.append("the answer differs from the claimed snapshot's reference")
    return problems
