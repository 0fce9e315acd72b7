"""``cmdb import``, ``cmdb runs`` and ``cmdb review``: inventories into the CMDB, and what the
runs did. Registered by ``api.cli`` (``register``). The engine is ``graph.sync``.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from graph.errors import ValidationError
from graph.model import ImportRun
from graph.store import Store
from graph.sync import (
    DEFAULT_GRACE,
    ItemUpdate,
    RunReport,
    load_rules,
    record_failed_run,
    run_import,
)
from graph.sync_plan import IncomingInventory
from graph.sync_rules import DEFAULT_RULES
from importers import ALIASES, DESCRIPTIONS, FORMATS, format_name
from importers.base import Inventory, SourceFile, expand_paths
from importers.generic import (
    NO_MAPPING,
    ColumnMapping,
    check_csv,
    demo_inventory,
    iter_csv_chunks,
    load_mapping,
    parse_csv,
    parse_json,
    parse_yaml,
)

OpenStore = Callable[[argparse.Namespace], Store]

STREAM_ABOVE: Final = 50_000
"""CSV inputs with more items than this stream chunk by chunk (bounded memory); smaller ones
are planned whole, so that a bad item or the deletion guard writes nothing at all."""

PROGRESS_ABOVE: Final = 2_000
SHOWN: Final = 20  # items listed per kind in the text summary

DESCRIPTION = """\
Import an inventory into the CMDB as one run of a named source.

A run reads the files, reconciles every item with the CIs already stored (the source's own
earlier reports first, then identification rules per class: serial number, asset tag, FQDN,
name + class, id), merges fields under per-field source precedence, and writes the changes
with the run id in the history. Items the source stopped reporting are marked absent and
retired only after the grace period, never by a failed or partial run, and never more than
10 % of the source or 500 items without --allow-deletes. Importing the same files twice
changes nothing."""

EPILOG = """\
formats:
{formats}

examples:
  cmdb import yaml importers/data/demo.yaml --source demo
  cmdb import csv cis.csv relationships.csv --source cmdb-sheet --dry-run
  cmdb import csv export.csv --mapping map.yaml --source asset-db
  cmdb import json inventory.json --json
  cat inventory.yaml | cmdb import yaml - --source pipeline
  cmdb import kubernetes manifests/ --source k8s-prod
  cmdb import backstage catalog/ --source backstage
  cmdb import terraform prod.tfstate --source tf-prod --allow-deletes 40
  cmdb import netbox netbox-export/ --source netbox --rules rules.toml
  cmdb runs --source k8s-prod
  cmdb review

exit status: 0 the run succeeded; 1 it stopped (deletion guard) or had errors or conflicts;
2 bad usage or unreadable input (nothing written).
See docs/importing.md and docs/import-formats.md."""


def _formats_help() -> str:
    aliases: dict[str, list[str]] = {}
    for alias, name in ALIASES.items():
        aliases.setdefault(name, []).append(alias)
    lines = []
    for name in FORMATS:
        extra = f" (also: {', '.join(aliases[name])})" if name in aliases else ""
        lines.append(f"  {name:<11} {DESCRIPTIONS.get(name, '')}{extra}")
    return "\n".join(lines)


def register(subparsers: Any, open_store: OpenStore) -> None:
    """Add ``import``, ``runs`` and ``review`` to the ``cmdb`` command line."""
    from api.cli import common_options

    common = common_options()
    p = subparsers.add_parser(
        "import",
        parents=[common],
        help="import an inventory (csv, json, yaml, kubernetes, backstage, ...) as a run",
        description=DESCRIPTION,
        epilog=EPILOG.format(formats=_formats_help()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "format",
        metavar="FORMAT",
        choices=sorted([*FORMATS, *ALIASES]),
        help="one of: " + ", ".join(FORMATS),
    )
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="files, directories (searched), or - for stdin"
    )
    p.add_argument(
        "--source",
        metavar="NAME",
        help="the source's name: what it reported last time is what this run compares to "
        "(default: the format name)",
    )
    p.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    p.add_argument(
        "--allow-deletes",
        type=_count,
        metavar="N",
        help="let this run retire/delete up to N items (the guard otherwise stops a run "
        "removing more than 10%% of the source or 500 items)",
    )
    p.add_argument(
        "--grace",
        type=_days,
        metavar="DAYS",
        default=DEFAULT_GRACE,
        help="days an item may be absent before it is retired (default 7; 0 = at once)",
    )
    p.add_argument(
        "--mapping",
        metavar="FILE",
        help="csv/json/yaml: a YAML file renaming columns and mapping classes and types",
    )
    p.add_argument(
        "--rules", metavar="FILE", help="a TOML file of identification and precedence rules"
    )
    p.add_argument(
        "--no-placeholders",
        action="store_true",
        help="skip relationships to CIs nobody reported instead of creating placeholder CIs",
    )
    p.set_defaults(func=lambda args: cmd_import(args, open_store))

    p = subparsers.add_parser(
        "runs",
        parents=[common],
        help="list import runs, newest first",
        description="Import runs, newest first: source, status, counts.",
        epilog="examples:\n  cmdb runs\n  cmdb runs --source k8s-prod --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--source", metavar="NAME", help="only this source's runs")
    p.add_argument("--limit", type=_count, default=20, help="at most this many (default 20)")
    p.set_defaults(func=lambda args: cmd_runs(args, open_store))

    p = subparsers.add_parser(
        "review",
        parents=[common],
        help="the review list: items the last run of each source could not place",
        description="Conflicts from the last run of each source: items that matched several "
        "CIs and were not written. Fix the data or the rules (--rules), then import again.",
        epilog="examples:\n  cmdb review\n  cmdb review --source netbox --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--source", metavar="NAME", help="only this source")
    p.set_defaults(func=lambda args: cmd_review(args, open_store))


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _days(text: str) -> timedelta:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if days < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return timedelta(days=days)


# -- import ---------------------------------------------------------------------------------


def _mapping(args: argparse.Namespace, fmt: str) -> ColumnMapping:
    if not args.mapping:
        return NO_MAPPING
    if fmt not in ("csv", "json", "yaml"):
        raise ValidationError(
            f"--mapping applies to csv, json and yaml, not {fmt}", field="--mapping"
        )
    path = Path(args.mapping)
    if not path.is_file():
        raise ValidationError("no such mapping file", location=str(path))
    return load_mapping(SourceFile(name=str(path), path=path))


def _read(
    fmt: str, files: Sequence[SourceFile], mapping: ColumnMapping
) -> tuple[IncomingInventory | Iterable[IncomingInventory], int]:
    """The inventory (or its chunks, for big CSV) and its item count. Raises
    ValidationError on bad input before anything is written."""
    if fmt == "csv":
        summary = check_csv(files, mapping=mapping)  # the whole input, validated first
        if summary.items > STREAM_ABOVE:
            return iter_csv_chunks(files, mapping=mapping, check_duplicates=False), summary.items
        inventory = parse_csv(files, mapping)
    elif fmt in ("json", "yaml"):
        inventory = (parse_json if fmt == "json" else parse_yaml)(files, mapping)
    else:
        inventory = FORMATS[fmt][0](files)
    return inventory, len(inventory.cis) + len(inventory.relationships)


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    if total <= PROGRESS_ABOVE or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, file=sys.stderr, unit=" items", desc="import") as bar:

        def advance(n: int) -> None:
            bar.update(n)

        yield advance


@contextmanager
def _few_collections() -> Iterator[None]:
    """An import allocates millions of small objects that live for the whole run (rows,
    items, the planner's maps); with the default thresholds the cycle collector rescans them
    over and over (~10-15 % of `cmdb import csv` of 100k CIs + 200k relationships). Our
    objects hold no reference cycles worth collecting early, so collect much less often."""
    before = gc.get_threshold()
    gc.freeze()  # what exists before the run (modules, the registry) is never scanned again
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def cmd_import(args: argparse.Namespace, open_store: OpenStore) -> int:
    with _few_collections():
        return _import(args, open_store)


def _import(args: argparse.Namespace, open_store: OpenStore) -> int:
    fmt = format_name(args.format)
    source = args.source or fmt
    mapping = _mapping(args, fmt)
    rules = load_rules(args.rules) if args.rules else DEFAULT_RULES
    files = expand_paths(args.paths, FORMATS[fmt][1])
    store = open_store(args)
    try:
        try:
            data, total = _read(fmt, files, mapping)
        except ValidationError as exc:
            if not args.dry_run:
                record_failed_run(store, source=source, format=fmt, error=str(exc))
            raise
        with _progress(total) as progress:
            report = run_import(
                store,
                data,
                source=source,
                format=fmt,
                dry_run=args.dry_run,
                allow_deletes=args.allow_deletes,
                grace=args.grace,
                placeholders=not args.no_placeholders,
                rules=rules,
                progress=progress,
            )
    finally:
        store.close()
    if args.json:
        from api.cli import print_json

        print_json(report.as_json())
    else:
        print_summary(report)
    return 0 if report.ok and not report.conflict_count else 1


def print_summary(report: RunReport, out: Any = None) -> None:
    """The human summary of a run."""
    out = out or sys.stdout

    def say(text: str = "") -> None:
        out.write(text + "\n")

    verb = "Dry run" if report.dry_run else "Run"
    say(
        f"{verb} {report.run_id} of source {report.source!r} ({report.format}): "
        f"{report.status.value}" + (" (nothing written)" if report.dry_run else "")
    )
    for label, counts, removed in (
        ("CIs", report.cis, "retired"),
        ("relationships", report.relationships, "deleted"),
    ):
        say(
            f"  {label:<14} {counts.created} created, {counts.updated} updated, "
            f"{counts.unchanged} unchanged, {counts.absent} absent, {counts.removed} {removed}"
        )
    say(
        f"  {'':<14} {report.conflict_count} conflicts, {report.warning_count} warnings, "
        f"{report.error_count} errors, {report.placeholder_count} placeholders"
    )
    if report.stopped:
        say(f"\nSTOPPED: {report.stopped}")
    _section(say, "errors", report.errors, report.error_count)
    _section(
        say,
        "conflicts (not written; see cmdb review)",
        [c.describe() for c in report.conflicts],
        report.conflict_count,
    )
    _section(say, "created", report.created, report.cis.created)
    _section(say, "updated", [_describe_update(u) for u in report.updated], report.cis.updated)
    _section(say, "absent (retired after the grace period)", report.absent, report.cis.absent)
    _section(say, "retired", report.retired, report.cis.removed)
    _section(
        say,
        "relationships created",
        report.created_relationships,
        report.relationships.created,
    )
    _section(
        say,
        "relationships updated",
        [_describe_update(u) for u in report.updated_relationships],
        report.relationships.updated,
    )
    _section(say, "relationships absent", report.absent_relationships, report.relationships.absent)
    _section(
        say, "relationships deleted", report.deleted_relationships, report.relationships.removed
    )
    _section(say, "warnings", report.warnings, report.warning_count)


def _section(say: Callable[[str], None], title: str, items: Sequence[str], total: int) -> None:
    if not total:
        return
    say(f"\n{title} ({total}):")
    for item in items[:SHOWN]:
        say(f"  {item}")
    if total > SHOWN:
        say(f"  ... and {total - SHOWN} more (--json lists up to 1000)")


def _describe_update(update: ItemUpdate) -> str:
    changes = "; ".join(f"{c.field}: {c.before!r} -> {c.after!r}" for c in update.changes[:5])
    more = f"; +{len(update.changes) - 5} more" if len(update.changes) > 5 else ""
    return f"{update.item}: {changes}{more}"


# -- runs and review ------------------------------------------------------------------------


def _run_json(run: ImportRun) -> dict[str, Any]:
    return run.model_dump(mode="json")


def cmd_runs(args: argparse.Namespace, open_store: OpenStore) -> int:
    store = open_store(args)
    try:
        runs = store.list_runs(args.source, limit=args.limit)
    finally:
        store.close()
    if args.json:
        from api.cli import print_json

        print_json([_run_json(r) for r in runs])
        return 0
    if not runs:
        print("No import runs yet. Try: cmdb import yaml importers/data/demo.yaml")
        return 0
    for run in runs:
        c = run.counts
        counts = (
            ", ".join(
                f"{k} {c[k]}"
                for k in ("created", "updated", "absent", "retired", "conflicts", "errors")
                if c.get(k)
            )
            or "no changes"
        )
        print(
            f"{run.started_at.isoformat(timespec='seconds')}  {run.id}  {run.source:<16} "
            f"{run.format:<10} {run.status.value:<9} {counts}"
        )
    return 0


def cmd_review(args: argparse.Namespace, open_store: OpenStore) -> int:
    store = open_store(args)
    try:
        runs = store.list_runs(args.source, limit=1000)
    finally:
        store.close()
    latest: dict[str, ImportRun] = {}
    for run in runs:  # newest first: keep each source's last finished run
        if run.finished_at is not None:
            latest.setdefault(run.source, run)
    entries = [
        {"source": run.source, "run_id": run.id, "conflict": message.removeprefix("conflict: ")}
        for run in latest.values()
        for message in run.messages
        if message.startswith("conflict: ")
    ]
    if args.json:
        from api.cli import print_json

        print_json(entries)
        return 0
    if not entries:
        print("The review list is empty.")
        return 0
    for entry in entries:
        print(f"[{entry['source']} run {entry['run_id']}] {entry['conflict']}")
    return 0


# -- the demo ---------------------------------------------------------------------------------


def load_demo(store: Store) -> RunReport:
    """Import the demo shop (``importers/data/demo.yaml``) as source ``demo``; idempotent."""
    inventory: Inventory = demo_inventory()
    return run_import(store, inventory, source="demo", format="yaml", actor="cmdb demo")


__all__ = ["cmd_import", "cmd_review", "cmd_runs", "load_demo", "print_summary", "register"]
