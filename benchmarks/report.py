"""Tables, the results file and the generated part of ``docs/benchmarks.md``.

Ratios are computed within one run only: each row's median against its case's baseline row
(the floor or reference peer), or the fastest correct row when the case names none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from benchmarks.measure import MAX_FILL_RUNS, MIN_WARM, Row, Status

GROUP_TITLES = {
    "store": "Store operations (both stores)",
    "impact": "Impact: reach set of failed CIs (all peers on one propagation graph)",
    "import": "Import: per-row MERGE vs batched UNWIND, and our store's upsert",
    "api": "API: serving a dependency map",
}


def assign_ratios(rows: Sequence[Row]) -> None:
    cases: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        cases.setdefault((row.group, row.case), []).append(row)
    for members in cases.values():
        timed = [r for r in members if r.status == Status.OK and r.timing is not None]
        rated = [r for r in members if r.status == Status.OK and r.rate]
        base = next((r for r in timed if r.baseline), None) or (
            min(timed, key=lambda r: r.timing.median_ms) if timed else None  # type: ignore[union-attr]
        )
        if base is not None and base.timing is not None and base.timing.median_ms > 0:
            for r in timed:
                assert r.timing is not None
                r.ratio = r.timing.median_ms / base.timing.median_ms
            continue
        best = next((r for r in rated if r.baseline), None) or (
            max(rated, key=lambda r: r.rate or 0.0) if rated else None
        )
        if best is not None and best.rate:
            for r in rated:
                r.ratio = best.rate / (r.rate or math.inf)


def ms(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 10:
        return f"{value:.1f} ms"
    if value >= 0.1:
        return f"{value:.2f} ms"
    return f"{value * 1000:.1f} µs"


def _number(value: int | float | str) -> str:
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.1f}"


def table(rows: Sequence[Row]) -> str:
    """A Markdown table (readable as plain text too)."""
    lines = [
        "| case | peer | cold | median | p95 | runs | vs baseline | rate | proxies | status |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        t = r.timing
        if r.status == Status.SKIPPED:
            status = r.note
        elif r.status == Status.OK:
            status = "ok" + (f": {r.note}" if r.note else "")
        else:
            status = f"**{r.status}**" + (f": {r.note}" if r.note else "")
        cells = [
            r.case,
            r.peer + (" ★" if r.baseline else ""),
            ms(t.cold_ms) if t else "",
            ms(t.median_ms) if t and t.runs else "",
            ms(t.p95_ms) if t and t.runs else "",
            (str(len(t.runs)) if t.runs else "cold only") if t else "",
            f"{r.ratio:.2f}x" if r.ratio is not None else "",
            f"{r.rate:,.0f} {r.rate_unit}" if r.rate else "",
            ", ".join(f"{k} {_number(v)}" for k, v in r.proxies.items()),
            status.replace("|", "/"),
        ]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def tables(rows: Sequence[Row]) -> str:
    parts = []
    for group, title in GROUP_TITLES.items():
        members = [r for r in rows if r.group == group]
        if members:
            parts.append(f"#### {title}\n\n{table(members)}")
    return "\n\n".join(parts)


def size_label(size: int) -> str:
    if size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size % 1000 == 0:
        return f"{size // 1000}k"
    return str(size)


def write_results(
    path: Path, run: dict[str, Any], rows: Sequence[Row]
) -> tuple[Path, dict[str, Any], list[Row]]:
    """Merge this run into the day's file, keyed by size (a bench and a bench-full on the
    same day keep both). A run of some groups only (``--only impact``) replaces those groups
    and keeps the others of the same size from the earlier run, saying so in ``merged``.
    Returns the path, the merged run and its rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"schema": 2, "date": run["date"], "runs": {}}
    if path.exists():
        try:
            old = orjson.loads(path.read_bytes())
            if isinstance(old, dict) and isinstance(old.get("runs"), dict):
                data["runs"] = old["runs"]
        except orjson.JSONDecodeError:
            pass  # a broken file is replaced
    label = size_label(int(run["size"]))
    merged = list(rows)
    earlier = data["runs"].get(label)
    if isinstance(earlier, dict) and set(run["groups"]) < set(GROUP_TITLES):
        kept = [r for r in earlier.get("rows", []) if r.get("group") not in run["groups"]]
        if kept:
            groups = sorted({r["group"] for r in kept}, key=list(GROUP_TITLES).index)
            # where each kept group was measured: the earlier run's own groups, and those it
            # had kept in turn from runs before it
            prior = [
                {**m, "groups": [g for g in m["groups"] if g in groups]}
                for m in earlier.get("merged", [])
                if set(m["groups"]) & set(groups)
            ]
            own = [g for g in earlier.get("groups", groups) if g in groups]
            if own:
                prior.append(
                    {
                        "groups": own,
                        "command": earlier.get("command", ""),
                        "started": earlier.get("started", ""),
                        # how the kept impact rows were measured (see _filled)
                        "repeat": earlier.get("repeat"),
                        "impact_fill_s": earlier.get("impact_fill_s", 0.0),
                    }
                )
            run = {**run, "merged": prior, "rows": run["rows"] + kept}
            merged += [Row.from_json(r) for r in kept]
            order = list(GROUP_TITLES)
            merged.sort(key=lambda r: order.index(r.group) if r.group in order else len(order))
            run["rows"] = [r.to_json() for r in merged]
    data["runs"][label] = run
    path.write_bytes(_dumps(data))
    return path, run, merged


def _dumps(data: dict[str, Any]) -> bytes:
    """Indented JSON with one line per result row: small, and diffs stay readable."""
    runs = data["runs"]
    head = {k: v for k, v in data.items() if k != "runs"}
    parts = []
    for label in sorted(runs):
        run = runs[label]
        meta = {k: v for k, v in run.items() if k != "rows"}
        body = orjson.dumps(meta, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
        body = body.replace("\n", "\n    ")
        lines = ",\n".join(
            "      " + orjson.dumps(r, option=orjson.OPT_SORT_KEYS).decode()
            for r in run.get("rows", [])
        )
        body = body[: body.rfind("}")].rstrip() + f',\n      "rows": [\n{lines}\n      ]\n    }}'
        parts.append(f"    {orjson.dumps(label).decode()}: {body}")
    top = "".join(
        f"  {orjson.dumps(k).decode()}: {orjson.dumps(v).decode()},\n"
        for k, v in sorted(head.items())
    )
    text = "{\n" + top + '  "runs": {\n' + ",\n".join(parts)
    return (text + "\n  }\n}\n").encode()


def section(run: dict[str, Any], rows: Sequence[Row]) -> str:
    """The generated Markdown for one size."""
    notes = [
        f"- **{r.status}** {r.group} / {r.case} / {r.peer}: {r.note}"
        for r in rows
        if r.status in (Status.MISMATCH, Status.ERROR)
    ]
    dataset = run["dataset"]
    measured = f"Measured {run['date']} with `{run['command']}` in {run['duration_s']:.0f} s"
    phases = run.get("phases_s") or {}
    if phases:
        measured += " (" + ", ".join(f"{k} {v:.0f} s" for k, v in phases.items()) + ")"
    for m in run.get("merged", []):
        measured += f"; {', '.join(m['groups'])} from the earlier `{m['command']}` ({m['started']})"
    text = [
        measured + ".",
        "",
        f"Machine: {run['machine_line']}",
        "",
        f"Dataset: {dataset['cis']:,} CIs, {dataset['relationships']:,} relationships "
        f"({dataset['propagation_entries']:,} propagation entries), seed {run['seed']}; "
        f"warm runs per measure: {run['repeat']} (any beyond five only while the measure's "
        f"{run['budget_s']:.0f} s budget lasts{_filled(run)}; the runs column says how many).",
        "",
        tables(rows),
    ]
    if notes:
        text += ["", "Wrong answers and errors (their times do not count):", "", *notes]
    return "\n".join(text)


def _filled(run: dict[str, Any]) -> str:
    """The fill rule of fast impact answers, when the impact rows shown had it: this run's,
    or those kept from the earlier run it was merged with."""
    source: dict[str, Any] | None = run
    if "impact" not in run.get("groups", ("impact",)):
        source = next((m for m in run.get("merged", ()) if "impact" in m.get("groups", ())), None)
    if source is None:
        return ""
    fill_ms = 1000 * float(source.get("impact_fill_s") or 0)
    if not fill_ms or int(source.get("repeat") or run["repeat"]) < MIN_WARM:
        return ""
    return (
        f"; impact answers faster than {fill_ms / MIN_WARM:.0f} ms get more, until their runs "
        f"took {fill_ms:.0f} ms in all, at most {MAX_FILL_RUNS}"
    )


def update_docs(path: Path, size: int, body: str) -> None:
    """Replace the generated block for ``size`` (between its markers) or append one."""
    label = size_label(size)
    begin, end = f"<!-- bench:{label}:begin -->", f"<!-- bench:{label}:end -->"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + f"\n\n## {label} CIs\n\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
