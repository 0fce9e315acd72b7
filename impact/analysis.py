"""Impact answers over a :class:`~graph.store.Store`: the thin layer that reads the store,
runs the pure algorithms (:mod:`impact.propagation`, :mod:`impact.changes`,
:mod:`impact.priority`, :mod:`impact.causes`) and assembles the answer.

Store round trips per answer: one generation check (:mod:`impact.resident`; the topology is
re-read only when it moved), one ``get_cis`` for the CIs shown, one ``maintenance_windows``,
one ``history``.

Freshness: by default an answer is computed on a snapshot in sync with the store (a one-shot
run, the CLI). A long-running server passes its own :class:`~impact.resident.ResidentIndex`
(``resident=``), whose ``max_staleness`` lets an answer use the previous snapshot while one
background refresh runs; ``ImpactOptions.max_staleness`` overrides the bound per request
(``timedelta(0)``: demand a fresh answer). ``ImpactReport.freshness`` says which it was.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np

from graph.errors import NotFoundError, ValidationError
from graph.model import (
    CiId,
    ConfigurationItem,
    Direction,
    Incident,
    IncidentStatus,
    Limits,
    Status,
    utcnow,
)
from graph.store import STATUS_ORDER, Store, TeamColumns, resolve_reference
from impact.causes import shared_causes, upstream
from impact.changes import ScoredChange, score_changes
from impact.index import I8, I32, ImpactFilter, ImpactIndex
from impact.priority import PriorityRules, suggest_priority
from impact.propagation import STATES, BlastRadius, ImpactState, propagate
from impact.report import (
    AffectedCi,
    AffectedService,
    AffectedUser,
    Counts,
    Freshness,
    ImpactPage,
    ImpactReport,
    PathStep,
    Team,
)
from impact.resident import ResidentIndex, Snapshot, resident_for

DEFAULT_CHANGE_WINDOW = timedelta(hours=72)
_READ_CAP = Limits.MAX_PAGE  # CIs read from the store for services, teams and changes


@dataclass(frozen=True, slots=True)
class ImpactOptions:
    """How to answer. ``at``: when the failure started (default: now)."""

    depth: int | None = None
    classes: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    at: datetime | None = None
    change_window: timedelta = DEFAULT_CHANGE_WINDOW
    what_if: bool = False
    first: int = 100  # page size of affected CIs and users
    use_current_status: bool = True  # CIs already down or degraded count in quorums
    priority_rules: PriorityRules = field(default_factory=PriorityRules)
    max_changes: int = 50
    # how far behind the store the topology may be (None: the resident index's own bound;
    # timedelta(0): a fresh answer, waiting for a rebuild if the store moved)
    max_staleness: timedelta | None = None

    @property
    def filter(self) -> ImpactFilter:
        return ImpactFilter(self.depth, self.classes, self.types)


def resolve_failures(
    store: Store, refs: Iterable[str], state: ImpactState = ImpactState.DOWN
) -> dict[CiId, ImpactState]:
    """CI ids or unique names -> the failure map :func:`analyse_impact` takes."""
    if state is ImpactState.AT_RISK:
        raise ValidationError("a failed CI is down or degraded", field="state")
    out: dict[CiId, ImpactState] = {resolve_reference(store, ref).id: state for ref in refs}
    if not out:
        raise ValidationError("name at least one failed CI", field="refs")
    return out


def analyse_impact(
    store: Store,
    failures: Mapping[CiId, ImpactState],
    options: ImpactOptions = ImpactOptions(),
    *,
    resident: ResidentIndex | None = None,
) -> ImpactReport:
    """Everything the failure of ``failures`` affects, who to tell, and what changed.
    ``resident``: the server's resident index (default: a synchronous one, always fresh)."""
    if not 1 <= options.first <= Limits.MAX_PAGE:
        raise ValidationError(f"first must be 1..{Limits.MAX_PAGE}", field="first")
    snapshot = _snapshot(store, resident, options.max_staleness, failures)
    index = snapshot.index
    topo = index.topology
    started = options.at or utcnow()
    seeds = {topo.number(ci): state for ci, state in failures.items()}
    radius = propagate(
        index,
        seeds,
        filter=options.filter,
        baseline=_baseline(index) if options.use_current_status else None,
    )
    kinds = _Kinds.of(index, store)
    nodes = radius.nodes
    classes = topo.classes[nodes]
    codes = radius.codes(nodes)
    is_failed = np.isin(nodes, np.fromiter(seeds, dtype=np.int32, count=len(seeds)))
    people = kinds.people[classes]
    things = nodes[~people & ~is_failed]
    services = nodes[kinds.service[classes]]
    users = nodes[classes == kinds.user]
    groups = nodes[classes == kinds.group]
    things_codes = codes[~people & ~is_failed]

    windows = store.maintenance_windows(at=started)
    in_window = {w.ci for w in windows}
    all_planned = options.what_if or all(ci in in_window for ci in failures)

    # One read of the CIs this answer shows or needs fields of.
    first = options.first
    shown_things = things[:first]
    shown_users = users[:first]
    page = [*shown_things.tolist(), *shown_users.tolist(), *seeds]
    paths = dict(zip(page, radius.paths(page), strict=True))
    read: set[int] = set(seeds)
    read.update(int(n) for n in services[:_READ_CAP])
    read.update(int(n) for n in things[:_READ_CAP])
    for hops in paths.values():
        read.update(h.node for h in hops)
    duty = _duty_edges(index)
    duty_hit = duty[0][radius.codes(duty[1]) > 0] if duty[0].shape[0] else duty[0]
    read.update(int(n) for n in duty_hit)
    cis = store.get_cis([topo.ids[n] for n in sorted(read)])
    explain = _Explainer(
        index, radius, cis=cis, store=store, in_window=in_window, all_planned=all_planned
    )

    failed = tuple(explain.affected(n, what_if=options.what_if) for n in sorted(seeds))
    affected_items = tuple(explain.affected(int(n)) for n in shown_things)
    service_items = sorted(
        (explain.service(int(n)) for n in services[:_READ_CAP]),
        key=lambda s: (
            s.criticality or 5,
            -list(ImpactState).index(s.state),
            s.distance,
            s.name,
        ),
    )
    user_items = tuple(explain.user(int(n), paths[int(n)]) for n in shown_users)
    teams, complete = _teams(
        index, radius, cis=cis, seeds=seeds, things=things, services=services, duty=duty
    )
    lost = tuple(
        explain.affected(int(n)) for n in things[things_codes == 1][: Limits.MAX_PAGE // 100]
    )
    changes: tuple[ScoredChange, ...] = ()
    if not options.what_if:
        changes = tuple(
            _changes(store, index, seeds, started=started, options=options, cis=cis)[
                : options.max_changes
            ]
        )

    # a what-if is all planned, yet its priority says what it would be as a surprise
    surprise = [s for s in service_items if options.what_if or not s.planned]
    down_services = [s for s in surprise if s.state is ImpactState.DOWN]
    degraded_services = [s for s in surprise if s.state is ImpactState.DEGRADED]
    rules = options.priority_rules
    priority = suggest_priority(
        users=int(users.shape[0]),
        services_down=len(down_services),
        services_degraded=len(degraded_services),
        top_tier_hit=any(
            s.criticality is not None and s.criticality <= rules.top_criticality
            for s in (*down_services, *degraded_services)
        ),
        anything_down=bool((codes[~is_failed] == 3).any()) or not things.shape[0],
        anything_degraded=bool((codes[~is_failed] == 2).any()),
        planned=all_planned and not options.what_if,
        rules=rules,
    )
    counts = Counts(
        affected=int(things.shape[0]),
        down=int((things_codes == 3).sum()),
        degraded=int((things_codes == 2).sum()),
        at_risk=int((things_codes == 1).sum()),
        services=int(services.shape[0]),
        users=int(users.shape[0]),
        groups=int(groups.shape[0]),
        planned=sum(1 for n in things[:_READ_CAP] if explain.planned(int(n))),
    )
    generation = topo.generation
    return ImpactReport(
        failed=failed,
        affected=ImpactPage(affected_items, counts.affected, _cursor(generation, first, things)),
        services=ImpactPage(tuple(service_items), int(services.shape[0]), None),
        users=ImpactPage(user_items, counts.users, _cursor(generation, first, users)),
        user_groups=tuple(topo.ids[int(n)] for n in groups[:first]),
        teams=teams,
        teams_complete=complete,
        lost_redundancy=lost,
        changes=changes,
        priority=priority,
        counts=counts,
        started=started,
        what_if=options.what_if,
        filter=options.filter,
        freshness=freshness(snapshot, store),
        radius=radius,
    )


def affected_page(
    store: Store, report: ImpactReport, *, first: int = 100, after: str | None = None
) -> ImpactPage[AffectedCi]:
    """A further page of ``report``'s affected CIs (people and failed CIs excluded)."""
    radius = _radius(report)
    index = radius.index
    kinds = _Kinds.of(index, store)
    nodes = radius.nodes
    failed = np.fromiter(radius.failed, dtype=np.int32, count=len(radius.failed))
    things = nodes[~kinds.people[index.topology.classes[nodes]] & ~np.isin(nodes, failed)]
    start = _offset(index, after)
    page = things[start : start + first]
    explain = _explainer_for(store, report, page)
    items = tuple(explain.affected(int(n)) for n in page)
    return ImpactPage(items, int(things.shape[0]), _cursor(index.generation, start + first, things))


def users_page(
    store: Store, report: ImpactReport, *, first: int = 100, after: str | None = None
) -> ImpactPage[AffectedUser]:
    """A further page of ``report``'s affected users, nearest first."""
    radius = _radius(report)
    index = radius.index
    kinds = _Kinds.of(index, store)
    nodes = radius.nodes
    users = nodes[index.topology.classes[nodes] == kinds.user]
    start = _offset(index, after)
    page = users[start : start + first]
    explain = _explainer_for(store, report, page)
    items = tuple(explain.user(int(n), radius.path(int(n))) for n in page)
    return ImpactPage(items, int(users.shape[0]), _cursor(index.generation, start + first, users))


# --------------------------------------------------------------------------------------------
# Incidents


def open_incident(
    store: Store, incident: Incident, options: ImpactOptions = ImpactOptions()
) -> Incident:
    """Store ``incident`` with the impact answer it is opened with."""
    return _store_answer(store, incident, options)


def refresh_incident(
    store: Store, incident_id: str, options: ImpactOptions = ImpactOptions()
) -> Incident:
    """Recompute and store the impact answer of an existing incident."""
    incident = store.get_incident(incident_id)
    if incident is None:
        raise NotFoundError(f"no incident {incident_id!r}")
    return _store_answer(store, incident, options)


def _store_answer(store: Store, incident: Incident, options: ImpactOptions) -> Incident:
    if not incident.affected:
        raise ValidationError("an incident names the CIs that failed", field="affected")
    report = analyse_impact(
        store,
        dict.fromkeys(incident.affected, ImpactState.DOWN),
        replace(options, at=options.at or incident.opened_at),
    )
    stored = incident.model_copy(update={"impact": report.as_json(), "impact_at": utcnow()})
    store.put_incident(stored)
    return stored


# --------------------------------------------------------------------------------------------
# Common causes


@dataclass(frozen=True, slots=True)
class Cause:
    id: CiId
    name: str
    ci_class: str
    status: Status
    explains: tuple[str, ...]  # the failures (CI ids or incident ids) it is upstream of
    distance: int  # hops down to the farthest failure it explains
    changes: tuple[ScoredChange, ...]


@dataclass(frozen=True, slots=True)
class CausesReport:
    failures: tuple[str, ...]
    causes: tuple[Cause, ...]
    major_incident: Cause | None  # one cause explaining several open incidents
    freshness: Freshness

    def as_json(self) -> dict[str, object]:
        from impact.report import _plain

        return {
            "failures": list(self.failures),
            "causes": [_plain(c) for c in self.causes],
            "major_incident": _plain(self.major_incident) if self.major_incident else None,
            "freshness": self.freshness.as_json(),
        }


def common_causes(
    store: Store,
    failures: Mapping[str, Sequence[CiId]],
    *,
    at: datetime | None = None,
    depth: int | None = Limits.MAX_DEPTH,
    limit: int = 10,
    change_window: timedelta = DEFAULT_CHANGE_WINDOW,
    major_after: int | None = None,
    resident: ResidentIndex | None = None,
    max_staleness: timedelta | None = None,
) -> CausesReport:
    """The upstream CIs that the failures (label -> failed CIs) share, ranked by how many
    each explains, with recent changes on them. With ``major_after``, a cause explaining at
    least that many failures is proposed as a major incident. ``resident`` and
    ``max_staleness`` as for :func:`analyse_impact`."""
    snapshot = _snapshot(
        store, resident, max_staleness, [ci for cis in failures.values() for ci in cis]
    )
    index = snapshot.index
    topo = index.topology
    labels = list(failures)
    nodes = [[topo.number(ci) for ci in failures[label]] for label in labels]
    found = shared_causes(index, nodes, depth=depth, limit=limit)
    ids = [topo.ids[c.node] for c in found]
    cis = store.get_cis(ids)
    started = at or utcnow()
    history = store.history(ids, since=started - change_window, until=started, limit=10_000)
    causes = []
    for c, ci_id in zip(found, ids, strict=True):
        ci = cis.get(ci_id)
        scored = score_changes(
            [h for h in history if h.ci == ci_id],
            {ci_id: 0},
            started,
            names=_names(cis),
            itself="the suspected cause itself",
        )
        causes.append(
            Cause(
                id=ci_id,
                name=ci.name if ci else ci_id,
                ci_class=ci.ci_class if ci else topo.class_names[topo.classes[c.node]],
                status=ci.status if ci else STATUS_ORDER[int(topo.statuses[c.node])],
                explains=tuple(labels[i] for i in c.explains),
                distance=c.distance,
                changes=tuple(scored[:5]),
            )
        )
    major = None
    if major_after is not None and causes and len(causes[0].explains) >= major_after:
        major = causes[0]
    return CausesReport(
        tuple(labels),
        tuple(causes),
        major,
        freshness(snapshot, store),
    )


def incident_causes(
    store: Store,
    incident_ids: Sequence[str] | None = None,
    *,
    major_after: int = 2,
    limit: int = 10,
) -> CausesReport:
    """:func:`common_causes` of incidents (default: every open one). Several open incidents
    sharing one cause make that cause a major-incident candidate."""
    if incident_ids is None:
        incidents = store.list_incidents(open_only=True)
    else:
        incidents = []
        for incident_id in incident_ids:
            found = store.get_incident(incident_id)
            if found is None:
                raise NotFoundError(f"no incident {incident_id!r}")
            incidents.append(found)
    failures = {i.id: list(i.affected) for i in incidents if i.affected}
    if not failures:
        raise ValidationError("no incidents with failed CIs to compare", field="incidents")
    opened = max(i.opened_at for i in incidents)
    open_count = sum(1 for i in incidents if i.status is IncidentStatus.OPEN)
    return common_causes(
        store,
        failures,
        at=opened,
        limit=limit,
        major_after=major_after if open_count >= major_after else None,
    )


# --------------------------------------------------------------------------------------------
# Internals


def _snapshot(
    store: Store,
    resident: ResidentIndex | None,
    max_staleness: timedelta | None,
    failed: Iterable[CiId],
) -> Snapshot:
    """The index to answer from: the caller's resident index (its bound, unless overridden),
    else the store's synchronous one. A snapshot behind the store that does not know a failed
    CI (created since) cannot answer: then a fresh one is waited for."""
    chosen = resident if resident is not None else resident_for(store)
    snapshot = chosen.get(max_staleness=max_staleness)
    if not snapshot.fresh:
        try:
            for ci in failed:
                snapshot.index.topology.number(ci)
        except NotFoundError:
            return chosen.get(max_staleness=timedelta(0))
    return snapshot


def freshness(snapshot: Snapshot, store: Store) -> Freshness:
    """The answer's :class:`~impact.report.Freshness` from the snapshot it used."""
    return Freshness(
        generation=snapshot.generation,
        as_of=snapshot.as_of,
        store=store.describe(),
        current_generation=snapshot.store_generation,
        checked_at=snapshot.checked_at,
        fresh=snapshot.fresh,
        behind_since=snapshot.behind_since,
    )


@dataclass(frozen=True, slots=True)
class _Kinds:
    people: np.ndarray  # class number -> bool
    service: np.ndarray
    user: int
    group: int

    @classmethod
    def of(cls, index: ImpactIndex, store: Store) -> _Kinds:
        names = index.topology.class_names
        registry = store.registry
        people = np.zeros(len(names) + 1, dtype=np.bool_)  # class -1 lands on the last slot
        service = np.zeros(len(names) + 1, dtype=np.bool_)
        for i, name in enumerate(names):
            if name in registry.classes:
                category = registry.classes[name].category
                people[i] = category == "people"
                service[i] = category == "service"
        user = names.index("user") if "user" in names else -2
        group = names.index("group") if "group" in names else -2
        return cls(people, service, user, group)


_BASELINES: weakref.WeakKeyDictionary[ImpactIndex, I8] = weakref.WeakKeyDictionary()
_DUTIES: weakref.WeakKeyDictionary[ImpactIndex, tuple[I32, I32, I32]] = weakref.WeakKeyDictionary()
_BASE_CODE = {Status.DOWN: 3, Status.MAINTENANCE: 3, Status.RETIRED: 3, Status.DEGRADED: 2}


def _baseline(index: ImpactIndex) -> I8 | None:
    """CIs already down or degraded before this failure (their status in the CMDB)."""
    if index.groups.count == 0:
        return None
    found = _BASELINES.get(index)
    if found is None:
        table = np.array([_BASE_CODE.get(s, 0) for s in STATUS_ORDER], dtype=np.int8)
        found = table[index.topology.statuses]
        _BASELINES[index] = found
    return found


def _duty_edges(index: ImpactIndex) -> tuple[I32, I32, I32]:
    """(source, target, role 0 owner / 1 support) of every OWNS and SUPPORTS relationship."""
    found = _DUTIES.get(index)
    if found is None:
        topo = index.topology
        roles = np.full(len(topo.type_names) + 1, -1, dtype=np.int32)
        for number, name in enumerate(("OWNS", "SUPPORTS")):
            if name in topo.type_names:
                roles[topo.type_names.index(name)] = number
        role = roles[topo.rel_types]
        keep = role >= 0
        found = (topo.src[keep], topo.dst[keep], role[keep])
        _DUTIES[index] = found
    return found


class _Explainer:
    """Turns node numbers into answer values, from one batch of CIs read from the store."""

    def __init__(
        self,
        index: ImpactIndex,
        radius: BlastRadius,
        *,
        cis: Mapping[CiId, ConfigurationItem],
        store: Store,
        in_window: set[CiId],
        all_planned: bool,
    ) -> None:
        self.index = index
        self.radius = radius
        self.cis = cis
        self.registry = store.registry
        self.in_window = in_window
        self.all_planned = all_planned

    def name(self, node: int) -> str:
        ci_id = self.index.topology.ids[node]
        ci = self.cis.get(ci_id)
        return ci.name if ci is not None else ci_id

    def ci_class(self, node: int) -> str:
        number = int(self.index.topology.classes[node])
        return self.index.topology.class_names[number] if number >= 0 else "other"

    def planned(self, node: int) -> bool:
        return self.all_planned or self.index.topology.ids[node] in self.in_window

    def state(self, node: int) -> ImpactState:
        state = self.radius.state_of(node)
        assert state is not None, "only affected CIs are explained"
        return state

    def steps(self, node: int) -> tuple[PathStep, ...]:
        ids = self.index.topology.ids
        return tuple(
            PathStep(
                ids[h.node],
                self.name(h.node),
                h.relationship,
                h.direction.value if h.direction else None,
                h.group,
            )
            for h in self.radius.path(node)
        )

    def reason(self, node: int, path: tuple[PathStep, ...], *, what_if: bool = False) -> str:
        state = self.state(node)
        if len(path) == 1:
            failed = self.radius.failed.get(node)
            word = failed.value if failed else state.value
            if state.value != word:
                return f"reported {word}; {state.value} through its dependencies"
            return f"planned action: {word}" if what_if else f"reported {word}"
        rule = self.radius.rule(node)
        if rule is not None:
            return rule
        step, nxt = path[0], path[1]
        assert step.relationship is not None
        rel = self.registry.relationship_types.get(step.relationship)
        if rel is None:
            phrase = step.relationship
        elif step.direction == Direction.IN.value:
            phrase = rel.reverse
        else:
            phrase = rel.forward
        parent = self.radius.state_of(self.index.topology.number(nxt.id))
        shown = parent.value if parent else "failed"
        return f"{state.value.replace('_', ' ')}: {phrase.lower()} {nxt.name} ({shown})"

    def affected(self, node: int, *, what_if: bool = False) -> AffectedCi:
        path = self.steps(node)
        return AffectedCi(
            id=self.index.topology.ids[node],
            name=self.name(node),
            ci_class=self.ci_class(node),
            state=self.state(node),
            distance=self.radius.distance_of(node),
            path=path,
            reason=self.reason(node, path, what_if=what_if),
            rule=self.radius.rule(node),
            planned=self.planned(node),
        )

    def service(self, node: int) -> AffectedService:
        ci = self.cis.get(self.index.topology.ids[node])
        rule = self.radius.rule(node)
        return AffectedService(
            id=self.index.topology.ids[node],
            name=self.name(node),
            ci_class=self.ci_class(node),
            state=self.state(node),
            distance=self.radius.distance_of(node),
            criticality=ci.criticality if ci else None,
            planned=self.planned(node),
            reason=rule or f"{self.state(node).value}, {self.radius.distance_of(node)} hops away",
        )

    def user(self, node: int, hops: Sequence[object]) -> AffectedUser:
        from impact.propagation import Hop

        via = hops[1] if len(hops) > 1 else None
        via_node = via.node if isinstance(via, Hop) else None
        ids = self.index.topology.ids
        return AffectedUser(
            id=ids[node],
            name=self.name(node),
            state=self.state(node),
            distance=self.radius.distance_of(node),
            via=ids[via_node] if via_node is not None else None,
            via_name=self.name(via_node) if via_node is not None else None,
        )


class _Found:
    """A team to notify as it is found: its roles, the CIs it answers for (in the order they
    were looked at; only the first few kept as examples once the count is what matters)."""

    __slots__ = ("members", "more", "roles", "seen", "team_id")

    def __init__(self, team_id: CiId | None) -> None:
        self.team_id = team_id
        self.roles: set[str] = set()
        self.members: list[int] = []  # node numbers
        self.seen: set[int] = set()
        self.more = 0  # members counted beyond ``members``

    def add(self, role: str, node: int) -> None:
        self.roles.add(role)
        if node not in self.seen:
            self.seen.add(node)
            self.members.append(node)

    def add_many(self, roles: Iterable[str], nodes: I32) -> None:
        """``nodes`` (unique, in order) answer to this team in ``roles``; those it already
        counts are skipped, and of the rest only the first few are kept by name."""
        self.roles.update(roles)
        if self.seen:
            nodes = nodes[~np.isin(nodes, np.fromiter(self.seen, np.int64, len(self.seen)))]
        kept = nodes[: max(0, _EXAMPLES - len(self.members))].tolist()
        self.members.extend(kept)
        self.seen.update(kept)
        self.more += int(nodes.shape[0]) - len(kept)


_EXAMPLES = 5  # CIs named per team
_TEAMS_CAP = Limits.MAX_PAGE  # teams listed at most, those answering for most CIs first
_ROLES = ("owner", "support")  # role numbers of duty edges and team columns


def _teams(
    index: ImpactIndex,
    radius: BlastRadius,
    *,
    cis: Mapping[CiId, ConfigurationItem],
    seeds: Mapping[int, ImpactState],
    things: I32,
    services: I32,
    duty: tuple[I32, I32, I32],
) -> tuple[tuple[Team, ...], bool]:
    """The teams to notify: team CIs that own or support a failed or affected CI, and the
    teams named in the ``owner`` and ``support_group`` fields of the failed CIs, the affected
    services and the other affected CIs (people aside), in that order. Complete when the
    topology carries every CI's teams (both stores; else only the CIs read are looked at)
    and no more than ``_TEAMS_CAP`` teams are found; the answer says which."""
    ids = index.topology.ids
    found: dict[str, _Found] = {}

    src, dst, role = duty
    if src.shape[0]:
        hit = radius.codes(dst) > 0
        for s, d, r in zip(src[hit].tolist(), dst[hit].tolist(), role[hit].tolist(), strict=True):
            team = cis.get(ids[s])
            name = team.name if team else ids[s]
            found.setdefault(name, _Found(ids[s])).add(_ROLES[r], d)
    columns = index.topology.teams
    if columns is None:
        looked = [*sorted(seeds), *services[:_READ_CAP].tolist(), *things[:_READ_CAP].tolist()]
        for node in looked:
            ci = cis.get(ids[node])
            if ci is None:
                continue
            if ci.owner:
                found.setdefault(ci.owner, _Found(None)).add("owner", node)
            if ci.support_group:
                found.setdefault(ci.support_group, _Found(None)).add("support", node)
        complete = things.shape[0] <= _READ_CAP and services.shape[0] <= _READ_CAP
    else:
        _field_teams(found, columns, seeds, services, things)
        complete = True
    teams = tuple(
        sorted(
            (
                Team(
                    name,
                    f.team_id,
                    tuple(sorted(f.roles)),
                    len(f.members) + f.more,
                    tuple(ids[n] for n in f.members[:_EXAMPLES]),
                )
                for name, f in found.items()
            ),
            key=lambda t: (-t.cis, t.name),
        )
    )
    if len(teams) > _TEAMS_CAP:  # the teams answering for most CIs; the answer says so
        return teams[:_TEAMS_CAP], False
    return teams, complete


def _field_teams(
    found: dict[str, _Found],
    columns: TeamColumns,
    seeds: Mapping[int, ImpactState],
    services: I32,
    things: I32,
) -> None:
    """:func:`_teams` from the topology's per-CI teams: every CI looked at, as arrays. A CI
    whose owner and support group are one team counts once for it, in both roles."""
    order = np.concatenate((np.array(sorted(seeds), dtype=np.int32), services, things))
    _, first = np.unique(order, return_index=True)
    looked = order[np.sort(first)]  # each CI once, where it was first looked at
    team_parts, at_parts, role_parts = [], [], []
    for number, column in enumerate((columns.owner, columns.support)):
        named = column[looked]
        where = np.flatnonzero(named >= 0)
        team_parts.append(named[where].astype(np.int64))
        at_parts.append(where.astype(np.int64))
        role_parts.append(np.full(where.shape[0], number, dtype=np.int64))
    team, at, role = (np.concatenate(parts) for parts in (team_parts, at_parts, role_parts))
    if not team.shape[0]:
        return
    roles: dict[int, list[str]] = {}
    for key in np.unique(team * 2 + role).tolist():
        roles.setdefault(key // 2, []).append(_ROLES[key % 2])
    size = int(looked.shape[0])
    pairs = np.unique(team * size + at)  # each (team, CI) once: by team, in the order looked at
    teams, starts = np.unique(pairs // size, return_index=True)
    ends = [*starts[1:].tolist(), int(pairs.shape[0])]
    members = looked[pairs % size]
    for t, begin, end in zip(teams.tolist(), starts.tolist(), ends, strict=True):
        found.setdefault(columns.names[t], _Found(None)).add_many(roles[t], members[begin:end])


def _changes(
    store: Store,
    index: ImpactIndex,
    seeds: Mapping[int, ImpactState],
    *,
    started: datetime,
    options: ImpactOptions,
    cis: Mapping[CiId, ConfigurationItem],
) -> list[ScoredChange]:
    """Changes in the window on the failed CIs and everything they depend on."""
    nodes, hops = upstream(index, list(seeds), options.depth or Limits.MAX_DEPTH)
    order = np.argsort(hops, kind="stable")[:_READ_CAP]
    ids = index.topology.ids
    distances = {ids[int(n)]: int(h) for n, h in zip(nodes[order], hops[order], strict=True)}
    history = store.history(
        list(distances), since=started - options.change_window, until=started, limit=10_000
    )
    names = _names(cis)
    missing = [h.ci for h in history if h.ci not in names]
    if missing:
        names.update(_names(store.get_cis(missing)))
    return score_changes(history, distances, started, names=names)


def _names(cis: Mapping[CiId, ConfigurationItem]) -> dict[CiId, str]:
    return {ci_id: ci.name for ci_id, ci in cis.items()}


def _cursor(generation: str, offset: int, items: np.ndarray) -> str | None:
    return f"{generation}:{offset}" if offset < items.shape[0] else None


def _offset(index: ImpactIndex, after: str | None) -> int:
    if after is None:
        return 0
    generation, _, offset = after.rpartition(":")
    if generation != index.generation or not offset.isdigit():
        raise ValidationError(
            "this cursor is from another answer or an older topology; start again",
            field="after",
        )
    return int(offset)


def _radius(report: ImpactReport) -> BlastRadius:
    if report.radius is None:
        raise ValidationError("this report was loaded without its blast radius; recompute it")
    return report.radius


def _explainer_for(store: Store, report: ImpactReport, page: I32) -> _Explainer:
    radius = _radius(report)
    ids = radius.index.topology.ids
    read = {int(n) for n in page}
    for n in page:
        read.update(h.node for h in radius.path(int(n)))
    cis = store.get_cis([ids[n] for n in sorted(read)])
    windows = store.maintenance_windows(at=report.started)
    return _Explainer(
        radius.index,
        radius,
        cis=cis,
        store=store,
        in_window={w.ci for w in windows},
        all_planned=report.what_if or all(f.planned for f in report.failed),
    )


__all__ = [
    "STATES",
    "Cause",
    "CausesReport",
    "ImpactOptions",
    "affected_page",
    "analyse_impact",
    "common_causes",
    "incident_causes",
    "open_incident",
    "refresh_incident",
    "resolve_failures",
    "users_page",
]
