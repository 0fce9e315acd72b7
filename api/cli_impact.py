"""``cmdb impact``, ``cmdb what-if`` and ``cmdb causes``: impact analysis from the command
line. Registered into ``api.cli`` by :func:`register`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime, timedelta

from graph.errors import NotFoundError, ValidationError
from graph.model import CiId
from graph.store import Store, resolve_reference
from impact.analysis import (
    CausesReport,
    ImpactOptions,
    affected_page,
    analyse_impact,
    common_causes,
    incident_causes,
    refresh_incident,
    resolve_failures,
)
from impact.propagation import ImpactState
from impact.report import Freshness, ImpactReport

OpenStore = Callable[[argparse.Namespace], Store]

IMPACT_HELP = "what a failure of some CIs affects: CIs, services, users, teams, changes"
IMPACT_DESCRIPTION = """\
What fails when the named CIs fail: every affected CI with its state (down, degraded, or at
risk where redundancy absorbed the failure), its distance and the chain of relationships
that explains it; the affected business and technical services by criticality; the users
reached (directly or through their groups); the teams to notify; the changes of the last
72 hours on the failed CIs and everything they depend on, most suspicious first; and a
suggested ITIL priority. Failure travels along relationships as the registry's propagation
rules say; redundancy groups decide by quorum.
"""
IMPACT_EPILOG = """\
examples:
  cmdb impact redis-cart                       redis-cart (an id or a unique name) is down
  cmdb impact db-01 db-02 --state degraded     two CIs degraded
  cmdb impact esx-par-01 --depth 3             at most 3 hops from the failure
  cmdb impact sw-core --type CONNECTS_TO --type HOSTED_ON --class server
  cmdb impact shop-db --at 2026-11-25T14:05:00Z --json
  cmdb impact shop-db --first 20 --after CURSOR    the next page of affected CIs
  cmdb impact --incident INC-42 --refresh      recompute and store an incident's answer
  cmdb what-if esx-par-01                      a planned reboot: what goes down, what
                                               loses redundancy without going down
"""
CAUSES_HELP = "the upstream CIs several failures share: the probable common cause"
CAUSES_DESCRIPTION = """\
Given several failed CIs (or incidents), the CIs upstream of them that they share, ranked
by how many failures each explains (closest first among equals), with the recent changes
on each. Several open incidents sharing one cause make a major-incident candidate.
"""
CAUSES_EPILOG = """\
examples:
  cmdb causes cartservice checkoutservice      what do these two failures share?
  cmdb causes --incident INC-41 --incident INC-42
  cmdb causes --open-incidents --json          every open incident: one major incident?
"""


def register(subparsers: argparse._SubParsersAction, open_store: OpenStore) -> None:  # type: ignore[type-arg]
    """Add ``impact``, ``what-if`` and ``causes`` to the ``cmdb`` command line."""
    from api.cli import common_options

    common = common_options()
    for name, what_if in (("impact", False), ("what-if", True)):
        p = subparsers.add_parser(
            name,
            parents=[common],
            help=IMPACT_HELP if not what_if else "impact of a planned action on some CIs",
            description=IMPACT_DESCRIPTION,
            epilog=IMPACT_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("refs", nargs="*", metavar="REF", help="failed CIs: ids or unique names")
        p.add_argument(
            "--state",
            choices=[ImpactState.DOWN.value, ImpactState.DEGRADED.value],
            default=ImpactState.DOWN.value,
            help="how the named CIs failed (default down)",
        )
        p.add_argument("--depth", type=int, help="at most this many hops (default: no limit)")
        p.add_argument(
            "--at", type=_when, metavar="TIME", help="when the failure started (ISO, with zone)"
        )
        p.add_argument(
            "--class",
            dest="classes",
            action="append",
            default=[],
            metavar="CLASS",
            help="failure travels only through CIs of these classes (repeatable)",
        )
        p.add_argument(
            "--type",
            dest="types",
            action="append",
            default=[],
            metavar="TYPE",
            help="failure travels only along these relationship types (repeatable)",
        )
        p.add_argument(
            "--window",
            type=float,
            default=72.0,
            metavar="HOURS",
            help="look for changes this long before the failure (default 72)",
        )
        p.add_argument("--first", type=int, default=20, help="affected CIs per page (default 20)")
        p.add_argument("--after", metavar="CURSOR", help="the cursor printed after a page")
        p.add_argument("--paths", action="store_true", help="print the explaining path of every CI")
        if not what_if:
            p.add_argument("--what-if", action="store_true", help="a planned action, not a failure")
            p.add_argument("--incident", metavar="ID", help="the answer stored on an incident")
            p.add_argument(
                "--refresh", action="store_true", help="with --incident: recompute and store it"
            )
        p.set_defaults(func=lambda args, w=what_if: _impact(args, open_store, what_if=w))

    p = subparsers.add_parser(
        "causes",
        parents=[common],
        help=CAUSES_HELP,
        description=CAUSES_DESCRIPTION,
        epilog=CAUSES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("refs", nargs="*", metavar="REF", help="failed CIs: ids or unique names")
    p.add_argument("--incident", action="append", default=[], metavar="ID", help="repeatable")
    p.add_argument("--open-incidents", action="store_true", help="compare every open incident")
    p.add_argument("--depth", type=int, help="look at most this many hops upstream")
    p.add_argument("--at", type=_when, metavar="TIME", help="when the failures started")
    p.add_argument("--limit", type=int, default=10, help="at most this many causes")
    p.set_defaults(func=lambda args: _causes(args, open_store))


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone (Z or +01:00): {text!r}")
    return value


def _impact(args: argparse.Namespace, open_store: OpenStore, *, what_if: bool) -> int:
    from api.cli import print_json

    store = open_store(args)
    try:
        options = ImpactOptions(
            depth=args.depth,
            classes=frozenset(args.classes),
            types=frozenset(args.types),
            at=args.at,
            change_window=timedelta(hours=args.window),
            what_if=what_if or getattr(args, "what_if", False),
            first=args.first,
        )
        incident_id = getattr(args, "incident", None)
        if incident_id is not None:
            return _incident(store, args, incident_id, options)
        if not args.refs:
            raise ValidationError("name the failed CIs (ids or unique names)", field="REF")
        failures = resolve_failures(store, args.refs, ImpactState(args.state))
        report = analyse_impact(store, failures, options)
        if args.after:
            page = affected_page(store, report, first=args.first, after=args.after)
            if args.json:
                print_json(_page_json(page))
            else:
                _print_affected(page.items, page.total, page.next_cursor, args.paths, start=True)
            return 0
        if args.json:
            print_json(report.as_json())
        else:
            _print_report(report, paths=args.paths)
        return 0
    finally:
        store.close()


def _page_json(page: object) -> dict[str, object]:
    from impact.report import ImpactPage, _plain

    assert isinstance(page, ImpactPage)
    return {
        "affected": [_plain(x) for x in page.items],
        "affected_total": page.total,
        "affected_next": page.next_cursor,
    }


def _incident(
    store: Store, args: argparse.Namespace, incident_id: str, options: ImpactOptions
) -> int:
    from api.cli import print_json

    if args.refresh:
        incident = refresh_incident(store, incident_id, options)
    else:
        found = store.get_incident(incident_id)
        if found is None:
            raise NotFoundError(f"no incident {incident_id!r}")
        incident = (
            found if found.impact is not None else refresh_incident(store, incident_id, options)
        )
    answer = incident.impact or {}
    if args.json:
        print_json({"incident": incident.id, "impact_at": incident.impact_at, "impact": answer})
    else:
        when = incident.impact_at.isoformat() if incident.impact_at else "never"
        print(f"incident {incident.id}: {incident.title}  (answer computed {when})")
        counts = answer.get("counts", {})
        priority = answer.get("priority", {})
        print(
            f"  {counts.get('affected', 0)} CIs affected, {counts.get('services', 0)} services, "
            f"{counts.get('users', 0)} users; {priority.get('label', '?')}: "
            f"{priority.get('reason', '')}"
        )
        print("  run with --refresh to recompute it on the current graph")
    return 0


def _causes(args: argparse.Namespace, open_store: OpenStore) -> int:
    from api.cli import print_json

    store = open_store(args)
    try:
        report: CausesReport
        if args.open_incidents or args.incident:
            report = incident_causes(
                store, None if args.open_incidents else args.incident, limit=args.limit
            )
        else:
            if not args.refs:
                raise ValidationError(
                    "name failed CIs, or --incident ID, or --open-incidents", field="REF"
                )
            failures: dict[str, list[CiId]] = {}
            for ref in args.refs:
                ci = resolve_reference(store, ref)
                failures[ci.id] = [ci.id]
            report = common_causes(store, failures, at=args.at, depth=args.depth, limit=args.limit)
        if args.json:
            print_json(report.as_json())
            return 0
        if not report.causes:
            print("no shared upstream CI: these failures look unrelated")
            return 0
        total = len(report.failures)
        print(f"probable common causes of {total} failures, most explained first:")
        for cause in report.causes:
            print(
                f"  {cause.name} [{cause.ci_class}] ({cause.status.value}): explains "
                f"{len(cause.explains)} of {total} ({', '.join(cause.explains)}), "
                f"{cause.distance} hops up"
            )
            for change in cause.changes[:3]:
                print(f"      change {change.at:%Y-%m-%d %H:%M} {change.summary}: {change.reason}")
        if report.major_incident is not None:
            m = report.major_incident
            print(
                f"major-incident candidate: {len(m.explains)} open incidents share {m.name} "
                f"({', '.join(m.explains)})"
            )
        print(freshness_text(report.freshness))
        return 0
    finally:
        store.close()


def _print_report(report: ImpactReport, *, paths: bool) -> None:
    c = report.counts
    failed = ", ".join(f"{f.name} {f.state.value}" for f in report.failed)
    verb = "would affect" if report.what_if else "affects"
    print(
        f"{failed} {verb} {c.affected} CIs ({c.down} down, {c.degraded} degraded, "
        f"{c.at_risk} at risk), {c.services} services, {c.users} users  "
        f"[{report.priority.label}]"
    )
    print(f"priority {report.priority.label}: {report.priority.reason}")
    if report.services.items:
        print(f"\nservices ({report.services.total}, most critical first):")
        for s in report.services.items[:20]:
            tier = f"tier {s.criticality}" if s.criticality else "tier -"
            planned = "  (planned)" if s.planned else ""
            print(
                f"  {tier:<7} {s.name} [{s.ci_class}] {s.state.value}, {s.distance} hops{planned}"
            )
    print()
    _print_affected(
        report.affected.items, report.affected.total, report.affected.next_cursor, paths
    )
    if report.lost_redundancy:
        print("\nlost redundancy (still up, one more failure may hurt):")
        for a in report.lost_redundancy[:10]:
            print(f"  {a.name} [{a.ci_class}]: {a.rule or a.reason}")
    if report.users.total:
        shown = ", ".join(
            f"{u.name}" + (f" (via {u.via_name})" if u.via_name else "")
            for u in report.users.items[:10]
        )
        more = f", and {report.users.total - 10} more" if report.users.total > 10 else ""
        print(f"\nusers: {report.users.total} affected: {shown}{more}")
    if report.teams:
        print("\nteams to notify:")
        for t in report.teams[:10]:
            cis = f"{t.cis} CI" if t.cis == 1 else f"{t.cis} CIs"
            print(f"  {t.name} ({', '.join(t.roles)}; {cis}, e.g. {', '.join(t.examples)})")
        if len(report.teams) > 10:
            print(f"  and {len(report.teams) - 10} more (--json lists them)")
        if not report.teams_complete:
            print("  (not every team: the blast radius names more teams than a report lists)")
    if not report.what_if:
        if report.changes:
            print("\nchanges that may have caused it (most suspicious first):")
            for ch in report.changes[:10]:
                print(f"  {ch.score:5.1f}  {ch.at:%Y-%m-%d %H:%M}  {ch.summary}")
                print(f"         {ch.reason}")
        else:
            print("\nno changes on the failed CIs or what they depend on in the window")
    print()
    print(freshness_text(report.freshness))


def freshness_text(f: Freshness) -> str:
    """One line saying which topology the answer used and whether the store had moved on."""
    line = f"topology generation {f.generation} as of {f.as_of:%Y-%m-%d %H:%M:%S %Z}"
    checked = f" at {f.checked_at:%H:%M:%S}" if f.checked_at is not None else ""
    if f.fresh:
        return f"{line}: in sync with the store (checked{checked})" if checked else line
    since = f"{f.behind_since:%H:%M:%S}" if f.behind_since is not None else "?"
    return (
        f"{line}: BEHIND the store, which was at generation {f.current_generation}{checked}; "
        f"last known in sync at {since} (at most {f.behind_seconds:.1f} s behind); "
        "a refresh is under way"
    )


def _print_affected(
    items: tuple[object, ...], total: int, cursor: str | None, paths: bool, start: bool = False
) -> None:
    from impact.report import AffectedCi

    print(f"affected CIs ({total}, nearest first):" if total else "no other CI is affected")
    for a in items:
        assert isinstance(a, AffectedCi)
        planned = "  (planned)" if a.planned else ""
        print(f"  {a.state.value:<9}{a.distance:>3}  {a.name} [{a.ci_class}]: {a.reason}{planned}")
        if paths:
            print(f"               {_path_text(a)}")
    if cursor:
        print(f"  ... more: --after {cursor}")


def _path_text(a: object) -> str:
    from impact.report import AffectedCi

    assert isinstance(a, AffectedCi)
    parts = []
    for step in a.path:
        parts.append(step.name)
        if step.relationship:
            arrow = (
                f"-{step.relationship}->" if step.direction != "in" else f"<-{step.relationship}-"
            )
            parts.append(arrow)
    return " ".join(parts)
