"""The impact answer as plain frozen values, cheap to serialise (``as_json``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

from graph.model import CiId
from impact.changes import ScoredChange
from impact.index import ImpactFilter
from impact.priority import Priority
from impact.propagation import BlastRadius, ImpactState

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ImpactPage(Generic[T]):
    items: tuple[T, ...]
    total: int
    next_cursor: str | None  # pass as ``after`` for the next page; None on the last page


@dataclass(frozen=True, slots=True)
class PathStep:
    """One CI on an explanation path, and the relationship to the next one (toward the
    failure). ``direction`` ``out``: stored ``this -[relationship]-> next``; ``in``: the
    reverse. The last step (the failed CI) has no relationship."""

    id: CiId
    name: str
    relationship: str | None = None
    direction: str | None = None
    group: str | None = None  # the redundancy group that decided, if any


@dataclass(frozen=True, slots=True)
class AffectedCi:
    id: CiId
    name: str
    ci_class: str
    state: ImpactState
    distance: int
    path: tuple[PathStep, ...]
    reason: str
    rule: str | None = None  # the quorum rule, when a redundancy group decided
    planned: bool = False  # inside a maintenance window (or the whole failure is planned)


@dataclass(frozen=True, slots=True)
class AffectedService:
    id: CiId
    name: str
    ci_class: str
    state: ImpactState
    distance: int
    criticality: int | None
    planned: bool
    reason: str


@dataclass(frozen=True, slots=True)
class AffectedUser:
    id: CiId
    name: str
    state: ImpactState
    distance: int
    via: CiId | None  # the service or group through which the failure reaches them
    via_name: str | None


@dataclass(frozen=True, slots=True)
class Team:
    """Who to notify: an owner or support group of failed or affected CIs."""

    name: str
    id: CiId | None  # the group CI, when the team is one
    roles: tuple[str, ...]  # "owner", "support"
    cis: int  # failed or affected CIs it is responsible for (among those looked at)
    examples: tuple[CiId, ...]


@dataclass(frozen=True, slots=True)
class Counts:
    affected: int  # CIs, not people, not the failed ones
    down: int
    degraded: int
    at_risk: int
    services: int
    users: int
    groups: int
    planned: int


@dataclass(frozen=True, slots=True)
class Freshness:
    """Which topology the answer was computed on, and how it compares with the store.

    ``generation`` and ``as_of``: the snapshot the answer used. ``current_generation``: the
    store's generation when it was checked for this answer, at ``checked_at``. ``fresh``: the
    two were equal (the answer includes every structural or status write committed before
    ``checked_at``). Otherwise ``behind_since`` is the last moment the snapshot was known to
    match the store: the first write it misses committed after that, so the answer is at most
    ``checked_at - behind_since`` behind (bounded by the resident index's ``max_staleness``),
    and a refresh is under way.
    """

    generation: str
    as_of: datetime
    store: str
    current_generation: str | None = None
    checked_at: datetime | None = None
    fresh: bool = True
    behind_since: datetime | None = None

    @property
    def behind_seconds(self) -> float:
        """At most how far behind the store the answer is, in seconds (0 when fresh)."""
        if self.behind_since is None or self.checked_at is None:
            return 0.0
        return (self.checked_at - self.behind_since).total_seconds()

    def as_json(self) -> dict[str, Any]:
        return {**_plain(self), "behind_seconds": round(self.behind_seconds, 3)}


@dataclass(frozen=True, eq=False)
class ImpactReport:
    failed: tuple[AffectedCi, ...]
    affected: ImpactPage[AffectedCi]
    services: ImpactPage[AffectedService]
    users: ImpactPage[AffectedUser]
    user_groups: tuple[CiId, ...]
    teams: tuple[Team, ...]
    teams_complete: bool  # False when only the nearest CIs' owner fields were read
    lost_redundancy: tuple[AffectedCi, ...]  # at risk: one more failure may hurt
    changes: tuple[ScoredChange, ...]
    priority: Priority
    counts: Counts
    started: datetime
    what_if: bool
    filter: ImpactFilter
    freshness: Freshness
    radius: BlastRadius | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict: ``affected`` and ``users.items`` are the first pages."""
        return {
            "what_if": self.what_if,
            "started": self.started.isoformat(),
            "failed": [_plain(x) for x in self.failed],
            "counts": _plain(self.counts),
            "affected": [_plain(x) for x in self.affected.items],
            "affected_total": self.affected.total,
            "affected_next": self.affected.next_cursor,
            "services": [_plain(x) for x in self.services.items],
            "services_total": self.services.total,
            "users": {
                "count": self.users.total,
                "items": [_plain(x) for x in self.users.items],
                "next": self.users.next_cursor,
            },
            "user_groups": list(self.user_groups),
            "teams": [_plain(x) for x in self.teams],
            "teams_complete": self.teams_complete,
            "lost_redundancy": [_plain(x) for x in self.lost_redundancy],
            "changes": [_plain(x) for x in self.changes],
            "priority": _plain(self.priority),
            "filter": {
                "depth": self.filter.depth,
                "classes": sorted(self.filter.classes),
                "types": sorted(self.filter.types),
            },
            "freshness": self.freshness.as_json(),
        }


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in fields(value):
            key = "class" if f.name == "ci_class" else f.name
            out[key] = _plain(getattr(value, f.name))
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
