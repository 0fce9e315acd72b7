"""Timing, result rows and the machine line: what every benchmark group shares.

A measure is one cold run, then ``repeat`` warm runs (at least five of them whatever the
time budget; more only within it); median and p95 are over the warm runs. Wall times sit
beside deterministic proxies (rows returned, edges scanned, Neo4j db hits), which do not move
on a noisy machine.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Status(StrEnum):
    OK = "ok"
    MISMATCH = "MISMATCH"  # a different answer than the reference: its time does not count
    TIMEOUT = "timeout"
    CAPPED = "capped"  # stopped at a stated row cap: a lower bound, not comparable
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Timing:
    """Milliseconds. ``runs`` are the warm runs."""

    cold_ms: float
    runs: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs) if self.runs else self.cold_ms

    @property
    def p95_ms(self) -> float:
        if not self.runs:
            return self.cold_ms
        ordered = sorted(self.runs)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]

    def scaled(self, factor: float) -> Timing:
        """Per-operation times when one run did ``1 / factor`` operations."""
        return Timing(self.cold_ms * factor, tuple(r * factor for r in self.runs))

    def to_json(self) -> dict[str, Any]:
        return {
            "cold_ms": _round(self.cold_ms),
            "median_ms": _round(self.median_ms),
            "p95_ms": _round(self.p95_ms),
            "runs": len(self.runs),
            "runs_ms": [_round(r) for r in self.runs],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Timing:
        return cls(float(data["cold_ms"]), tuple(float(r) for r in data.get("runs_ms", ())))


def _round(ms: float) -> float:
    """Four significant digits: the noise of a shared machine is far larger."""
    return float(f"{ms:.4g}")


@dataclass(frozen=True, slots=True)
class Measured(Generic[T]):
    timing: Timing
    result: T  # what the cold run returned (answers are checked on it)
    budget_hit: bool


MIN_WARM = 5  # warm runs every measure gets, whatever its budget (median and p95 of five)
MAX_FILL_RUNS = 200  # warm runs a measure with ``fill_s`` takes at most


def measure(
    fn: Callable[[], T],
    *,
    repeat: int,
    budget_s: float = 30.0,
    warm: bool = True,
    warm_if_cold_under_s: float | None = None,
    fill_s: float = 0.0,
) -> Measured[T]:
    """One cold run, then up to ``repeat`` warm runs: at least ``MIN_WARM`` of them (or all
    ``repeat``, when fewer), more only while ``budget_s`` seconds last. No warm runs when
    ``warm`` is false, or the cold run took longer than ``warm_if_cold_under_s`` (a peer that
    slow is reported by its cold run).

    ``fill_s`` (for operations without side effects): after the ``repeat`` runs, go on while
    the warm runs took less than ``fill_s`` in all, up to ``MAX_FILL_RUNS`` runs, as
    ``timeit``'s autorange does: five runs of a few microseconds each make a median that one
    stray interrupt or cache miss moves; an operation of a second gets no extra run. A
    ``repeat`` under ``MIN_WARM`` (a smoke run asking for fewer) is not filled."""
    start = time.perf_counter()
    result = fn()
    cold = (time.perf_counter() - start) * 1000
    if warm_if_cold_under_s is not None and cold / 1000 > warm_if_cold_under_s:
        warm = False
    runs: list[float] = []
    spent = cold / 1000
    warm_s = 0.0
    if repeat < MIN_WARM:
        fill_s = 0.0
    hit = False
    k = 0
    while warm and (k < repeat or (warm_s < fill_s and k < MAX_FILL_RUNS)):
        if k >= MIN_WARM and spent > budget_s:
            hit = True
            break
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        runs.append(elapsed * 1000)
        spent += elapsed
        warm_s += elapsed
        k += 1
    return Measured(Timing(cold, tuple(runs)), result, hit)


@dataclass(slots=True)
class Row:
    """One line of a result table: ``peer`` doing ``case`` in ``group``."""

    group: str
    case: str
    peer: str
    status: Status = Status.OK
    timing: Timing | None = None
    rate: float | None = None  # throughput, with rate_unit ("CIs/s")
    rate_unit: str = ""
    proxies: dict[str, int | float | str] = field(default_factory=dict)
    note: str = ""
    baseline: bool = False  # the row others in this case are compared with
    ratio: float | None = None  # median / baseline median (filled by the report)

    def to_json(self) -> dict[str, Any]:
        """The row without its empty fields (the results file stays small)."""
        data: dict[str, Any] = {
            "group": self.group,
            "case": self.case,
            "peer": self.peer,
            "status": str(self.status),
        }
        if self.timing is not None:
            data["timing"] = self.timing.to_json()
        if self.rate is not None:
            data["rate"] = round(self.rate, 1)
            data["rate_unit"] = self.rate_unit
        if self.proxies:
            data["proxies"] = self.proxies
        if self.note:
            data["note"] = self.note
        if self.baseline:
            data["baseline"] = True
        if self.ratio is not None:
            data["ratio"] = round(self.ratio, 3)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        timing = data.get("timing")
        return cls(
            data["group"],
            data["case"],
            data["peer"],
            Status(data["status"]),
            timing=Timing.from_json(timing) if timing else None,
            rate=data.get("rate"),
            rate_unit=data.get("rate_unit", ""),
            proxies=dict(data.get("proxies", {})),
            note=data.get("note", ""),
            baseline=bool(data.get("baseline", False)),
            ratio=data.get("ratio"),
        )


def skipped(group: str, case: str, peer: str, reason: str) -> Row:
    return Row(group, case, peer, Status.SKIPPED, note=f"skipped: {reason}")


_STARTED = time.perf_counter()


def progress(message: str) -> None:
    """Progress goes to stderr (with the seconds since the run started), tables to stdout."""
    elapsed = time.perf_counter() - _STARTED
    print(f"bench [{elapsed:5.0f} s]: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# The machine line


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def machine(neo4j_version: str) -> dict[str, str]:
    """What the figures were measured on."""
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count() or 0),
        "ram_gib": f"{_ram_gib():.1f}",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "networkx": _version("networkx"),
        "igraph": _version("igraph"),
        "strawberry": _version("strawberry-graphql"),
        "neo4j_driver": _version("neo4j"),
        "neo4j_rust_ext": _version("neo4j-rust-ext"),
        "sqlite": sqlite3.sqlite_version,
        "neo4j_server": neo4j_version,
    }


def machine_line(info: dict[str, str]) -> str:
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['os']}; "
        f"Python {info['python']}, numpy {info['numpy']}, scipy {info['scipy']}, "
        f"networkx {info['networkx']}, igraph {info['igraph']}, "
        f"strawberry {info['strawberry']}, SQLite {info['sqlite']}, "
        f"neo4j driver {info['neo4j_driver']} (rust-ext {info['neo4j_rust_ext']}), "
        f"Neo4j server {info['neo4j_server']}"
    )
