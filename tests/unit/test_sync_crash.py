"""Kill the importer at random points, run it again, and find nothing duplicated and nothing
lost: every batch commits with the source records that remember it, so a re-run finds what
the killed run wrote."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from graph.model import RunStatus
from graph.sqlite_store import SqliteStore
from importers.generic import write_synthetic_csv

ROOT = Path(__file__).resolve().parents[2]
CIS = 6_000
RELATIONSHIPS = 6_000

# Streamed, with small chunks and batches: many commit points to be killed between.
DRIVER = """
import sys
from pathlib import Path
from graph.sqlite_store import SqliteStore
from graph.sync import run_import
from importers.base import SourceFile
from importers.generic import iter_csv_chunks
store = SqliteStore(sys.argv[1])
files = [SourceFile(name=p, path=Path(p)) for p in sys.argv[2:]]
report = run_import(store, iter_csv_chunks(files, chunk_rows=700), source="crash",
                    format="csv", batch_size=300)
store.close()
sys.exit(0 if report.ok else 1)
"""


def _run(args: list[str], store_dir: Path, kill_after: float | None) -> float:
    """Run the importer; with ``kill_after``, SIGKILL it that long after its run started.
    Returns the seconds from the start of its run (or of the process, if the run was never
    seen running) to its end."""
    child = subprocess.Popen(  # our own interpreter and test driver
        [sys.executable, *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline and not _running(store_dir):
        time.sleep(0.02)
    started = time.monotonic()
    if kill_after is None:
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err.decode()[-2000:]
        return time.monotonic() - started
    time.sleep(kill_after)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=60)
    return time.monotonic() - started


def _running(store_dir: Path) -> bool:
    if not (store_dir / "cmdb.sqlite3").exists():
        return False
    store = SqliteStore(store_dir)
    try:
        return any(r.status == RunStatus.RUNNING for r in store.list_runs("crash", limit=5))
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["streamed", "cli"])
def test_killed_runs_converge_without_duplicates_or_losses(tmp_path: Path, how: str):
    ci_file, rel_file = write_synthetic_csv(tmp_path / "in", CIS, RELATIONSHIPS, seed=3)

    def command(store_dir: Path) -> list[str]:
        if how == "streamed":
            return ["-c", DRIVER, str(store_dir), str(ci_file), str(rel_file)]
        return [
            *("-m", "api.cli", "import", "csv", str(ci_file), str(rel_file)),
            *("--store", str(store_dir), "--source", "crash"),
        ]

    # Kills at random points inside a whole run, however long it takes on this machine: a
    # first run into a store of its own says how long that is.
    took = _run(command(tmp_path / "timing"), tmp_path / "timing", kill_after=None)
    store_dir = tmp_path / "store"
    args = command(store_dir)
    rng = random.Random(20261126)
    for _ in range(4):
        _run(args, store_dir, kill_after=rng.uniform(0.05, 0.6) * took)
    _run(args, store_dir, kill_after=None)

    store = SqliteStore(store_dir)
    try:
        assert store.count_cis() == CIS
        names = set()
        page_after = None
        while True:
            page = store.list_cis(first=5_000, after=page_after)
            names.update((c.ci_class, c.name) for c in page.items)
            if page.next_cursor is None:
                break
            page_after = page.next_cursor
        assert len(names) == CIS  # no CI twice under another id
        expected = set()
        for line in rel_file.read_text().splitlines()[1:]:
            source, target, type_ = line.split(",")
            expected.add((source, type_, target))
        assert {r.key for r in store.iter_relationships()} == expected
        records = store.source_records("crash")
        assert len(records) == CIS + RELATIONSHIPS
        assert all(r.absent_since is None for r in records)
        runs = store.list_runs("crash", limit=100)
        assert runs[0].status == RunStatus.SUCCEEDED
        assert all(r.status != RunStatus.RUNNING for r in runs)
        # the kills landed inside runs (the next run closed them), not before or after
        assert any("interrupted" in m for r in runs for m in r.messages)
    finally:
        store.close()
    # and one more run finds nothing to do
    _run(args, store_dir, kill_after=None)
    store = SqliteStore(store_dir)
    try:
        last = store.list_runs("crash", limit=1)[0]
        assert last.counts["created"] == last.counts["updated"] == 0
        assert store.history(run_id=last.id) == []
    finally:
        store.close()
