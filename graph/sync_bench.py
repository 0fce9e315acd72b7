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
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

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


# Runs the command and prints its peak RSS (KiB on Linux) and exit code. A child's ru_maxrss
# starts at the peak of the process it was forked from: Linux keeps the larger of the two
# across exec, and Python starts children with vfork, which shares the parent's memory
# until exec. Measured straight from a big parent (``make bench`` after loading 1M CIs),
# the figure is the parent's peak, not the import's. This launcher is a fresh, small
# interpreter, so the command it starts inherits a peak of a few MiB at most.
_LAUNCHER: Final = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def measure_cli_import(argv: Sequence[str], *, env: dict[str, str] | None = None) -> ProcessFigures:
    """Run ``cmdb <argv>`` (``python -m api.cli``) in a child process and report its wall
    time and peak resident memory (``wait4``'s ``ru_maxrss``, taken by a small launcher
    process so that the caller's own memory does not count; Linux counts KiB)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:  # only its end is kept: it may be large
        launcher = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "api.cli", *argv],
            stdout=subprocess.PIPE,
            stderr=errors,
            env={**os.environ, **(env or {})},
            check=False,
        )
        seconds = time.perf_counter() - started
        errors.seek(max(errors.tell() - 2000, 0))
        stderr = errors.read().decode(errors="replace")
    try:
        maxrss, returncode = (int(word) for word in launcher.stdout.split())
    except ValueError:
        maxrss, returncode = 0, launcher.returncode or 1
    scale = 1 if sys.platform == "darwin" else 1024
    return ProcessFigures(
        seconds=seconds,
        peak_rss_bytes=maxrss * scale,
        returncode=returncode,
        stderr=stderr[-2000:],
    )
