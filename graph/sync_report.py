"""What an import run did (or, dry, would do): counts, and the items behind them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from graph.model import CiId, RunStatus

MAX_LISTED: Final = 1_000
"""Items listed per kind in a report; the counts are always exact."""

MAX_MESSAGES: Final = 200
"""Errors, warnings and conflicts kept on the stored ImportRun (``cmdb runs``, ``cmdb review``)."""


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str  # a tracked field, or "attributes.<name>"
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class ItemUpdate:
    """A CI (id) or relationship (``source -[TYPE]-> target``) and what changes in it."""

    item: str
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True, slots=True)
class Conflict:
    """An item the engine would not place alone: it names several CIs. Nothing was written for
    it; it waits on the review list."""

    item: str  # the source's key (or the relationship, for an ambiguous reference)
    location: str
    reason: str  # "serial_number 'cz1234'", "name 'redis' and class kubernetes_service"
    candidates: tuple[CiId, ...]

    def describe(self) -> str:
        return (
            f"{self.location}: item {self.item!r} matches {len(self.candidates)} CIs by "
            f"{self.reason} ({', '.join(self.candidates)}); not written, review it"
        )


@dataclass(frozen=True, slots=True)
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    absent: int = 0  # no longer reported, waiting for the grace period
    removed: int = 0  # CIs retired / relationships deleted by this run

    def as_json(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "absent": self.absent,
            "removed": self.removed,
        }


@dataclass(frozen=True, slots=True)
class RunReport:
    """The outcome of one import run. ``status`` is what the stored ImportRun says; a dry run
    reports what a real run would have done and stores nothing."""

    run_id: str
    source: str
    format: str
    status: RunStatus
    dry_run: bool
    started_at: datetime
    finished_at: datetime
    cis: Counts
    relationships: Counts
    created: tuple[str, ...] = ()  # CI ids
    updated: tuple[ItemUpdate, ...] = ()  # CIs
    absent: tuple[str, ...] = ()  # the source's keys for CIs
    retired: tuple[CiId, ...] = ()
    created_relationships: tuple[str, ...] = ()
    updated_relationships: tuple[ItemUpdate, ...] = ()
    absent_relationships: tuple[str, ...] = ()
    deleted_relationships: tuple[str, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    conflict_count: int = 0
    placeholders: tuple[CiId, ...] = ()
    placeholder_count: int = 0
    warnings: tuple[str, ...] = ()
    warning_count: int = 0
    errors: tuple[str, ...] = ()
    error_count: int = 0
    stopped: str | None = None  # why the run stopped before removing anything
    external_changes: int = 0

    @property
    def ok(self) -> bool:
        """Succeeded (or partial), without errors and not stopped: exit code 0."""
        return self.status in (RunStatus.SUCCEEDED, RunStatus.PARTIAL) and not self.stopped

    def counts(self) -> dict[str, int]:
        """The run's totals over CIs and relationships (what ``--json`` leads with)."""
        c, r = self.cis, self.relationships
        return {
            "created": c.created + r.created,
            "updated": c.updated + r.updated,
            "unchanged": c.unchanged + r.unchanged,
            "absent": c.absent + r.absent,
            "retired": c.removed,
            "deleted": r.removed,
            "conflicts": self.conflict_count,
            "errors": self.error_count,
            "warnings": self.warning_count,
            "placeholders": self.placeholder_count,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "source": self.source,
            "format": self.format,
            "status": self.status.value,
            "dry_run": self.dry_run,
            "stopped": self.stopped,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            **self.counts(),
            "cis": self.cis.as_json(),
            "relationships": self.relationships.as_json(),
            "items": {
                "created": list(self.created),
                "updated": [_update_json(u) for u in self.updated],
                "absent": list(self.absent),
                "retired": list(self.retired),
                "created_relationships": list(self.created_relationships),
                "updated_relationships": [_update_json(u) for u in self.updated_relationships],
                "absent_relationships": list(self.absent_relationships),
                "deleted_relationships": list(self.deleted_relationships),
                "placeholders": list(self.placeholders),
                "conflicts": [
                    {
                        "item": c.item,
                        "location": c.location,
                        "reason": c.reason,
                        "candidates": list(c.candidates),
                    }
                    for c in self.conflicts
                ],
            },
            "messages": {"errors": list(self.errors), "warnings": list(self.warnings)},
            "listed_at_most": MAX_LISTED,
        }

    def messages(self) -> tuple[str, ...]:
        """Errors, conflicts and warnings for the stored run, prefixed by kind, capped."""
        lines = [f"error: {e}" for e in self.errors]
        if self.stopped:
            lines.insert(0, f"stopped: {self.stopped}")
        lines += [f"conflict: {c.describe()}" for c in self.conflicts]
        lines += [f"warning: {w}" for w in self.warnings]
        return tuple(lines[:MAX_MESSAGES])


def _update_json(update: ItemUpdate) -> dict[str, Any]:
    return {
        "item": update.item,
        "changes": {c.field: {"before": c.before, "after": c.after} for c in update.changes},
    }


@dataclass(slots=True)
class ReportBuilder:
    """Collects a report while a run goes; lists stop growing at MAX_LISTED."""

    cis: dict[str, int] = field(default_factory=dict)
    rels: dict[str, int] = field(default_factory=dict)
    lists: dict[str, list[Any]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, what: str, n: int = 1) -> None:
        target = self.cis if kind == "ci" else self.rels
        target[what] = target.get(what, 0) + n

    def add(self, name: str, item: Any) -> None:
        self.totals[name] = self.totals.get(name, 0) + 1
        listed = self.lists.setdefault(name, [])
        if len(listed) < MAX_LISTED:
            listed.append(item)

    def listed(self, name: str) -> tuple[Any, ...]:
        return tuple(self.lists.get(name, ()))

    def total(self, name: str) -> int:
        return self.totals.get(name, 0)

    def counts(self, kind: str) -> Counts:
        source = self.cis if kind == "ci" else self.rels
        return Counts(
            created=source.get("created", 0),
            updated=source.get("updated", 0),
            unchanged=source.get("unchanged", 0),
            absent=source.get("absent", 0),
            removed=source.get("removed", 0),
        )
