"""The resident impact index of a long-running process, and how fresh its answers are.

A :class:`ResidentIndex` holds the :class:`~impact.index.ImpactIndex` of one store's topology
snapshot. Every request reads the store's current generation (one cheap round trip) and
compares it with the snapshot's:

* **in sync**: the answer uses the snapshot, which is then known to match the store as of the
  request's start (``Snapshot.fresh``).
* **behind**, within ``max_staleness``: the serving policy. The answer uses the snapshot and
  says so (``Snapshot.behind_since``); one background thread re-reads the topology and builds
  the next index, which replaces the snapshot atomically when ready. Concurrent requests share
  that one refresh.
* **behind** for longer than ``max_staleness`` (or no snapshot yet): the request waits for a
  refresh that began recently enough (the one in flight when it qualifies, else one it runs
  itself), so no answer ever uses a snapshot beyond the bound. ``max_staleness=0`` is the
  synchronous policy of one-shot runs (the CLI) and of callers demanding a fresh answer.

What "behind since" means: the snapshot was last *known* to match the store at
``behind_since`` (when it was built, or a later request found the generations equal); the
first write it misses committed after that moment. So ``checked_at - behind_since`` bounds how
far behind an answer can be, and the bound is enforced on that figure, never on a guess. A
replica that saw no request for a while therefore waits for the refresh on its first request
after a write (unless it :meth:`ResidentIndex.watch` es the generation in the background).

Several API replicas each hold their own resident index: nothing here is shared between
processes, and the only coordination is the generation stored in the database. Calls are
thread-safe; async code awaits :meth:`ResidentIndex.aget`, which runs the blocking check in a
worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, NamedTuple, Protocol, cast

from graph.errors import ConfigurationError
from graph.model import Registry, utcnow
from graph.store import Topology
from impact.index import ImpactIndex, build_index

FRESH: Final = timedelta(0)  # the synchronous policy: never answer from a snapshot behind
SERVING_STALENESS: Final = timedelta(seconds=30)  # the API replicas' default bound


class IndexSource(Protocol):
    """What a resident index reads: both stores are one. ``generation()`` (optional: without
    it, ``topology()`` is called, which reads the generation and reuses its own cache) is the
    cheap check; ``topology()`` the full read; ``statuses_since(topology)`` (optional) the
    read of the status column alone, when nothing else changed."""

    registry: Registry

    def topology(self) -> Topology: ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The index one answer uses, and what is known of its freshness.

    ``store_generation`` is the store's generation as read for this answer (``None``: the
    store reported none, e.g. its database was emptied), read at ``checked_at``.
    ``behind_since`` is ``None`` when the snapshot matched it; otherwise the last moment the
    snapshot was known to match the store (the first write it misses came later).
    """

    index: ImpactIndex
    store_generation: str | None
    checked_at: datetime
    behind_since: datetime | None = None

    @property
    def generation(self) -> str:
        return self.index.generation

    @property
    def as_of(self) -> datetime:
        return self.index.topology.as_of

    @property
    def fresh(self) -> bool:
        return self.behind_since is None

    @property
    def behind(self) -> timedelta:
        """At most how far behind the store this answer can be (zero when fresh)."""
        if self.behind_since is None:
            return FRESH
        return self.checked_at - self.behind_since


class _Moment(NamedTuple):
    """A point in this process's order of events: ``seq`` orders checks and rebuilds exactly
    (clocks tie), ``at`` is the wall time the staleness bound is measured in. A named tuple:
    one is made per request, at half a frozen dataclass's cost."""

    seq: int
    at: datetime


class _Held:
    """The current snapshot and the last moment it was known to match the store."""

    __slots__ = ("index", "reused", "verified")

    def __init__(self, index: ImpactIndex, verified: _Moment) -> None:
        self.index = index
        self.verified = verified
        self.reused: Snapshot | None = None  # what requests reusing ``verified`` are given

    def reuse(self) -> Snapshot:
        """The snapshot of a request reusing the last check: one per check, not per request
        (a Snapshot is immutable; making one is a third of a reused request's cost)."""
        reused, at = self.reused, self.verified.at
        if reused is None or reused.checked_at is not at:
            reused = self.reused = Snapshot(self.index, self.index.generation, at)
        return reused


def _as_bound(value: timedelta | float) -> timedelta:
    bound = value if isinstance(value, timedelta) else timedelta(seconds=value)
    if bound < FRESH:
        raise ConfigurationError(
            f"max_staleness must be zero (always fresh) or positive, not {bound}"
        )
    return bound


class ResidentIndex:
    """The impact index of one store, kept in step with it. See the module docstring.

    ``max_staleness`` (a timedelta or seconds): how long an answer may use a snapshot after
    the store was last known to match it; ``0`` rebuilds synchronously whenever the store
    moved. ``recheck`` (default 0: every request checks): a request within ``recheck`` of
    the last check that found the snapshot in sync reuses it instead of a round trip (its
    ``checked_at`` says when that was); with :meth:`watch` it takes the generation round trip
    off the request path (a call may pass its own ``recheck``). ``clock`` is for tests.
    """

    def __init__(
        self,
        store: IndexSource,
        *,
        max_staleness: timedelta | float = SERVING_STALENESS,
        recheck: timedelta | float = FRESH,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.max_staleness = _as_bound(max_staleness)
        self.recheck = _as_bound(recheck)
        if self.recheck > self.max_staleness:
            raise ConfigurationError(
                f"recheck ({self.recheck}) must not exceed max_staleness ({self.max_staleness}): "
                "an answer reusing a check would be older than the bound allows"
            )
        self._clock = clock
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._held: _Held | None = None
        self._seen_behind: _Held | None = None  # the snapshot a check last found behind
        self._building: _Moment | None = None  # when the rebuild in flight began
        self._failure: tuple[_Moment, Exception] | None = None  # the last rebuild's error
        self._failures = 0  # rebuilds failed so far
        self._wanted = False  # the worker should refresh
        self._worker: threading.Thread | None = None
        self._watch_every: float | None = None
        self._closed = False
        self.rebuilds = 0  # indexes built (a rebuild that found the same topology not counted)
        self.status_updates = 0  # held indexes brought up to date with new statuses only

    # -- answers -----------------------------------------------------------------------------
    def get(
        self,
        *,
        max_staleness: timedelta | float | None = None,
        recheck: timedelta | float | None = None,
    ) -> Snapshot:
        """The index to answer from now, and its freshness; ``max_staleness`` and
        ``recheck`` override the bound and the reuse of a recent check for this call
        (``max_staleness=0``: demand a fresh answer, which never reuses a check)."""
        bound = self.max_staleness if max_staleness is None else _as_bound(max_staleness)
        at = self._clock()
        reused = self._reused(at, bound, recheck)
        if reused is not None:
            return reused
        # numbered once it needs a check of its own, before the round trip
        return self._settle(self._read_generation(), self._now(at), bound)

    async def aget(
        self,
        *,
        max_staleness: timedelta | float | None = None,
        recheck: timedelta | float | None = None,
    ) -> Snapshot:
        """:meth:`get` from async code: the store round trip (and a rebuild, if the request
        has to wait for one) runs in a worker thread, never on the event loop."""
        return await asyncio.to_thread(self.get, max_staleness=max_staleness, recheck=recheck)

    def peek(self) -> ImpactIndex | None:
        """The current snapshot's index, without asking the store."""
        with self._lock:
            return self._held.index if self._held is not None else None

    # -- refreshing --------------------------------------------------------------------------
    def refresh(self) -> None:
        """Start a background refresh unless one is in flight."""
        with self._lock:
            self._want_refresh()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no refresh is wanted or in flight; False on timeout (tests, benchmarks)."""
        with self._lock:
            return self._changed.wait_for(
                lambda: self._building is None and not self._wanted, timeout
            )

    def watch(self, every: float | None) -> None:
        """Also check the generation every ``every`` seconds in the background thread, so a
        quiet replica keeps its snapshot verified and refreshes before the next request;
        ``None`` stops these checks (refreshes still run)."""
        if every is not None and every <= 0:
            raise ConfigurationError(f"watch every must be positive (or None), not {every}")
        with self._lock:
            self._watch_every = every
            self._ensure_worker()
            self._changed.notify_all()

    def close(self) -> None:
        """Stop the background thread (after the refresh in flight, if any)."""
        with self._lock:
            self._closed = True
            worker = self._worker
            self._changed.notify_all()
        if worker is not None and worker is not threading.current_thread():
            worker.join()

    # -- internals ---------------------------------------------------------------------------
    def _reused(
        self, asked: datetime, bound: timedelta, recheck: timedelta | float | None
    ) -> Snapshot | None:
        """The snapshot, when a check that found it in sync is recent enough to reuse
        (``recheck``, this call's or the default) for a request made at ``asked`` with this
        bound; else None. A recheck over the bound is not used: the check would be too old."""
        within = self.recheck if recheck is None else _as_bound(recheck)
        if not FRESH < within <= bound:
            return None
        with self._lock:
            held = self._held
            if (
                held is not None
                and held is not self._seen_behind
                and held.verified.at >= asked - within
            ):
                # in sync at a check this recent: no round trip (at most recheck behind)
                return held.reuse()
        return None

    def _settle(self, current: str | None, asked: _Moment, bound: timedelta) -> Snapshot:
        """The snapshot for a request ``asked`` with this bound, the store's generation
        having been read as ``current`` after ``asked``: the one held if in sync or behind
        within the bound (then refreshed in the background), else a rebuilt one."""
        with self._lock:
            held = self._held
            if held is not None and held.index.generation == current:
                if held.verified.seq < asked.seq:
                    held.verified = asked
                return Snapshot(held.index, current, asked.at)
            self._seen_behind = held  # known behind: no more reusing an earlier check
            if held is not None and bound > FRESH and held.verified.at >= asked.at - bound:
                self._want_refresh()
                return Snapshot(held.index, current, asked.at, held.verified.at)
        # No snapshot, or behind for too long: an index the store matched recently enough.
        held = self._rebuilt(current, asked, bound)
        if held.index.generation == current:
            return Snapshot(held.index, current, max(asked.at, held.verified.at))
        if held.verified.seq > asked.seq:
            # built after this request began: as fresh as a synchronous read can be
            return Snapshot(held.index, held.index.generation, held.verified.at)
        self.refresh()  # a refresh in flight qualified, but the store has moved on since
        return Snapshot(held.index, current, asked.at, held.verified.at)

    def _read_generation(self) -> str | None:
        read = getattr(self.store, "generation", None)
        if callable(read):
            value = read()
            return None if value is None else str(value)
        return self.store.topology().generation

    def _want_refresh(self) -> None:
        """With the lock held: have the background thread refresh, unless one is running."""
        if self._building is not None or self._wanted or self._closed:
            return
        self._wanted = True
        self._ensure_worker()
        self._changed.notify_all()

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(
                target=self._work, name=f"resident-index-{id(self):x}", daemon=True
            )
            self._worker.start()

    def _work(self) -> None:
        """The one background thread: refreshes when asked, checks when watching."""
        next_check = time.monotonic()
        while True:
            with self._lock:
                while not self._wanted and not self._closed:
                    every = self._watch_every
                    wait = None if every is None else next_check - time.monotonic()
                    if wait is not None and wait <= 0:
                        break
                    self._changed.wait(wait)
                if self._closed:
                    self._wanted = False
                    self._changed.notify_all()
                    return
                wanted, self._wanted = self._wanted, False
                if wanted and self._building is not None:
                    # a request is rebuilding in its own thread: that is the refresh
                    self._changed.notify_all()
                    continue
                if wanted:
                    self._building = self._now()
            # a failure is kept in _failure for the requests to see; this thread goes on
            with contextlib.suppress(Exception):
                if wanted:
                    self._build()
                elif self._watch_every is not None:
                    next_check = time.monotonic() + self._watch_every
                    # a round trip every time (never a reuse of the last check, which
                    # recheck would allow): verifies the snapshot, or asks for the refresh
                    asked = self._now()  # before the round trip: what "verified" means
                    self._settle(self._read_generation(), asked, self.max_staleness)

    def _now(self, at: datetime | None = None) -> _Moment:
        """The next moment, at ``at`` (a clock reading taken for it) or now."""
        return _Moment(next(self._seq), self._clock() if at is None else at)

    @staticmethod
    def _recent(moment: _Moment, asked: _Moment, bound: timedelta) -> bool:
        """``moment`` is late enough for a request ``asked`` with this bound: after the
        request began, or (bound > 0) at most ``bound`` before."""
        return moment.seq > asked.seq or (bound > FRESH and moment.at >= asked.at - bound)

    def _rebuilt(self, current: str | None, asked: _Moment, bound: timedelta) -> _Held:
        """A snapshot matching ``current``, or known to match the store recently enough for
        the request: the one a rebuild in flight produces if it qualifies, else one built in
        this thread. Concurrent callers share one rebuild."""
        with self._lock:
            failures = self._failures
            while True:
                held = self._held
                if held is not None and (
                    held.index.generation == current or self._recent(held.verified, asked, bound)
                ):
                    return held
                failure = self._failure
                if (
                    self._failures != failures
                    and failure is not None
                    and self._recent(failure[0], asked, bound)
                ):
                    raise failure[1]  # the rebuild this request waited for failed
                if self._building is None:
                    self._building = self._now()
                    break
                self._changed.wait()
        return self._build()

    def _statuses_only(self, previous: _Held | None) -> ImpactIndex | None:
        """The held index brought up to date when only CI statuses changed in the store
        (which no part of an index depends on): its arrays shared with the new statuses,
        instead of a whole read and build. None when the store cannot tell, or more changed."""
        since = getattr(self.store, "statuses_since", None)
        if previous is None or not callable(since):
            return None
        old = previous.index
        topology = since(old.topology)
        if topology is None:
            return None
        return old if topology is old.topology else old.with_topology(topology)

    def _build(self) -> _Held:
        """Bring the snapshot up to date (``_building`` set by the caller): new statuses on
        the held index when only statuses changed, else read the topology and build its
        index; swap it in under the lock."""
        with self._lock:
            since = self._building
            previous = self._held
        assert since is not None
        try:
            index = self._statuses_only(previous)
            updated = index is not None and previous is not None and index is not previous.index
            if index is None:
                topology = self.store.topology()
                if previous is not None and previous.index.topology is topology:
                    index = previous.index  # the store's cached snapshot: nothing to rebuild
                else:
                    index = build_index(topology, self.store.registry)
        except Exception as exc:
            with self._lock:
                self._building = None
                self._failure = (since, exc)
                self._failures += 1
                self._changed.notify_all()
            raise
        with self._lock:
            if updated:
                self.status_updates += 1
            elif previous is None or index is not previous.index:
                self.rebuilds += 1
            self._held = _Held(index, since)  # the swap: requests see the old or the new
            self._building = None
            self._failure = None
            self._changed.notify_all()
        return self._held


# --------------------------------------------------------------------------------------------
# The synchronous resident index of each store (one-shot runs, and index_for)

_residents: weakref.WeakKeyDictionary[object, ResidentIndex] = weakref.WeakKeyDictionary()
_residents_lock = threading.Lock()


def resident_for(store: IndexSource) -> ResidentIndex:
    """The process's synchronous (``max_staleness=0``) resident index of ``store``: what
    :func:`impact.index.index_for` and the analysis functions use when not handed one."""
    with _residents_lock:
        found = _residents.get(store)
        if found is None:
            # a weak proxy: the cache must not keep the store alive through its own value
            proxy = cast(IndexSource, weakref.proxy(store))
            found = ResidentIndex(proxy, max_staleness=FRESH)
            _residents[store] = found
        return found


__all__ = ["FRESH", "SERVING_STALENESS", "IndexSource", "ResidentIndex", "Snapshot", "resident_for"]
