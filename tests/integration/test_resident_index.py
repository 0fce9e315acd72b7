"""The resident impact index on both stores: freshness, the staleness bound, one rebuild for
many callers, the atomic swap, the async accessor (``impact.resident``).

Runs once on the embedded store and once on Neo4j (``neo4j`` marker, the root ``store``
fixture). No wall-time asserts: a fake clock drives the bound, and a gate held in the
store's ``topology()`` holds a rebuild in flight for as long as a test needs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from graph.errors import StoreError
from graph.model import CiId, ConfigurationItem, Registry, Relationship, WriteContext
from graph.store import Store, Topology
from impact.analysis import ImpactOptions, analyse_impact, common_causes
from impact.index import index_for
from impact.propagation import ImpactState, propagate
from impact.resident import FRESH, ResidentIndex, Snapshot, resident_for

CTX = WriteContext(actor="tests", source="resident")
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WAIT = 60.0  # seconds a test waits for a thread before calling it stuck (never reached)


def ci(ci_id: str, cls: str = "application") -> ConfigurationItem:
    return ConfigurationItem.model_validate({"id": ci_id, "class": cls, "name": ci_id})


def rel(source: str, type_: str, target: str) -> Relationship:
    return Relationship(source=CiId(source), type=type_, target=CiId(target))


@pytest.fixture
def shop(store: Store) -> Store:
    """web -> app -> db, and a spare CI a test can connect."""
    store.upsert_cis([ci("web"), ci("app"), ci("db", "database"), ci("cache", "database")], CTX)
    store.upsert_relationships(
        [rel("web", "DEPENDS_ON", "app"), rel("app", "DEPENDS_ON", "db")], CTX
    )
    return store


def connect_cache(store: Store) -> None:
    """A structural write: app now also depends on the cache."""
    store.upsert_relationships([rel("app", "DEPENDS_ON", "cache")], CTX)


def reached(snapshot: Snapshot, failed: str) -> set[str]:
    topo = snapshot.index.topology
    radius = propagate(snapshot.index, {topo.number(CiId(failed)): ImpactState.DOWN})
    return {topo.ids[int(n)] for n in radius.nodes}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Gated:
    """The store as a resident index reads it, with a gate in ``topology()``: a closed gate
    holds the rebuild in flight; ``calls`` counts the full reads."""

    def __init__(self, store: Store) -> None:
        self.inner = store
        self.registry: Registry = store.registry
        self.calls = 0
        self.entered = threading.Event()
        self.open = threading.Event()
        self.open.set()
        self.fail: Exception | None = None
        self._lock = threading.Lock()

    def generation(self) -> str | None:
        return self.inner.generation()  # type: ignore[attr-defined, no-any-return]

    def topology(self) -> Topology:
        with self._lock:
            self.calls += 1
        self.entered.set()
        assert self.open.wait(WAIT), "the test never opened the gate"
        if self.fail is not None:
            raise self.fail
        return self.inner.topology()

    def close_gate(self) -> None:
        self.entered.clear()
        self.open.clear()


@pytest.fixture
def gated(shop: Store) -> Gated:
    return Gated(shop)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def resident(source: Gated, clock: Clock, max_staleness: float = 30.0) -> ResidentIndex:
    return ResidentIndex(source, max_staleness=max_staleness, clock=clock)


# -- in sync -------------------------------------------------------------------------------


def test_in_sync_answers_are_fresh_and_reuse_the_index(gated: Gated, clock: Clock) -> None:
    r = resident(gated, clock)
    first = r.get()
    clock.advance(5)
    second = r.get()
    assert first.fresh and second.fresh
    assert second.index is first.index
    assert second.store_generation == second.generation == gated.generation()
    assert second.checked_at == T0 + timedelta(seconds=5)
    assert second.behind == FRESH
    assert gated.calls == 1 and r.rebuilds == 1
    assert reached(second, "db") == {"db", "app", "web"}
    r.close()


# -- the serving policy ------------------------------------------------------------------------


def test_behind_answers_from_the_snapshot_then_refreshes_in_the_background(
    gated: Gated, clock: Clock
) -> None:
    r = resident(gated, clock)
    before = r.get()
    clock.advance(10)
    connect_cache(gated.inner)
    stale = r.get()
    assert not stale.fresh
    assert stale.index is before.index  # the previous snapshot, said so
    assert stale.generation == before.generation != stale.store_generation
    assert stale.store_generation == gated.generation()
    assert stale.behind_since == T0  # last known in sync: when it was built
    assert stale.behind == timedelta(seconds=10)
    assert reached(stale, "cache") == {"cache"}  # the answer of the snapshot it claims
    assert r.wait_idle(WAIT)
    fresh = r.get()
    assert fresh.fresh and fresh.generation == stale.store_generation
    assert reached(fresh, "cache") == {"cache", "app", "web"}
    assert gated.calls == 2 and r.rebuilds == 2
    r.close()


def test_the_bound_makes_a_request_wait_for_the_refresh(gated: Gated, clock: Clock) -> None:
    r = resident(gated, clock, max_staleness=30)
    r.get()  # built, in sync at T0
    connect_cache(gated.inner)
    clock.advance(31)  # nobody asked for 31 s: the snapshot may be 31 s behind
    snap = r.get()  # so this request rebuilds synchronously instead of answering stale
    assert snap.fresh and snap.checked_at == T0 + timedelta(seconds=31)
    assert reached(snap, "cache") == {"cache", "app", "web"}
    assert gated.calls == 2
    r.close()


def test_past_the_bound_a_request_waits_for_the_refresh_in_flight(
    gated: Gated, clock: Clock
) -> None:
    r = resident(gated, clock, max_staleness=30)
    r.get()
    clock.advance(10)
    connect_cache(gated.inner)
    gated.close_gate()
    assert not r.get().fresh  # starts the background refresh at T0 + 10 s ...
    assert gated.entered.wait(WAIT)  # ... which is now held in topology()
    clock.advance(25)  # T0 + 35 s: the snapshot may be 35 s behind, over the bound
    assert not r.get(max_staleness=60).fresh  # a looser bound on one request still serves it
    got: list[Snapshot] = []
    waiter = threading.Thread(target=lambda: got.append(r.get()))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive(), "answered from a snapshot past the bound"
    gated.open.set()
    waiter.join(WAIT)
    assert got and got[0].fresh
    assert reached(got[0], "cache") == {"cache", "app", "web"}
    assert gated.calls == 2  # the waiter used the refresh in flight, it did not start one
    r.close()


def test_zero_staleness_demands_a_fresh_answer(gated: Gated, clock: Clock) -> None:
    r = resident(gated, clock, max_staleness=30)
    r.get()
    clock.advance(1)
    connect_cache(gated.inner)
    snap = r.get(max_staleness=FRESH)
    assert snap.fresh and reached(snap, "cache") == {"cache", "app", "web"}
    r.close()


def test_bad_bounds_are_refused(gated: Gated) -> None:
    from graph.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="max_staleness"):
        ResidentIndex(gated, max_staleness=-1)


# -- one rebuild, atomic swap ------------------------------------------------------------------


@pytest.mark.parametrize("bound", [0.0, 30.0], ids=["synchronous", "serving"])
def test_concurrent_callers_share_one_rebuild(gated: Gated, clock: Clock, bound: float) -> None:
    r = resident(gated, clock, max_staleness=bound)
    r.get()
    clock.advance(1)
    connect_cache(gated.inner)
    gated.close_gate()
    results: list[Snapshot] = []
    lock = threading.Lock()

    def call() -> None:
        snap = r.get()
        with lock:
            results.append(snap)

    callers = [threading.Thread(target=call) for _ in range(8)]
    for t in callers:
        t.start()
    assert gated.entered.wait(WAIT)
    gated.open.set()
    for t in callers:
        t.join(WAIT)
    assert r.wait_idle(WAIT)
    assert len(results) == 8
    assert gated.calls == 2 and r.rebuilds == 2  # the initial build and ONE rebuild
    if bound == 0:
        assert all(s.fresh for s in results)
        assert len({id(s.index) for s in results}) == 1
    assert r.get().fresh
    r.close()


def test_the_swap_is_atomic_and_old_answers_stay_whole(gated: Gated, clock: Clock) -> None:
    r = resident(gated, clock)
    old = r.get()
    old_index = old.index
    clock.advance(1)
    connect_cache(gated.inner)
    gated.close_gate()
    r.refresh()
    assert gated.entered.wait(WAIT)
    # while the next index is being built, requests see the whole previous one
    assert r.peek() is old_index
    assert r.get().index is old_index
    gated.open.set()
    assert r.wait_idle(WAIT)
    new = r.peek()
    assert new is not None and new is not old_index
    assert new.generation != old_index.generation
    # an answer still holding the old snapshot keeps computing on it, unchanged
    assert reached(old, "cache") == {"cache"}
    assert old.index.generation == old.generation
    r.close()


def test_a_failed_refresh_is_served_around_within_the_bound_then_raised(
    gated: Gated, clock: Clock
) -> None:
    r = resident(gated, clock, max_staleness=30)
    r.get()
    clock.advance(1)
    connect_cache(gated.inner)
    gated.fail = StoreError("Neo4j is unavailable")
    assert not r.get().fresh  # the background refresh fails ...
    assert r.wait_idle(WAIT)
    assert not r.get().fresh  # ... the snapshot is still within the bound
    clock.advance(40)
    with pytest.raises(StoreError, match="unavailable"):
        r.get()
    gated.fail = None
    assert r.get().fresh
    r.close()


def test_watch_keeps_a_quiet_replica_verified_and_refreshed(gated: Gated) -> None:
    r = ResidentIndex(gated, max_staleness=30)
    r.get()
    connect_cache(gated.inner)
    r.watch(0.01)
    for _ in range(int(WAIT / 0.01)):
        if r.rebuilds == 2:
            break
        threading.Event().wait(0.01)
    assert r.rebuilds == 2  # refreshed with no request asking
    assert r.get().fresh
    r.close()


# -- async -------------------------------------------------------------------------------------


def test_async_accessor_does_not_block_the_event_loop(gated: Gated, clock: Clock) -> None:
    r = resident(gated, clock, max_staleness=0)

    async def scenario() -> Snapshot:
        await r.aget()
        connect_cache(gated.inner)
        gated.close_gate()
        task = asyncio.create_task(r.aget())
        # the rebuild is held in topology(); the loop still runs other work meanwhile
        assert await asyncio.to_thread(gated.entered.wait, WAIT)
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0)
            ticks += 1
        assert ticks == 5 and not task.done()
        gated.open.set()
        return await task

    snap = asyncio.run(scenario())
    assert snap.fresh and reached(snap, "cache") == {"cache", "app", "web"}
    r.close()


# -- the answers and the synchronous default -------------------------------------------------


def test_answers_carry_their_freshness(shop: Store, clock: Clock) -> None:
    r = ResidentIndex(shop, max_staleness=30, clock=clock)
    report = analyse_impact(shop, {CiId("db"): ImpactState.DOWN}, resident=r)
    f = report.freshness
    assert f.fresh and f.current_generation == f.generation and f.behind_since is None
    clock.advance(3)
    connect_cache(shop)
    report = analyse_impact(shop, {CiId("cache"): ImpactState.DOWN}, resident=r)
    f = report.freshness
    assert not f.fresh and f.behind_since == T0 and f.behind_seconds == 3.0
    assert f.current_generation != f.generation
    assert report.counts.affected == 0  # the previous snapshot's answer: cache had no users
    data = report.as_json()["freshness"]
    assert {"generation", "as_of", "store"} <= set(data)  # the fields it always had
    assert data["fresh"] is False and data["behind_seconds"] == 3.0
    assert data["current_generation"] == f.current_generation
    assert data["behind_since"] == T0.isoformat()
    demanded = analyse_impact(
        shop,
        {CiId("cache"): ImpactState.DOWN},
        ImpactOptions(max_staleness=timedelta(0)),
        resident=r,
    )
    assert demanded.freshness.fresh and demanded.counts.affected == 2
    causes = common_causes(shop, {"a": [CiId("web")], "b": [CiId("app")]}, resident=r)
    causes_freshness = causes.as_json()["freshness"]
    assert causes.freshness.fresh
    assert isinstance(causes_freshness, dict) and causes_freshness["fresh"] is True
    r.close()


def test_the_default_is_synchronous_and_shared_with_index_for(shop: Store) -> None:
    report = analyse_impact(shop, {CiId("db"): ImpactState.DOWN})
    assert report.freshness.fresh
    index = index_for(shop)
    assert index is resident_for(shop).peek() is index_for(shop)
    connect_cache(shop)
    report = analyse_impact(shop, {CiId("cache"): ImpactState.DOWN})
    assert report.freshness.fresh and report.counts.affected == 2
    assert index_for(shop) is not index


def test_recheck_reuses_a_recent_check_without_a_round_trip(gated: Gated, clock: Clock) -> None:
    r = ResidentIndex(gated, max_staleness=30, recheck=1, clock=clock)
    first = r.get()
    connect_cache(gated.inner)
    clock.advance(0.5)
    reused = r.get()  # no round trip: in sync at the check 0.5 s ago, at most that behind
    assert reused.index is first.index and reused.fresh and reused.checked_at == T0
    clock.advance(1)
    checked = r.get()  # the check is older than recheck: a round trip finds the store moved
    assert not checked.fresh and checked.behind == timedelta(seconds=1.5)
    fresh = r.get(max_staleness=FRESH)
    assert fresh.fresh and fresh.checked_at == T0 + timedelta(seconds=1.5)
    assert r.get().index is fresh.index  # and a recent check is reused again
    r.close()


def test_requests_reusing_one_check_share_its_snapshot(gated: Gated, clock: Clock) -> None:
    r = ResidentIndex(gated, max_staleness=30, recheck=1, clock=clock)
    r.get()
    clock.advance(0.2)
    first = r.get()
    clock.advance(0.2)
    assert r.get() is first and first.fresh and first.checked_at == T0  # one per check
    clock.advance(1)
    checked = r.get()  # past recheck: a round trip, which finds the store in sync
    assert checked.fresh and checked.checked_at == T0 + timedelta(seconds=1.4)
    clock.advance(0.2)
    reused = r.get()  # reuses that later check, not the first one's snapshot
    assert reused is not first and reused.checked_at == checked.checked_at and reused.fresh
    r.close()


def test_recheck_never_hides_a_check_that_found_the_snapshot_behind(
    gated: Gated, clock: Clock
) -> None:
    r = ResidentIndex(gated, max_staleness=30, recheck=1, clock=clock)
    r.get()
    connect_cache(gated.inner)
    gated.close_gate()  # the refresh this starts stays in flight
    clock.advance(0.5)
    assert not r.get(max_staleness=0.5).fresh  # a tighter bound checks, and finds it behind
    assert not r.get().fresh  # so a request within recheck no longer reuses the old check
    gated.open.set()
    assert r.wait_idle(WAIT)
    assert r.get().fresh
    r.close()


def test_recheck_over_the_bound_is_refused(gated: Gated) -> None:
    from graph.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="recheck"):
        ResidentIndex(gated, max_staleness=1, recheck=2)


def test_a_failure_the_stale_snapshot_does_not_know_waits_for_a_fresh_one(
    shop: Store, clock: Clock
) -> None:
    r = ResidentIndex(shop, max_staleness=30, clock=clock)
    analyse_impact(shop, {CiId("db"): ImpactState.DOWN}, resident=r)
    shop.upsert_cis([ci("new-api")], CTX)
    shop.upsert_relationships([rel("web", "DEPENDS_ON", "new-api")], CTX)
    clock.advance(1)
    report = analyse_impact(shop, {CiId("new-api"): ImpactState.DOWN}, resident=r)
    assert report.freshness.fresh and report.counts.affected == 1
    r.close()


# -- recheck and watch --------------------------------------------------------------------------


class Counting(Gated):
    """Counts the generation round trips (``checks``)."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.checks = 0

    def generation(self) -> str | None:
        self.checks += 1
        return super().generation()


@pytest.fixture
def counting(shop: Store) -> Counting:
    return Counting(shop)


def wait_for(condition: Callable[[], bool]) -> bool:
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return True
        threading.Event().wait(0.01)
    return condition()


def test_watch_checks_every_time_even_within_recheck(counting: Counting) -> None:
    clock = Clock()  # frozen: every check is "recent", so reusing one would never end
    r = ResidentIndex(counting, max_staleness=30, recheck=30, clock=clock)
    r.get()
    checks = counting.checks
    r.watch(0.01)
    assert wait_for(lambda: counting.checks >= checks + 3)  # the watcher asks each time
    r.close()


def test_a_call_may_reuse_a_recent_check_and_watching_can_stop(
    counting: Counting, clock: Clock
) -> None:
    r = ResidentIndex(counting, max_staleness=30, clock=clock)  # checks by default
    built = r.get()
    checks = counting.checks
    clock.advance(0.2)
    assert r.get().checked_at == T0 + timedelta(seconds=0.2)  # its own round trip
    assert counting.checks == checks + 1
    clock.advance(0.2)
    reused = r.get(recheck=0.5)  # this call accepts the check 0.2 s ago
    assert counting.checks == checks + 1
    assert reused.fresh and reused.index is built.index
    assert reused.checked_at == T0 + timedelta(seconds=0.2)
    assert r.get(recheck=0.5, max_staleness=FRESH).checked_at == T0 + timedelta(seconds=0.4)
    assert counting.checks == checks + 2  # a fresh answer never reuses a check
    r.watch(0.01)
    assert wait_for(lambda: counting.checks >= checks + 4)
    r.watch(None)
    threading.Event().wait(0.1)  # a check already started may still land
    stopped = counting.checks
    threading.Event().wait(0.2)
    assert counting.checks == stopped  # no more background round trips
    r.close()


# -- status-only changes ----------------------------------------------------------------------


def test_a_status_change_updates_the_held_index_without_a_rebuild(shop: Store) -> None:
    """Statuses change often during an incident and no part of an index depends on them:
    the held index takes the new statuses, its arrays shared; a structural change still
    rebuilds. Answers use the current statuses (a CI already down counts in quorums)."""
    from graph.model import RedundancyGroup, Status
    from graph.store import STATUS_ORDER

    pair = RedundancyGroup(name="vms", members=(CiId("vm1"), CiId("vm2")))
    app = ConfigurationItem.model_validate(
        {"id": "app", "class": "application", "name": "app", "redundancy": [pair.model_dump()]}
    )
    shop.upsert_cis([app, ci("vm1", "virtual_machine"), ci("vm2", "virtual_machine")], CTX)
    shop.upsert_relationships([rel("app", "RUNS_ON", "vm1"), rel("app", "RUNS_ON", "vm2")], CTX)
    r = ResidentIndex(shop, max_staleness=0)
    first = r.get()
    radius = propagate(first.index, {first.index.topology.number(CiId("vm2")): ImpactState.DOWN})
    assert radius.state_of(first.index.topology.number(CiId("app"))) is not ImpactState.DOWN

    vm1_down = ConfigurationItem.model_validate(
        {"id": "vm1", "class": "virtual_machine", "name": "vm1", "status": "down"}
    )
    shop.upsert_cis([vm1_down], CTX)
    second = r.get()
    assert second.fresh and second.store_generation == second.generation
    assert (r.rebuilds, r.status_updates) == (1, 1)
    assert second.index is not first.index and second.index.plain is first.index.plain
    topo = second.index.topology
    assert STATUS_ORDER[topo.statuses[topo.number(CiId("vm1"))]] is Status.DOWN
    report = analyse_impact(shop, {CiId("vm2"): ImpactState.DOWN}, resident=r)
    assert {a.id: a.state for a in report.affected.items}["app"] is ImpactState.DOWN

    connect_cache(shop)  # structural: a whole read and build
    third = r.get()
    assert (r.rebuilds, r.status_updates) == (2, 1) and third.index.plain is not first.index.plain
    assert reached(third, "cache") >= {"cache", "app", "web"}
    r.close()
