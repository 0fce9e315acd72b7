"""Our impact answer served from a Neo4j store: the ``ours (neo4j)`` peer.

The service answers impact questions from a resident index
(:class:`impact.resident.ResidentIndex`) built from the store's
:meth:`~graph.neo4j_store.Neo4jStore.topology` snapshot; every request reads the store's
generation first (one round trip). Four figures, all honest:

* **warm** (:meth:`OursOnNeo4j.warm`): what a long-running API replica serves while in sync,
  checking the store on every request: the generation round trip (equal: the snapshot and
  index are reused), ``propagate``, and the explanations of the answer's first page (states
  and distances of every affected CI, nearest first, and the explanation path of the first
  ``PAGE`` of them). Each answer is in sync with the store as of its own start.
* **warm, generation watched** (:meth:`OursOnNeo4j.watched`, inside
  :meth:`OursOnNeo4j.watching`): the same answer from a replica whose background thread
  checks the generation every ``WATCH_EVERY`` (:meth:`ResidentIndex.watch`) and whose
  requests reuse a check that found the snapshot in sync less than ``WATCH_RECHECK`` ago
  (``recheck``): no round trip on the request path. Each answer is in sync as of that check
  (its ``checked_at``), so it may miss writes committed less than ``WATCH_RECHECK`` before
  it; the note gives the oldest check an answer actually reused.
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
* **after a status change, synchronous** (:meth:`OursOnNeo4j.cold_status`): the marker's
  source CI changes status (operational / maintenance, in turn; untimed), as monitoring
  writes during an incident; the timed request demands a fresh answer, and the resident
  index reads the status column alone (``Store.statuses_since``) instead of the topology.

Freshness: the index is the snapshot of generation ``Topology.generation`` taken at
``Topology.as_of``; each answer's :class:`~impact.resident.Snapshot` says whether the store had
moved on when it was checked, and since when at most.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import ClassVar, NamedTuple

import numpy as np

from graph.model import CiId, Relationship, Status, WriteContext, utcnow
from graph.store import Store
from impact.index import I32, ImpactIndex
from impact.propagation import ImpactState, propagate
from impact.resident import FRESH, SERVING_STALENESS, ResidentIndex, Snapshot

PAGE = 100  # explanation paths built per answer: the API's first page
REFRESH_WAIT_S = 600.0  # a background refresh not done by then is reported as failed
WATCH_EVERY = 0.25  # seconds between the background generation checks of the watched row
WATCH_RECHECK = timedelta(milliseconds=500)  # how old a check a watched answer may reuse


class Answer(NamedTuple):  # a named tuple: made per answer, cheaper than a frozen dataclass
    reached: I32  # node numbers of the answering snapshot's topology, in the order they failed
    proxies: dict[str, int | float | str]


# the states as constants: an enum member read through its class costs ~0.1 µs
_AT_RISK, _DEGRADED, _DOWN = ImpactState.AT_RISK, ImpactState.DEGRADED, ImpactState.DOWN


def answer(index: ImpactIndex, ids: Sequence[str]) -> Answer:
    """Propagate from ``ids`` (down) and build the explanations a first page shows."""
    number = index.topology.number
    radius = propagate(index, dict.fromkeys([number(CiId(i)) for i in ids], _DOWN))
    nodes = radius.nodes  # nearest first
    hops = sum(map(len, radius.paths(nodes[:PAGE].tolist())))
    counts = radius.counts
    return Answer(
        radius.affected,  # the check compares sets: no sort in the timed answer
        {
            "reached": radius.count,
            "down": counts[_DOWN],
            "degraded": counts[_DEGRADED],
            "at_risk": counts[_AT_RISK],
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

    RECHECK_MS: ClassVar[float] = WATCH_RECHECK.total_seconds() * 1000  # for the row's name

    store: Store
    marker: Relationship
    max_staleness: float = SERVING_STALENESS.total_seconds()
    resident: ResidentIndex = field(init=False)
    _marked: bool = field(default=False, init=False)
    _restatused: bool = field(default=False, init=False)  # the marker's source status moved
    _oldest_reuse: timedelta = field(default=timedelta(0), init=False)
    _watched: int = field(default=0, init=False)
    _own_checks: int = field(default=0, init=False)  # watched answers that found no recent check
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

    @contextmanager
    def watching(self) -> Iterator[None]:
        """The background generation check running (every ``WATCH_EVERY``), for
        :meth:`watched`; stopped on exit, so that it never runs during the other rows."""
        self._oldest_reuse, self._watched, self._own_checks = timedelta(0), 0, 0
        self.resident.watch(WATCH_EVERY)
        try:
            yield
        finally:
            self.resident.watch(None)

    def watched(self, ids: Sequence[str]) -> Answer:
        """A warm answer reusing the background check (at most ``WATCH_RECHECK`` old)."""
        asked = utcnow()
        snapshot = self.resident.get(recheck=WATCH_RECHECK)
        result = answer(snapshot.index, ids)
        if not snapshot.fresh:  # nothing writes during warm runs: a stale one is a bug
            raise RuntimeError(f"watched answer from a snapshot behind the store: {snapshot}")
        if snapshot.checked_at >= asked:
            self._own_checks += 1  # no check recent enough: this request made its own
        else:  # how far behind the store this answer may be, when it is ready
            self._oldest_reuse = max(self._oldest_reuse, utcnow() - snapshot.checked_at)
        self._watched += 1
        return result

    def watch_note(self) -> str:
        """The freshness of the watched answers so far, for the row's note."""
        return (
            f"no round trip on the request: the background thread checks the generation "
            f"every {WATCH_EVERY * 1000:.0f} ms and an answer reuses a check that found the "
            f"snapshot in sync less than {WATCH_RECHECK.total_seconds() * 1000:.0f} ms ago "
            f"(recheck; its checked_at says when), else makes its own; of these "
            f"{self._watched} answers {self._own_checks} made their own; the oldest check "
            f"reused was {self._oldest_reuse.total_seconds() * 1000:.0f} ms old when the "
            "answer was ready: writes committed since may be missing"
        )

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

    def status_change(self) -> None:
        """A change of one CI's status only (the marker's source, in the micro-graphs)."""
        before = self.generation()
        ci = self.store.get_ci(self.marker.source)
        if ci is None:
            raise RuntimeError(f"{self.marker.source} is not in the store")
        status = Status.MAINTENANCE if ci.status is Status.OPERATIONAL else Status.OPERATIONAL
        self.store.upsert_cis([ci.model_copy(update={"status": status})], self._ctx)
        self._restatused = not self._restatused
        if self.generation() == before:
            raise RuntimeError(f"a new status of {ci.id} left the generation at {before}")

    def cold_status(self, ids: Sequence[str], runs: int) -> tuple[list[float], Answer, int]:
        """``runs`` first requests after a status change demanding a fresh answer, in
        milliseconds, the first answer, and how many of them read the statuses alone."""
        updates = self.resident.status_updates
        times, first = self._fresh_after(self.status_change, ids, runs)
        return times, first, self.resident.status_updates - updates

    def cold(self, ids: Sequence[str], runs: int) -> tuple[list[float], Answer]:
        """``runs`` synchronous resyncs (first requests after a change demanding a fresh
        answer), in milliseconds, and the first answer."""
        return self._fresh_after(self.change, ids, runs)

    def _fresh_after(
        self, change: Callable[[], object], ids: Sequence[str], runs: int
    ) -> tuple[list[float], Answer]:
        """``runs`` times: in sync, ``change`` (untimed), then a timed request demanding a
        fresh answer; the times (ms) and the first answer."""
        times: list[float] = []
        first: Answer | None = None
        for _ in range(runs):
            self.sync()
            change()
            start = time.perf_counter()
            snapshot = self.resident.get(max_staleness=FRESH)
            result = answer(snapshot.index, ids)
            times.append((time.perf_counter() - start) * 1000)
            if not snapshot.fresh:
                raise RuntimeError(
                    f"a fresh request after a change answered from behind: {snapshot}"
                )
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
        if self._restatused:
            self.status_change()  # back to the status it was loaded with
        self.resident.close()

    def freshness(self) -> str:
        """How fresh the resident index is, for the report."""
        snapshot = self.resident.get()
        age = (utcnow() - snapshot.as_of).total_seconds()
        state = "equal to" if snapshot.fresh else "BEHIND"
        return (
            f"index of generation {snapshot.generation} (snapshot as_of "
            f"{snapshot.as_of.isoformat(timespec='seconds')}, {age:.0f} s old, {state} the "
            "store's current generation, which every warm request re-reads (the watched row: "
            f"a background check at most {WATCH_RECHECK.total_seconds() * 1000:.0f} ms old); "
            f"the serving policy answers from a snapshot at most {self.max_staleness:.0f} s "
            "behind and refreshes it in one background thread)"
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
