"""``cmdb``: the command line.

Every subcommand takes ``--store URL`` (or ``CMDB_STORE``): a directory for the embedded store
(default ``./.cmdb``) or a ``neo4j://`` / ``bolt://`` URL. Every subcommand that prints takes
``--json`` for machine-readable output. Errors print one line naming what is wrong and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson

from api import cli_impact, cli_import
from api.cli_import import load_demo
from graph.errors import CmdbError
from graph.model import (
    ConfigurationItem,
    Direction,
    Status,
)
from graph.store import CiFilter, Store, resolve_reference
from graph.stores import open_store, store_url

Handler = Callable[[argparse.Namespace], int]

EPILOG = """\
examples:
  cmdb demo                          load the demo shop into ./.cmdb
  cmdb list --class application      list CIs of one class
  cmdb show shop-api                 one CI with its relationships
  cmdb history shop-api --json       its change history as JSON
  cmdb related esx-par-01 --depth 2  what is around a CI
  CMDB_STORE=bolt://127.0.0.1:7687 cmdb list   the same against Neo4j

Run `cmdb COMMAND --help` for each command's options and examples.
"""


def open_from_args(args: argparse.Namespace) -> Store:
    return open_store(args.store)


def print_json(value: Any) -> None:
    sys.stdout.write(
        orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
    )


def _ci_json(ci: ConfigurationItem) -> dict[str, Any]:
    return ci.model_dump(mode="json", by_alias=True, exclude={"provenance"})


# -- demo ---------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    store = open_from_args(args)
    try:
        report = load_demo(store)
        written_cis = report.cis.created + report.cis.updated
        written_rels = report.relationships.created + report.relationships.updated
        total = store.count_cis()
        if args.json:
            print_json(
                {
                    "store": store.describe(),
                    "cis_written": written_cis,
                    "relationships_written": written_rels,
                    "cis": total,
                }
            )
            return 0
        print(
            f"Demo topology loaded into the {store.describe()}: {total} CIs "
            f"({written_cis} CIs and {written_rels} relationships written now)."
        )
        print("\nServices:")
        services = store.list_cis(
            CiFilter(classes=frozenset({"business_service", "technical_service"}))
        ).items
        for ci in sorted(services, key=lambda c: (c.criticality or 5, c.name)):
            print(f"  tier {ci.criticality}  {ci.name:<24} ({ci.id})")
        print(
            "\nTry:\n  cmdb show shop-api\n  cmdb related esx-par-01 --depth 3 --direction in"
            "\n  cmdb impact esx-par-01\n  cmdb impact pg-orders-1 pg-orders-2"
            "\n  cmdb what-if esx-lyo-02"
        )
        return 0
    finally:
        store.close()


# -- reads --------------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    store = open_from_args(args)
    try:
        ci = resolve_reference(store, args.ref)
        rels = store.relationships(ci.id)
        if args.json:
            print_json(
                {
                    "ci": _ci_json(ci),
                    "relationships": [
                        r.model_dump(mode="json", exclude={"provenance"}) for r in rels
                    ],
                }
            )
            return 0
        registry = store.registry
        print(f"{ci.name}  [{ci.ci_class}]  id={ci.id}")
        fields: tuple[tuple[str, str | None], ...] = (
            ("status", ci.status.value),
            ("environment", ci.environment),
            ("criticality", f"tier {ci.criticality}" if ci.criticality else None),
            ("owner", ci.owner),
            ("support group", ci.support_group),
            ("description", ci.description),
            ("tags", ", ".join(ci.tags) or None),
            ("first seen", _when(ci.first_seen)),
            ("last seen", _when(ci.last_seen)),
        )
        for label, text in fields:
            if text:
                print(f"  {label:<14} {text}")
        for key, value in sorted(ci.attributes.items()):
            print(f"  {key:<14} {value}")
        for group in ci.redundancy:
            print(
                f"  redundancy     {group.name}: {', '.join(group.members)} "
                f"(down below {group.down_below.describe()}, "
                f"degraded below {group.degraded_below.describe()})"
            )
        if rels:
            print("  relationships:")
        for r in rels:
            rel_type = registry.relationship_types.get(r.type)
            if r.source == ci.id:
                print(f"    {rel_type.forward if rel_type else r.type:<22} {r.target}")
            else:
                print(f"    {rel_type.reverse if rel_type else r.type:<22} {r.source}")
        return 0
    finally:
        store.close()


def _when(at: datetime | None) -> str | None:
    return at.isoformat(timespec="seconds") if at else None


def cmd_list(args: argparse.Namespace) -> int:
    store = open_from_args(args)
    try:
        filt = CiFilter(
            classes=frozenset(args.ci_class or ()),
            statuses=frozenset(Status(s) for s in args.status or ()),
            environment=args.environment,
            name_contains=args.name,
            tag=args.tag,
        )
        for name in filt.classes:
            store.registry.ci_class(name)
        page = store.list_cis(filt, first=args.first, after=args.after)
        if args.json:
            print_json(
                {
                    "items": [_ci_json(c) for c in page.items],
                    "next_cursor": page.next_cursor,
                    "total": store.count_cis(filt),
                }
            )
            return 0
        for ci in page.items:
            print(f"{ci.id:<32} {ci.ci_class:<18} {ci.status.value:<12} {ci.name}")
        if page.next_cursor:
            print(f"... more: --after {page.next_cursor}", file=sys.stderr)
        return 0
    finally:
        store.close()


def cmd_history(args: argparse.Namespace) -> int:
    store = open_from_args(args)
    try:
        cis = [resolve_reference(store, ref).id for ref in args.refs] if args.refs else None
        changes = store.history(
            cis, since=args.since, until=args.until, run_id=args.run, limit=args.limit
        )
        if args.json:
            print_json([c.model_dump(mode="json") for c in changes])
            return 0
        for c in changes:
            origin = " ".join(
                x
                for x in (
                    c.actor,
                    c.source and f"source={c.source}",
                    c.run_id and f"run={c.run_id}",
                )
                if x
            )
            print(
                f"{c.at.isoformat(timespec='seconds')}  {c.ci:<24} {c.kind.value:<14} "
                f"{c.summary}  ({origin})"
            )
        return 0
    finally:
        store.close()


def cmd_related(args: argparse.Namespace) -> int:
    store = open_from_args(args)
    try:
        roots = [resolve_reference(store, ref).id for ref in args.refs]
        sub = store.neighbourhood(
            roots,
            direction=Direction(args.direction),
            depth=args.depth,
            types=frozenset(args.type or ()),
            limit=args.limit,
        )
        if args.json:
            print_json(
                {
                    "cis": [_ci_json(c) for c in sub.cis],
                    "relationships": [
                        r.model_dump(mode="json", exclude={"provenance"}) for r in sub.relationships
                    ],
                }
            )
            return 0
        names = {c.id: c.name for c in sub.cis}
        print(f"{len(sub.cis)} CIs, {len(sub.relationships)} relationships")
        for r in sub.relationships:
            print(
                f"  {names.get(r.source, r.source)} -[{r.type}]-> {names.get(r.target, r.target)}"
            )
        return 0
    finally:
        store.close()


# -- parser ---------------------------------------------------------------------------------


def _iso(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO time such as 2026-11-26T09:00:00+00:00"
        ) from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no time zone; add Z or +01:00")
    return at


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand has: where the store is, and JSON output."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help="a directory (embedded store) or a neo4j:// / bolt:// URL "
        f"(default: $CMDB_STORE or {store_url(None)!r})",
    )
    parent.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cmdb",
        description="A CMDB graph with impact analysis: what else is down, who is hurt, "
        "who to call, and what changed.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = common_options()

    def add(name: str, handler: Handler, help: str, epilog: str = "") -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            parents=[common],
            help=help,
            description=help,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=handler)
        return p

    add(
        "demo",
        cmd_demo,
        "load the demo topology (a shop on two sites) into the store",
        "examples:\n  cmdb demo\n  cmdb demo --store /tmp/cmdb-demo --json\n\n"
        "Loading twice changes nothing: the demo is upserted.",
    )

    p = add(
        "show",
        cmd_show,
        "show one CI (by id or unique name) and its relationships",
        "examples:\n  cmdb show shop-api\n  cmdb show 'Online Shop' --json",
    )
    p.add_argument("ref", help="a CI id or unique name")

    p = add(
        "list",
        cmd_list,
        "list CIs, filtered, a page at a time (ordered by id)",
        "examples:\n  cmdb list --class server --class virtual_machine\n"
        "  cmdb list --status down --json\n  cmdb list --first 50 --after CURSOR",
    )
    p.add_argument(
        "--class",
        dest="ci_class",
        action="append",
        metavar="CLASS",
        help="only this class (repeatable)",
    )
    p.add_argument("--status", action="append", choices=[s.value for s in Status])
    p.add_argument("--environment")
    p.add_argument("--name", help="name contains (case-insensitive)")
    p.add_argument("--tag")
    p.add_argument("--first", type=int, default=100, help="page size (default 100)")
    p.add_argument("--after", metavar="CURSOR", help="the cursor printed after a page")

    p = add(
        "history",
        cmd_history,
        "the change history of CIs (or of everything)",
        "examples:\n  cmdb history shop-api\n"
        "  cmdb history --since 2026-11-25T00:00:00Z --json\n  cmdb history --run RUN_ID",
    )
    p.add_argument("refs", nargs="*", metavar="REF", help="CI ids or unique names")
    p.add_argument("--since", type=_iso, help="ISO time with zone")
    p.add_argument("--until", type=_iso)
    p.add_argument("--run", help="only changes of one import run")
    p.add_argument("--limit", type=int, default=1000)

    p = add(
        "related",
        cmd_related,
        "the CIs around some CIs, by direction, depth and type",
        "examples:\n  cmdb related shop-api\n"
        "  cmdb related esx-par-01 --direction in --depth 4\n"
        "  cmdb related shop-web --type RUNS_ON --type HOSTED_ON --direction out --depth 2",
    )
    p.add_argument("refs", nargs="+", metavar="REF")
    p.add_argument(
        "--direction",
        choices=[d.value for d in Direction],
        default="both",
        help="out: what they point to; in: what points to them (default both)",
    )
    p.add_argument("--depth", type=int, default=1)
    p.add_argument("--type", action="append", metavar="TYPE", help="relationship type")
    p.add_argument("--limit", type=int, default=10_000, help="at most this many CIs")

    cli_import.register(sub, open_from_args)
    cli_impact.register(sub, open_from_args)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except CmdbError as exc:
        print(f"cmdb {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
