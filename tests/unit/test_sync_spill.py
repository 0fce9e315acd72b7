"""The import planner keeps a run's state in dicts up to ``graph.sync_plan.IN_MEMORY_ENTRIES``
entries and in its scratch database beyond (issue 5: a fast unchanged re-import, bounded
memory at a million items). Where the state lives must never change what a run does: the
same runs, streamed in small chunks, give the same reports, store and source records
whether the state stays in memory, starts on disk, or moves there at any point of a run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from graph import sync_plan
from graph.model import CiId, ConfigurationItem
from graph.sqlite_store import SqliteStore
from graph.sync import run_import
from graph.sync_plan import Planner, RunOptions
from graph.sync_rules import DEFAULT_RULES
from importers.base import Inventory, ParsedCi, ParsedRelationship
from tests.unit.test_sync_helpers import T0, state

SOURCE = "sheet"
OTHER = "discovery"
CHUNK = 7


def _ci(i: int, *, rack: str = "r1", serial: str | None = None) -> ParsedCi:
    attributes = {"rack": rack, "serial_number": serial or f"SN{i}"}
    ci = ConfigurationItem.model_validate(
        {"id": f"k{i}", "class": "server", "name": f"host-{i}", "attributes": attributes}
    )
    return ParsedCi(ci, f"cis.csv:{i + 2}")


def _rel(source: str, target: str, line: int, **attributes: Any) -> ParsedRelationship:
    return ParsedRelationship(source, "DEPENDS_ON", target, f"rels.csv:{line}", attributes)


def _chunks(cis: list[ParsedCi], rels: list[ParsedRelationship]) -> Iterator[Inventory]:
    """CIs first, then relationships, ``CHUNK`` items at a time (as ``iter_csv_chunks``)."""
    items: list[ParsedCi | ParsedRelationship] = [*cis, *rels]
    for start in range(0, len(items), CHUNK):
        chunk = Inventory()
        for item in items[start : start + CHUNK]:
            if isinstance(item, ParsedCi):
                chunk.cis.append(item)
            else:
                chunk.relationships.append(item)
        yield chunk


def _runs() -> list[tuple[str, list[ParsedCi], list[ParsedRelationship]]]:
    """Four runs of the source: a first load (relationships to a name, to nothing, a
    self-loop); the same again; one that drops, changes and adds items (one merging into
    another source's CI); the same, past the grace period."""
    first_cis = [_ci(i) for i in range(30)]
    first_rels = [_rel(f"k{i}", f"k{(i * 7 + 3) % 30}", i + 2) for i in range(30)]
    first_rels += [_rel("k1", "host-2", 40), _rel("k2", "ghost", 41), _rel("k3", "k3", 42)]
    third_cis = [_ci(i, rack="r2" if i % 5 == 0 else "r1") for i in range(30) if i % 4]
    third_cis += [_ci(i) for i in range(30, 36)]
    # k33 says the serial number of a CI another source reported first: they merge.
    third_cis[-3] = _ci(33, serial="SN-OTHER")
    third_rels = [r for n, r in enumerate(first_rels) if n % 3] + [
        _rel("k31", "k32", 50, weight=2),
        _rel("k1", "k5", 51, note="new"),
    ]
    return [
        ("first", first_cis, first_rels),
        ("again", first_cis, first_rels),
        ("changed", third_cis, third_rels),
        ("past the grace period", third_cis, third_rels),
    ]


def _comparable(report: Any) -> dict[str, Any]:
    out = dict(report.as_json())
    for volatile in ("run_id", "started_at", "finished_at"):
        out.pop(volatile, None)
    return out


def _history(tmp_path: Path, limit: int) -> list[Any]:
    """Each run's report, then the store and the source's records (without times and ids)."""
    store = SqliteStore(tmp_path / f"store-{limit}")
    outcome: list[Any] = []
    try:
        other = ConfigurationItem.model_validate(
            {
                "id": "d-1",
                "class": "server",
                "name": "d-1",
                "attributes": {"serial_number": "SN-OTHER"},
            }
        )
        run_import(store, Inventory(cis=[ParsedCi(other, "d.csv:2")]), source=OTHER, format="csv")
        for day, (name, cis, rels) in enumerate(_runs()):
            report = run_import(
                store,
                _chunks(cis, rels),
                source=SOURCE,
                format="csv",
                now=T0 + timedelta(days=10 * day),
                grace=timedelta(days=5),
                allow_deletes=100,
            )
            outcome.append((name, _comparable(report)))
        outcome.append(state(store))
        outcome.append(
            sorted(
                (r.kind, r.key, r.ci, r.digest, r.absent_since is None)
                for r in store.source_records(SOURCE)
            )
        )
    finally:
        store.close()
    return outcome


def test_where_the_state_lives_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _history(tmp_path, sync_plan.IN_MEMORY_ENTRIES)
    # The runs did what they are for: placeholders, merges, changes, absence, removals.
    reports = dict(expected[:4])
    assert reports["first"]["placeholders"] == 1
    assert reports["again"]["unchanged"] == 30 + 32
    changed = reports["changed"]
    assert (changed["cis"]["created"], changed["cis"]["updated"]) == (5, 5)
    assert "d-1" in [u["item"] for u in changed["items"]["updated"]]
    assert (changed["cis"]["absent"], changed["relationships"]["absent"]) == (3, 11)
    assert (
        reports["past the grace period"]["retired"],
        reports["past the grace period"]["deleted"],
    ) == (3, 11)
    # 0: on disk from the start; 1-150: the limit is crossed while the source's records
    # load, or at the end of one chunk or another, in one run or another.
    for limit in (0, 1, 20, 45, 70, 100, 150):
        monkeypatch.setattr(sync_plan, "IN_MEMORY_ENTRIES", limit)
        assert _history(tmp_path, limit) == expected, f"IN_MEMORY_ENTRIES = {limit}"


def _planner(store: SqliteStore) -> Planner:
    return Planner(
        store, source=SOURCE, run_id="r", now=T0, options=RunOptions(rules=DEFAULT_RULES)
    )


def test_the_state_moves_to_disk_once_past_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "store")
    try:
        _, cis, rels = _runs()[0]
        monkeypatch.setattr(sync_plan, "IN_MEMORY_ENTRIES", 40)
        planner = _planner(store)
        try:
            spilled = []
            for chunk in _chunks(cis, rels):
                planner.plan_chunk(chunk)
                spilled.append(planner.spilled)
            # 30 CIs (a key and a claimed CI each) make 60 entries: past 40 from the 3rd
            # chunk (21 CIs, 42 entries) on, and never back.
            assert spilled == [False, False, True, True, True, True, True, True, True]
            assert planner.run_keys.get("k4") == CiId("k4")  # still answers, from disk
            assert "k29" in planner.run_claimed and "k30" not in planner.run_claimed
        finally:
            planner.close()
        run_import(store, _chunks(cis, rels), source=SOURCE, format="csv", now=T0)
        # A source with more records than the limit starts its next run on disk; one with
        # fewer, in memory.
        for limit, on_disk in ((62, True), (63, False)):  # 31 CIs (a placeholder) + 32 rels
            monkeypatch.setattr(sync_plan, "IN_MEMORY_ENTRIES", limit)
            planner = _planner(store)
            try:
                assert planner.source_size == 63
                assert planner.spilled is on_disk
                assert planner.records.get(1, "k1|DEPENDS_ON|k10") is not None  # either way
            finally:
                planner.close()
    finally:
        store.close()
