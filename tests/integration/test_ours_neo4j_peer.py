"""The benchmark's ``ours (neo4j)`` peer (``benchmarks.ours_neo4j``) on both stores: the warm
answer, the synchronous resync and the serving policy's first request after a change each
give the reference's reach set, and the serving policy's checks hold. No timing asserts."""

from __future__ import annotations

import pytest

from benchmarks.ours_neo4j import OursOnNeo4j, reach_ids
from graph.model import CiId, ConfigurationItem, Relationship, WriteContext
from graph.store import Store

CTX = WriteContext(actor="tests", source="ours-neo4j")


def ci(ci_id: str, cls: str = "application") -> ConfigurationItem:
    return ConfigurationItem.model_validate({"id": ci_id, "class": cls, "name": ci_id})


def rel(source: str, type_: str, target: str) -> Relationship:
    return Relationship(source=CiId(source), type=type_, target=CiId(target))


@pytest.fixture
def ours(store: Store):
    """web -> app -> db (DEPENDS_ON), a team that OWNS nothing yet: the marker toggles
    ``team -OWNS-> app``, which carries no failure."""
    store.upsert_cis([ci("web"), ci("app"), ci("db", "database"), ci("team", "group")], CTX)
    store.upsert_relationships(
        [rel("web", "DEPENDS_ON", "app"), rel("app", "DEPENDS_ON", "db")], CTX
    )
    peer = OursOnNeo4j(store, rel("team", "OWNS", "app"))
    peer.sync()
    yield peer
    peer.restore()


EXPECTED = {"db", "app", "web"}


def test_warm_answer_is_fresh_and_right(ours: OursOnNeo4j) -> None:
    result = ours.warm(["db"])
    assert reach_ids(ours.sync(), result) == EXPECTED
    assert result.proxies["reached"] == 3
    assert result.proxies["path hops"] == 1 + 2 + 3  # db, app -> db, web -> app -> db


def test_synchronous_resync_answers_from_the_new_generation(ours: OursOnNeo4j) -> None:
    before = ours.sync().generation
    times, first = ours.cold(["db"], 2)
    assert len(times) == 2
    snapshot = ours.resident.get()
    assert snapshot.fresh and snapshot.generation != before
    assert reach_ids(snapshot.index, first) == EXPECTED


def test_serving_policy_answers_from_the_previous_snapshot_then_refreshes(
    ours: OursOnNeo4j,
) -> None:
    run = ours.serving(["db"], EXPECTED, 2)
    assert run.ok, run.note
    assert len(run.times) == 2
    assert "answered from the previous snapshot" in run.note
    assert "background refresh done" in run.note
    assert run.proxies["reached"] == 3
    assert isinstance(run.proxies["refresh s"], float)
    assert ours.resident.get().fresh


def test_serving_policy_reports_a_wrong_reference(ours: OursOnNeo4j) -> None:
    run = ours.serving(["db"], {"db"}, 1)
    assert not run.ok
    assert "differs from the claimed snapshot's reference" in run.note


def test_watched_answer_is_right_and_says_how_old_its_check_was(ours: OursOnNeo4j) -> None:
    with ours.watching():
        first = ours.watched(["db"])
        second = ours.watched(["db"])
    assert reach_ids(ours.sync(), first) == reach_ids(ours.sync(), second) == EXPECTED
    note = ours.watch_note()
    assert "less than 500 ms ago" in note and "of these 2 answers" in note
    oldest_ms = float(note.split("the oldest check reused was ")[1].split(" ms")[0])
    assert 0 <= oldest_ms <= 500  # reused checks stay within recheck
    assert ours.resident._watch_every is None  # the background check stops with the row
