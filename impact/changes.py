"""Rank the changes that may have caused a failure, each with a stated reason."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from graph.model import Change, ChangeKind, CiId

# How suspicious a kind of change is, before time and distance (a deployment most).
KIND_WEIGHTS: Mapping[ChangeKind, float] = {
    ChangeKind.DEPLOYMENT: 1.0,
    ChangeKind.CHANGE_REQUEST: 0.9,
    ChangeKind.UPDATED: 0.8,
    ChangeKind.RETIRED: 0.9,
    ChangeKind.DELETED: 0.9,
    ChangeKind.UNRELATED: 0.8,
    ChangeKind.RELATED: 0.7,
    ChangeKind.RELATIONSHIP_UPDATED: 0.7,
    ChangeKind.ABSENT: 0.6,
    ChangeKind.CREATED: 0.5,
}
# Fields whose change is a symptom of the failure, not a cause of it.
SYMPTOM_FIELDS = frozenset({"status", "last_seen"})
SYMPTOM_WEIGHT = 0.1
PLANNED_WEIGHT = 0.6  # a planned change is less of a surprise than an unplanned one
HALF_LIFE = timedelta(hours=12)  # a change 12 h before the failure counts half


@dataclass(frozen=True, slots=True)
class ScoredChange:
    id: str
    ci: CiId
    at: datetime
    kind: ChangeKind
    summary: str
    score: float  # 0..100
    reason: str
    planned: bool
    distance: int  # hops upstream of the failed CI it is on (0: the failed CI itself)


def score_changes(
    changes: Sequence[Change],
    distances: Mapping[CiId, int],
    started: datetime,
    *,
    names: Mapping[CiId, str] | None = None,
    via: Mapping[CiId, str] | None = None,
    itself: str = "the failed CI itself",
) -> list[ScoredChange]:
    """Score each change by kind, time before ``started``, hops upstream, and planning.

    Parameters
    ----------
    changes : sequence of Change
        History entries in the window before the failure.
    distances : mapping of CI id to int
        Hops from each CI up to the nearest failed CI that depends on it (0: failed itself).
    started : datetime
        When the failure started.
    names, via : mappings, optional
        CI names, and the relationship by which a CI's failure reaches the failed CI, for
        the reason text.
    itself : str
        How the reason calls a CI at distance 0.

    Returns
    -------
    list of ScoredChange
        Highest score first (ties: most recent first).

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> from graph.model import Change, ChangeKind, CiId
    >>> t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    >>> deploy = Change(id="c1", ci=CiId("db"), at=t0 - timedelta(minutes=30),
    ...                 kind=ChangeKind.DEPLOYMENT, summary="db 5.2 -> 5.3")
    >>> [best] = score_changes([deploy], {CiId("db"): 1}, t0, via={CiId("db"): "DEPENDS_ON"})
    >>> best.score
    48.6
    >>> best.reason
    'deployment on db (1 hop upstream, via DEPENDS_ON), 30 min before the failure, unplanned'

    """
    out = []
    for change in changes:
        distance = distances.get(change.ci)
        if distance is None:
            continue
        before = started - change.at
        if before < timedelta(0):
            continue
        weight = KIND_WEIGHTS.get(change.kind, 0.5)
        what = change.kind.value.replace("_", " ")
        if change.kind is ChangeKind.UPDATED and change.field:
            what = f"{change.field} changed"
            if change.field in SYMPTOM_FIELDS:
                weight = SYMPTOM_WEIGHT
                what += " (a symptom more than a cause)"
        planned = change.planned
        recency = 0.5 ** (before / HALF_LIFE)
        score = 100 * weight * recency / (1 + distance) * (PLANNED_WEIGHT if planned else 1.0)
        name = (names or {}).get(change.ci, change.ci)
        if distance == 0:
            where = itself
        else:
            link = (via or {}).get(change.ci)
            hops = f"{distance} hop{'s' if distance > 1 else ''} upstream"
            where = f"{hops}, via {link}" if link else hops
        plan = "planned" if planned else "unplanned"
        if change.external_ref:
            plan += f" ({change.external_ref})"
        out.append(
            ScoredChange(
                id=change.id,
                ci=change.ci,
                at=change.at,
                kind=change.kind,
                summary=change.summary or _describe(change),
                score=round(score, 1),
                reason=f"{what} on {name} ({where}), {_ago(before)} before the failure, {plan}",
                planned=planned,
                distance=distance,
            )
        )
    out.sort(key=lambda c: (-c.score, -c.at.timestamp(), c.id))
    return out


def _describe(change: Change) -> str:
    if change.field:
        return f"{change.field}: {_short(change.before)} -> {_short(change.after)}"
    if change.relationship:
        s, t, d = change.relationship
        return f"{change.kind.value} {s} -{t}-> {d}"
    return change.kind.value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"
