"""The import engine plans a streamed inventory in bounded memory (issue 5: a 1M-CI CSV in
under 1 GB RSS). What a run remembers per item between chunks (the keys seen and the CI each
resolved to, the CIs claimed, the relationships seen, the source's earlier records) lives in
Python dicts up to ``graph.sync_plan.IN_MEMORY_ENTRIES`` entries, and in the run's scratch
database past it. Measured with tracemalloc, never a clock: on disk, planning 4x the items
must not take anywhere near 4x the memory; in memory, an entry costs what the limit's
documentation says, and crossing the limit gives the memory back."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from graph import sync_plan
from graph.model import CiId, ConfigurationItem, SourceRecord
from graph.sqlite_store import SqliteStore
from graph.sync import run_import
from importers.base import Inventory, ParsedCi, ParsedRelationship
from tests.unit.test_sync_helpers import T0

SOURCE = "mem"
CHUNK = 250
SMALL = 500  # CIs, and as many relationships


def inventory(n: int) -> Iterator[Inventory]:
    """``n`` CIs then ``n`` relationships, made chunk by chunk (the input is never whole)."""
    chunk = Inventory()
    for i in range(n):
        ci = ConfigurationItem.model_validate(
            {
                "id": f"h{i}",
                "class": "server",
                "name": f"h{i}",
                "owner": f"team-{i % 50}",
                "attributes": {"serial_number": f"SN-{i:08d}", "rack": f"r{i % 400}"},
            }
        )
        chunk.cis.append(ParsedCi(ci, f"cis.csv:{i + 2}"))
        if len(chunk.cis) == CHUNK:
            yield chunk
            chunk = Inventory()
    for i in range(n):
        chunk.relationships.append(
            ParsedRelationship(f"h{i}", "DEPENDS_ON", f"h{(i + 1) % n}", f"rels.csv:{i + 2}")
        )
        if len(chunk.relationships) == CHUNK:
            yield chunk
            chunk = Inventory()
    if chunk.cis or chunk.relationships:
        yield chunk


def earlier_records(n: int) -> list[SourceRecord]:
    """The records an earlier run of the source left (stale digests: every item is planned)."""
    common = {"source": SOURCE, "digest": "earlier", "last_run": "r0", "last_seen": T0}
    cis = [SourceRecord(kind="ci", key=f"h{i}", ci=CiId(f"h{i}"), **common) for i in range(n)]
    rels = [
        SourceRecord(
            kind="relationship", key=f"h{i}|DEPENDS_ON|h{(i + 1) % n}", ci=CiId(f"h{i}"), **common
        )
        for i in range(n)
    ]
    return cis + rels


def _held() -> int:
    """Traced memory still reachable (cyclic garbage collected first)."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def planning_memory(tmp_path: Path, n: int) -> tuple[int, list[int]]:
    """A dry run over ``n`` CIs + ``n`` relationships whose source reported them all before:
    the peak traced memory, and the memory still held after each chunk was planned."""
    store = SqliteStore(tmp_path / f"store-{n}")
    held: list[int] = []
    try:
        store.put_source_records(earlier_records(n))
        gc.collect()  # what other tests left for the collector is not this run's
        tracemalloc.start()
        try:
            report = run_import(
                store,
                inventory(n),
                source=SOURCE,
                format="csv",
                dry_run=True,
                now=T0,
                progress=lambda _: held.append(_held()),
            )
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    finally:
        store.close()
    assert report.ok, report.messages()
    assert (report.cis.created, report.relationships.created) == (n, n)
    assert n % CHUNK or len(held) == 2 * n // CHUNK  # one sample per chunk
    return peak, held


def test_planning_memory_does_not_grow_with_the_inventory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_plan, "IN_MEMORY_ENTRIES", 0)  # the state on disk throughout
    planning_memory(tmp_path, 50)  # warm-up: lazy imports and caches are not the run's
    small, _ = planning_memory(tmp_path, SMALL)
    big, held = planning_memory(tmp_path, 4 * SMALL)
    # The peak: the old engine held the source's records (a SourceRecord each) and its run
    # state in Python, ~1.3 KB per item here; on disk only the chunk (and bounded caches)
    # count.
    per_item = (big - small) / (2 * 3 * SMALL)
    assert per_item < 300, (
        f"planning 4x the items took {big / 2**20:.2f} MiB vs {small / 2**20:.2f} MiB: "
        f"{per_item:.0f} bytes per extra item"
    )
    # What a run holds between chunks: compare chunks of one kind once the report's lists
    # are full (MAX_LISTED); a dict or set of keys would add ~100 bytes per item here.
    chunks = 4 * SMALL // CHUNK
    for kind, first, last in (("CI", chunks // 2, chunks - 1), ("rel", -(chunks // 2), -1)):
        grown = (held[last] - held[first]) / ((chunks // 2 - 1) * CHUNK)
        assert grown < 25, f"{grown:.0f} bytes held per {kind} item between chunks"


def test_below_the_limit_the_state_is_in_memory_and_past_it_goes_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 4 * SMALL
    chunks = n // CHUNK
    # Entries: 2n records from the start, then two per CI (its key, the CI claimed), then
    # one per relationship: 5n in all.
    entries = 5 * n
    planning_memory(tmp_path / "warm-up", 50)
    monkeypatch.setattr(sync_plan, "IN_MEMORY_ENTRIES", 0)
    _, on_disk = planning_memory(tmp_path / "disk", n)
    monkeypatch.setattr(sync_plan, "IN_MEMORY_ENTRIES", entries)
    _, in_memory = planning_memory(tmp_path / "memory", n)
    # In memory: every CI chunk adds its keys (~60 bytes an entry: the strings are the
    # chunk's), and the whole state costs ~100 bytes an entry, within IN_MEMORY_ENTRIES's
    # ~100-150.
    grown = (in_memory[chunks - 1] - in_memory[0]) / ((chunks - 1) * CHUNK * 2)
    assert 30 < grown < 150, f"{grown:.0f} bytes held per CI entry in memory"
    per_entry = (in_memory[-1] - on_disk[-1]) / entries
    assert 50 < per_entry < 150, f"{per_entry:.0f} bytes per entry in memory"
    # Past the limit, mid-run (2n records + 2 x 5 chunks of CIs > 3n + 200): the state goes
    # to disk, memory drops back to the on-disk run's, then stays flat.
    monkeypatch.setattr(sync_plan, "IN_MEMORY_ENTRIES", 3 * n + 200)
    _, spilled = planning_memory(tmp_path / "spilled", n)
    assert spilled[3] > on_disk[3] + 200 * 2**10  # the first chunks: in memory
    assert spilled[4] < spilled[3] - 200 * 2**10  # the fifth chunk spilled
    assert spilled[-1] < on_disk[-1] + 64 * 2**10
    grown = (spilled[-1] - spilled[-(chunks // 2)]) / ((chunks // 2 - 1) * CHUNK)
    assert grown < 25, f"{grown:.0f} bytes held per relationship once spilled"
