"""The import engine: one run of one source, from parsed inventory to the store.

Whatever the format, an import is a *run* of a named *source* (``netbox``, ``k8s-prod``...):

1. **plan** (:func:`plan_import`, no writes): reconcile every item with the CIs already stored
   (``graph.sync_plan``: source records, then identification rules per class), merge what the
   source says field by field under the precedence rules (``graph.sync_rules``), and work out
   what the source stopped reporting;
2. **apply** (:func:`apply_plan`): upsert CIs, then relationships, in batches, each batch with
   the source records that remember it, in one store transaction; then the cleanup: mark
   absent what the source no longer reports, retire CIs and delete relationships absent for
   longer than the grace period (never when the run failed or was partial, and never more
   than the deletion guard allows).

:func:`run_import` does both and records the run (``ImportRun``); with ``dry_run=True`` it
stops after planning and writes nothing, so a dry run reports exactly what the run would do.
A run is idempotent (the same input twice changes nothing, the second time without a single
write) and resumable: killed half-way, the next run finds what was written through the
source records and finishes without duplicates. See ``docs/importing.md``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, TypeGuard, TypeVar, cast

from graph.model import (
    CiId,
    ConfigurationItem,
    ExternalChange,
    ImportRun,
    Relationship,
    RelKey,
    RunStatus,
    SourceRecord,
    WriteContext,
    utcnow,
)
from graph.store import Store
from graph.sync_plan import (
    ChunkPlan,
    Cleanup,
    IncomingCi,
    IncomingInventory,
    IncomingRelationship,
    Planner,
    RunOptions,
    relationship_key,
)
from graph.sync_report import (
    Conflict,
    Counts,
    FieldChange,
    ItemUpdate,
    RunReport,
)
from graph.sync_rules import DEFAULT_RULES, ReconciliationRules, load_rules

__all__ = [
    "BATCH_SIZE",
    "DEFAULT_GRACE",
    "Conflict",
    "Counts",
    "FieldChange",
    "IncomingCi",
    "IncomingInventory",
    "IncomingRelationship",
    "ItemUpdate",
    "Plan",
    "ReconciliationRules",
    "RunReport",
    "apply_plan",
    "load_rules",
    "new_run_id",
    "plan_import",
    "record_failed_run",
    "run_import",
]

BATCH_SIZE: Final = 5_000
"""CIs or relationships per store transaction."""

DEFAULT_GRACE: Final = timedelta(days=7)
"""How long a CI or relationship may be absent from its source before it is retired/deleted."""

DEFAULT_ACTOR: Final = "cmdb import"

Progress = Callable[[int], None]
"""Called with the number of items just handled (for a progress bar)."""

T = TypeVar("T")


def new_run_id(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Plan:
    """Everything one run would write, and the report it would make. Built by
    :func:`plan_import`; nothing in it has been written."""

    run_id: str
    source: str
    format: str
    now: datetime
    cis: tuple[ConfigurationItem, ...]
    ci_records: tuple[SourceRecord, ...]
    relationships: tuple[Relationship, ...]
    relationship_records: tuple[SourceRecord, ...]
    changes: tuple[ExternalChange, ...]
    absent_records: tuple[SourceRecord, ...]
    retire: tuple[CiId, ...]
    delete_relationships: tuple[RelKey, ...]
    forget: tuple[tuple[str, str], ...]
    report: RunReport
    options: RunOptions = field(repr=False, default=RunOptions(rules=DEFAULT_RULES))

    @property
    def writes(self) -> bool:
        """Would applying this plan change the store?"""
        return bool(
            self.cis
            or self.ci_records
            or self.relationships
            or self.relationship_records
            or self.changes
            or self.absent_records
            or self.retire
            or self.delete_relationships
            or self.forget
        )


def _options(
    rules: ReconciliationRules,
    grace: timedelta,
    placeholders: bool,
    allow_deletes: int | None,
    skip_unchanged: bool,
) -> RunOptions:
    return RunOptions(
        rules=rules,
        grace=grace,
        placeholders=placeholders,
        allow_deletes=allow_deletes,
        skip_unchanged=skip_unchanged,
    )


def plan_import(
    store: Store,
    inventory: IncomingInventory,
    *,
    source: str,
    format: str,
    allow_deletes: int | None = None,
    grace: timedelta = DEFAULT_GRACE,
    placeholders: bool = True,
    rules: ReconciliationRules = DEFAULT_RULES,
    skip_unchanged: bool = True,
    now: datetime | None = None,
    run_id: str | None = None,
) -> Plan:
    """What importing ``inventory`` as ``source`` would do. Reads the store, writes nothing."""
    now = now or utcnow()
    run_id = run_id or new_run_id(now)
    options = _options(rules, grace, placeholders, allow_deletes, skip_unchanged)
    planner = Planner(store, source=source, run_id=run_id, now=now, options=options)
    try:
        chunk = planner.plan_chunk(inventory)
        cleanup = planner.plan_cleanup()
    finally:
        planner.close()
    report = _report(planner, cleanup, source=source, format=format, started=now, dry_run=True)
    return Plan(
        run_id=run_id,
        source=source,
        format=format,
        now=now,
        cis=tuple(chunk.cis),
        ci_records=tuple(chunk.ci_records),
        relationships=tuple(chunk.relationships),
        relationship_records=tuple(chunk.relationship_records),
        changes=tuple(chunk.changes),
        absent_records=tuple(cleanup.absent_records),
        retire=tuple(cleanup.retire),
        delete_relationships=tuple(cleanup.delete_relationships),
        forget=tuple(cleanup.forget),
        report=report,
        options=options,
    )


def apply_plan(
    store: Store,
    plan: Plan,
    *,
    actor: str = DEFAULT_ACTOR,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> None:
    """Write a plan (upserts, then cleanup). A plan that failed or stopped writes nothing."""
    if plan.report.error_count or plan.report.stopped:
        return
    ctx = WriteContext(actor=actor, source=plan.source, run_id=plan.run_id, at=plan.now)
    chunk = ChunkPlan(
        cis=list(plan.cis),
        ci_records=list(plan.ci_records),
        relationships=list(plan.relationships),
        relationship_records=list(plan.relationship_records),
        changes=list(plan.changes),
    )
    _apply_chunk(store, chunk, ctx, batch_size, progress)
    _apply_cleanup(
        store,
        Cleanup(
            absent_records=list(plan.absent_records),
            retire=list(plan.retire),
            delete_relationships=list(plan.delete_relationships),
            forget=list(plan.forget),
        ),
        ctx,
        batch_size,
    )


def run_import(
    store: Store,
    inventory: IncomingInventory | Iterable[IncomingInventory],
    *,
    source: str,
    format: str,
    dry_run: bool = False,
    allow_deletes: int | None = None,
    grace: timedelta = DEFAULT_GRACE,
    placeholders: bool = True,
    rules: ReconciliationRules = DEFAULT_RULES,
    skip_unchanged: bool = True,
    now: datetime | None = None,
    progress: Progress | None = None,
    actor: str = DEFAULT_ACTOR,
    batch_size: int = BATCH_SIZE,
) -> RunReport:
    """Import one source's inventory as one run, and report it.

    ``inventory`` is one parsed inventory (planned whole before the first write), or an
    iterable of chunks (streamed: each chunk is planned and written in turn; see
    ``docs/importing.md`` for what streaming changes). Keyword options:

    - ``source``: the source's name; what it reported last time is what this run compares to.
    - ``dry_run``: plan only, write nothing (not even the run), report what would happen.
    - ``allow_deletes``: the most CIs + relationships the run may remove (retire / delete);
      without it a run removing more than 10 % of the source's items or more than 500 stops.
    - ``grace``: how long an item may be absent before it is removed (default 7 days).
    - ``placeholders``: a relationship end that names no CI becomes a placeholder CI of class
      ``other`` (default) or, when False, the relationship is skipped with a warning.
    - ``rules``: identification and precedence (``graph.sync_rules``).
    - ``skip_unchanged``: skip items whose source record digest is unchanged (default).
    - ``now``: the run's clock (tests); ``progress``: called with item counts as they go.

    Raises only for store failures (the run is then recorded as failed); bad items, conflicts
    and the deletion guard are in the report.
    """
    now = now or utcnow()
    run_id = new_run_id(now)
    options = _options(rules, grace, placeholders, allow_deletes, skip_unchanged)
    ctx = WriteContext(actor=actor, source=source, run_id=run_id, at=now)
    run = ImportRun(id=run_id, source=source, format=format, started_at=now)
    if not dry_run:
        _close_interrupted_runs(store, source, run_id)
        store.put_run(run)
    try:
        planner = Planner(store, source=source, run_id=run_id, now=now, options=options)
        try:
            cleanup = _run(
                store,
                planner,
                inventory,
                ctx=ctx,
                dry_run=dry_run,
                batch_size=batch_size,
                progress=progress,
            )
        finally:
            planner.close()
    except BaseException as exc:
        if not dry_run:
            _finish(store, run, RunStatus.FAILED, {}, (f"error: run aborted: {exc!r}",))
        raise
    report = _report(
        planner, cleanup, source=source, format=format, started=now, dry_run=dry_run, run_id=run_id
    )
    if not dry_run:
        _finish(store, run, report.status, report.counts(), report.messages())
    return report


def _run(
    store: Store,
    planner: Planner,
    inventory: IncomingInventory | Iterable[IncomingInventory],
    *,
    ctx: WriteContext,
    dry_run: bool,
    batch_size: int,
    progress: Progress | None,
) -> Cleanup:
    if _is_inventory(inventory):
        return _run_whole(
            store,
            planner,
            inventory,
            ctx=ctx,
            dry_run=dry_run,
            batch_size=batch_size,
            progress=progress,
        )
    chunks = cast(Iterable[IncomingInventory], inventory)
    return _run_streamed(
        store,
        planner,
        chunks,
        ctx=ctx,
        dry_run=dry_run,
        batch_size=batch_size,
        progress=progress,
    )


def _is_inventory(
    value: IncomingInventory | Iterable[IncomingInventory],
) -> TypeGuard[IncomingInventory]:
    return hasattr(value, "cis") and hasattr(value, "relationships")


def _run_whole(
    store: Store,
    planner: Planner,
    inventory: IncomingInventory,
    *,
    ctx: WriteContext,
    dry_run: bool,
    batch_size: int,
    progress: Progress | None,
) -> Cleanup:
    """Plan everything, check, then write: a bad item or the deletion guard writes nothing."""
    chunk = planner.plan_chunk(inventory)
    cleanup = planner.plan_cleanup()
    if dry_run or planner.failed or cleanup.stopped:
        return cleanup
    _apply_chunk(store, chunk, ctx, batch_size, progress)
    _apply_cleanup(store, cleanup, ctx, batch_size)
    return cleanup


def _run_streamed(
    store: Store,
    planner: Planner,
    chunks: Iterable[IncomingInventory],
    *,
    ctx: WriteContext,
    dry_run: bool,
    batch_size: int,
    progress: Progress | None,
) -> Cleanup:
    """Plan and write chunk by chunk; the cleanup comes only after every chunk was written."""
    for inventory in chunks:
        chunk = planner.plan_chunk(inventory)
        if planner.failed:
            return Cleanup()
        if dry_run:
            if progress is not None:
                progress(chunk.items)
            continue
        _apply_chunk(store, chunk, ctx, batch_size, progress)
    cleanup = planner.plan_cleanup()
    if not dry_run and not cleanup.stopped:
        _apply_cleanup(store, cleanup, ctx, batch_size)
    return cleanup


def _batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _apply_chunk(
    store: Store,
    chunk: ChunkPlan,
    ctx: WriteContext,
    batch_size: int,
    progress: Progress | None,
) -> None:
    """CIs with their records, then relationships with theirs: a batch and the records that
    remember it commit together, so a killed run leaves nothing a re-run cannot find."""
    done = 0
    records_by_ci: dict[str, list[SourceRecord]] = {}
    for record in chunk.ci_records:
        records_by_ci.setdefault(record.ci, []).append(record)
    written: set[str] = set()
    for batch in _batches(chunk.cis, batch_size):
        records = [r for ci in batch for r in records_by_ci.get(ci.id, ())]
        written.update(ci.id for ci in batch)
        store.apply(batch, (), ctx, source_records=records)
        done += len(batch)
        if progress is not None:
            progress(len(batch))
    rest = [r for r in chunk.ci_records if r.ci not in written]  # records of unchanged CIs
    for batch_records in _batches(rest, batch_size):
        store.apply((), (), ctx, source_records=batch_records)
    if chunk.changes:
        for changes in _batches(chunk.changes, batch_size):
            store.record_external_changes(changes, ctx)
    rel_records = {r.key: r for r in chunk.relationship_records}
    for rel_batch in _batches(chunk.relationships, batch_size):
        records = [
            rel_records.pop(key)
            for r in rel_batch
            if (key := relationship_key(r.key)) in rel_records
        ]
        store.apply((), rel_batch, ctx, source_records=records)
        done += len(rel_batch)
        if progress is not None:
            progress(len(rel_batch))
    for batch_records in _batches(list(rel_records.values()), batch_size):
        store.apply((), (), ctx, source_records=batch_records)
    if progress is not None and chunk.items > done:
        progress(chunk.items - done)


def _apply_cleanup(store: Store, cleanup: Cleanup, ctx: WriteContext, batch_size: int) -> None:
    for ids in _batches(cleanup.retire, batch_size):
        store.retire_cis(ids, ctx)
    for keys in _batches(cleanup.delete_relationships, batch_size):
        store.apply((), (), ctx, delete_relationships=keys)
    for records in _batches(cleanup.absent_records, batch_size):
        store.put_source_records(records)
    if cleanup.forget:
        store.delete_source_records(ctx.source or "", cleanup.forget)


def _close_interrupted_runs(store: Store, source: str, run_id: str) -> None:
    """A run still 'running' when the next one starts was killed: say so."""
    for old in store.list_runs(source, limit=20):
        if old.status == RunStatus.RUNNING and old.id != run_id:
            store.put_run(
                old.model_copy(
                    update={
                        "status": RunStatus.FAILED,
                        "finished_at": utcnow(),
                        "messages": (*old.messages, f"error: interrupted (next run {run_id})"),
                    }
                )
            )


def _finish(
    store: Store,
    run: ImportRun,
    status: RunStatus,
    counts: dict[str, int],
    messages: tuple[str, ...],
) -> None:
    store.put_run(
        run.model_copy(
            update={
                "status": status,
                "finished_at": utcnow(),
                "counts": counts,
                "messages": messages,
            }
        )
    )


def record_failed_run(
    store: Store, *, source: str, format: str, error: str, now: datetime | None = None
) -> ImportRun:
    """Record a run that failed before the engine saw any item (the input did not parse)."""
    now = now or utcnow()
    run = ImportRun(
        id=new_run_id(now),
        source=source,
        format=format,
        status=RunStatus.FAILED,
        started_at=now,
        finished_at=now,
        counts={"errors": 1},
        messages=(f"error: {error}",),
    )
    store.put_run(run)
    return run


def _report(
    planner: Planner,
    cleanup: Cleanup,
    *,
    source: str,
    format: str,
    started: datetime,
    dry_run: bool,
    run_id: str | None = None,
) -> RunReport:
    b = planner.report
    if planner.failed or cleanup.stopped:
        status = RunStatus.FAILED
    elif not planner.complete:
        status = RunStatus.PARTIAL
    else:
        status = RunStatus.SUCCEEDED
    removed = not (planner.failed or cleanup.stopped)
    if removed:
        b.count("ci", "removed", len(cleanup.retire))
        b.count("relationship", "removed", len(cleanup.delete_relationships))
    return RunReport(
        run_id=run_id or planner.run_id,
        source=source,
        format=format,
        status=status,
        dry_run=dry_run,
        started_at=started,
        finished_at=utcnow(),
        cis=b.counts("ci"),
        relationships=b.counts("relationship"),
        created=b.listed("created"),
        updated=b.listed("updated"),
        absent=b.listed("absent"),
        retired=tuple(cleanup.retire[:1000]) if removed else (),
        created_relationships=b.listed("created_relationships"),
        updated_relationships=b.listed("updated_relationships"),
        absent_relationships=b.listed("absent_relationships"),
        deleted_relationships=tuple(
            f"{k[0]} -[{k[1]}]-> {k[2]}" for k in cleanup.delete_relationships[:1000]
        )
        if removed
        else (),
        conflicts=b.listed("conflicts"),
        conflict_count=b.total("conflicts"),
        placeholders=b.listed("placeholders"),
        placeholder_count=b.total("placeholders"),
        warnings=b.listed("warnings"),
        warning_count=b.total("warnings"),
        errors=tuple(planner.errors),
        error_count=planner.error_count,
        stopped=cleanup.stopped,
        external_changes=b.cis.get("external_changes", 0),
    )
