"""Import engine figures for ``make bench`` (``benchmarks``): first load vs an unchanged
re-import, and the peak memory of a streamed CSV import in its own process.

The engine knows no file format (``graph`` sits below ``importers``), so callers hand in a
function that reads the inventory (``importers.generic.iter_csv_chunks`` over the files from
``importers.generic.write_synthetic_csv``), or a ``cmdb import`` command line to run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from graph.store import Store
from graph.sync import run_import
from graph.sync_plan import IncomingInventory
from graph.sync_report import RunReport


@dataclass(frozen=True, slots=True)
class ImportTimings:
    cis: int
    relationships: int
    first_s: float
    reimport_s: float
    first: RunReport
    reimport: RunReport

    @property
    def speedup(self) -> float:
        """How much faster the unchanged re-import was (the target is at least 3x)."""
        return self.first_s / self.reimport_s if self.reimport_s else float("inf")

    @property
    def items_per_s(self) -> float:
        return (self.cis + self.relationships) / self.first_s if self.first_s else 0.0

    def as_json(self) -> dict[str, float | int]:
        return {
            "cis": self.cis,
            "relationships": self.relationships,
            "first_load_s": round(self.first_s, 3),
            "unchanged_reimport_s": round(self.reimport_s, 3),
            "reimport_speedup": round(self.speedup, 2),
            "first_load_items_per_s": round(self.items_per_s),
        }


def measure_import(
    store: Store,
    read: Callable[[], IncomingInventory | Iterable[IncomingInventory]],
    *,
    source: str = "bench",
    format: str = "csv",
) -> ImportTimings:
    """Import ``read()`` into an empty ``store`` twice; time both (parsing included)."""
    started = time.perf_counter()
    first = run_import(store, read(), source=source, format=format)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    again = run_import(store, read(), source=source, format=format)
    reimport_s = time.perf_counter() - started
    if again.counts()["created"] or again.counts()["updated"]:
        raise AssertionError(f"an unchanged re-import changed something: {again.counts()}")
    return ImportTimings(
        cis=first.cis.created,
        relationships=first.relationships.created,
        first_s=first_s,
        reimport_s=reimport_s,
        first=first,
        reimport=again,
    )


@dataclass(frozen=True, slots=True)
class ProcessFigures:
    seconds: float
    peak_rss_bytes: int
    returncode: int
    stderr: str


def measure_cli_import(argv: Sequence[str], *, env: dict[str, str] | None = None) -> ProcessFigures:
    """Run ``cmdb <argv>`` (``python -m api.cli``) in a child process and report its wall
    time and peak resident memory (``wait4``'s ``ru_maxrss``; Linux counts KiB)."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "api.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    assert child.stderr is not None
    stderr = child.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    scale = 1 if sys.platform == "darwin" else 1024
    return ProcessFigures(
        seconds=time.perf_counter() - started,
        peak_rss_bytes=int(usage.ru_maxrss) * scale,
        returncode=child.returncode,
        stderr=stderr[-2000:],
    )
