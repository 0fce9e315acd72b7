"""Properties of the import engine (hypothesis, embedded store):

- importing twice equals importing once (same store, no history, no writes);
- the order in which disjoint sources are imported does not matter;
- a truncated input (a partial run, or a file cut mid-way that fails to parse) retires and
  marks absent nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph import sync_plan
from graph.errors import ValidationError
from graph.model import RunStatus, Status
from graph.sqlite_store import SqliteStore
from graph.sync import run_import
from importers.base import Inventory, ParsedCi, SourceFile
from importers.generic import format_csv, parse_csv
from tests.unit.test_sync_helpers import T0, ci, full_state, inv, rel, state

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CLASSES = ("server", "virtual_machine", "application", "database")
TYPES = ("DEPENDS_ON", "RUNS_ON", "USES")


@contextmanager
def fresh_store() -> Iterator[SqliteStore]:
    where = Path(tempfile.mkdtemp(prefix="cmdb-prop-"))
    store = SqliteStore(where)
    try:
        yield store
    finally:
        store.close()
        shutil.rmtree(where, ignore_errors=True)


@st.composite
def inventories(draw, prefix: str = "", max_cis: int = 12) -> Inventory:
    """A valid inventory: unique keys, maybe shared names and serial numbers, relationships by
    key, by name, or to nothing (placeholders), self-loops and repeats included."""
    count = draw(st.integers(min_value=0, max_value=max_cis))
    cis = []
    for i in range(count):
        fields = {}
        if draw(st.booleans()):
            fields["owner"] = draw(st.sampled_from(["ops", "dev", "dba"]))
        if draw(st.booleans()):
            fields["criticality"] = draw(st.integers(min_value=1, max_value=4))
        attributes = {}
        if draw(st.booleans()):
            attributes["serial_number"] = f"{prefix}SN{draw(st.integers(0, 5))}"
        if draw(st.booleans()):
            attributes["rack"] = draw(st.sampled_from(["r1", "r2", "r3"]))
        name = f"{prefix}n{draw(st.integers(0, max_cis))}"
        cis.append(
            ci(
                f"{prefix}k{i}",
                draw(st.sampled_from(CLASSES)),
                name,
                attributes=attributes,
                **fields,
            )
        )
    refs = [p.ci.id for p in cis] + [p.ci.name for p in cis] + [f"{prefix}ghost"]
    rels = []
    if cis:
        for _ in range(draw(st.integers(min_value=0, max_value=max_cis))):
            rels.append(
                rel(
                    draw(st.sampled_from(refs)),
                    draw(st.sampled_from(refs)),
                    draw(st.sampled_from(TYPES)),
                )
            )
    return inv(*cis, *rels)


# The planner's state in memory, in its scratch database from the start, or moving there
# mid-run (graph.sync_plan.IN_MEMORY_ENTRIES).
LIMITS = st.sampled_from([sync_plan.IN_MEMORY_ENTRIES, 0, 1, 5, 20])


@SETTINGS
@given(data=inventories(), limit=LIMITS)
def test_importing_twice_equals_importing_once(data: Inventory, limit: int):
    with fresh_store() as store, mock.patch.object(sync_plan, "IN_MEMORY_ENTRIES", limit):
        first = run_import(store, data, source="src", format="yaml", now=T0)
        assert first.status == RunStatus.SUCCEEDED
        once = full_state(store)
        second = run_import(store, data, source="src", format="yaml", now=T0 + timedelta(1))
        assert full_state(store) == once
        assert store.history(run_id=second.run_id) == []
        counts = second.counts()
        assert counts["created"] == counts["updated"] == counts["absent"] == 0
        assert counts["retired"] == counts["deleted"] == 0


@SETTINGS
@given(a=inventories(prefix="a-"), b=inventories(prefix="b-"))
def test_the_order_of_disjoint_sources_does_not_matter(a: Inventory, b: Inventory):
    with fresh_store() as ab, fresh_store() as ba:
        run_import(ab, a, source="a", format="yaml", now=T0)
        run_import(ab, b, source="b", format="yaml", now=T0)
        run_import(ba, b, source="b", format="yaml", now=T0)
        run_import(ba, a, source="a", format="yaml", now=T0)
        assert state(ab) == state(ba)


def _kept(items: list[ParsedCi], keep: list[bool]) -> list[ParsedCi]:
    return [item for item, k in zip(items, keep, strict=False) if k]


@SETTINGS
@given(
    data=inventories(max_cis=15),
    keep=st.lists(st.booleans(), min_size=15, max_size=15),
    limit=LIMITS,
)
def test_a_partial_run_retires_nothing(data: Inventory, keep: list[bool], limit: int):
    with fresh_store() as store, mock.patch.object(sync_plan, "IN_MEMORY_ENTRIES", limit):
        run_import(store, data, source="src", format="yaml", now=T0)
        before = state(store)
        truncated = Inventory(cis=_kept(data.cis, keep), complete=False)
        report = run_import(
            store,
            truncated,
            source="src",
            format="yaml",
            now=T0 + timedelta(days=30),
            grace=timedelta(0),
            allow_deletes=1000,
        )
        assert report.status == RunStatus.PARTIAL
        assert report.counts()["absent"] == report.counts()["retired"] == 0
        assert report.counts()["deleted"] == 0
        assert all(r.absent_since is None for r in store.source_records("src"))
        after = state(store)
        assert after["relationships"] == before["relationships"]
        assert after["cis"].keys() == before["cis"].keys()
        assert all(c["status"] != Status.RETIRED for c in after["cis"].values())


@SETTINGS
@given(data=inventories(max_cis=10), cut=st.floats(min_value=0.05, max_value=0.95))
def test_a_csv_file_cut_mid_way_writes_nothing(data: Inventory, cut: float):
    cis = [p.ci for p in data.cis]
    if not cis:
        return
    ci_text, _ = format_csv(cis, [])
    with fresh_store() as store:
        run_import(
            store,
            parse_csv([SourceFile(name="cis.csv", data=ci_text.encode())]),
            source="src",
            format="csv",
            now=T0,
        )
        before = full_state(store)
        raw = ci_text.encode()
        cut_at = max(1, int(len(raw) * cut))
        if raw[:cut_at].endswith(b"\n"):
            cut_at -= 1  # a cut exactly at a line end is a shorter, valid file
        try:
            truncated = parse_csv([SourceFile(name="cis.csv", data=raw[:cut_at])])
        except ValidationError:
            assert full_state(store) == before  # nothing to import, nothing written
            return
        # The cut left valid rows only (a cut in the last cell of a row is still a row): the
        # run then treats the rest as absent, which the grace period and the guard protect.
        report = run_import(
            store, truncated, source="src", format="csv", now=T0 + timedelta(days=1)
        )
        assert report.counts()["retired"] == 0


def test_strategies_make_interesting_inventories():
    # A guard against a strategy that silently stopped producing relationships or CIs.
    example = inventories().example()
    assert isinstance(example, Inventory)


pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
