"""What both stores do the same way before and around a write: validate a batch against the
registry and the limits, and turn old/new state into history entries.

Keeping this in one place is what makes the two stores observably identical.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from graph.errors import NotFoundError, ValidationError
from graph.model import (
    Change,
    ChangeKind,
    CiId,
    ConfigurationItem,
    ExternalChange,
    Registry,
    Relationship,
    RelKey,
    Status,
    WriteContext,
    check_batch_size,
)

T = TypeVar("T", ConfigurationItem, Relationship)


# The version (4) and variant bits of a random UUID, as ``uuid.UUID(version=4)`` sets them.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_change_id() -> str:
    """A random UUID4 as 32 hex digits: ``uuid.uuid4().hex`` without building a UUID object
    (a quarter of the cost, which counts at one id per history entry)."""
    return f"{int.from_bytes(os.urandom(16)) & _UUID4_CLEAR | _UUID4_SET:032x}"


class _GcPause:
    """Turn off the cyclic garbage collector while a batch is turned into rows.

    Building a 50k batch allocates millions of small containers, and each full collection
    walks every live object: about 40 % of the Python time of a bulk write. What is built
    is not cyclic; the collector runs again when the last writer leaves (writers run in
    threads of one process, and the switch is process-wide).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            held = self._holders > 0 or gc.isenabled()  # else someone else turned it off
            if held:
                self._holders += 1
                gc.disable()
        try:
            yield
        finally:
            if held:
                with self._lock:
                    self._holders -= 1
                    if self._holders == 0:
                        gc.enable()


gc_paused = _GcPause()


def validate_cis(cis: Sequence[ConfigurationItem], registry: Registry) -> None:
    """Known classes, no id twice in one batch, the batch within limits."""
    check_batch_size(len(cis), "CIs")
    seen: set[str] = set()
    for ci in cis:
        registry.ci_class(ci.ci_class, item=ci.id)
        if ci.id in seen:
            raise ValidationError(
                "the same CI id appears twice in one batch", item=ci.id, field="id"
            )
        seen.add(ci.id)


def validate_relationships(relationships: Sequence[Relationship], registry: Registry) -> None:
    """Known types, no self-loops, no relationship twice in one batch."""
    check_batch_size(len(relationships), "relationships")
    seen: set[RelKey] = set()
    for rel in relationships:
        label = describe_key(rel.key)
        registry.relationship_type(rel.type, item=label)
        if rel.source == rel.target:
            raise ValidationError("a CI cannot relate to itself", item=label, field="target")
        if rel.key in seen:
            raise ValidationError(
                "the same relationship appears twice in one batch", item=label, field="type"
            )
        seen.add(rel.key)


def check_ends(relationships: Sequence[Relationship], existing: set[CiId]) -> None:
    """Every relationship end must be a CI that exists (in the store or the same batch)."""
    for rel in relationships:
        for end, value in (("source", rel.source), ("target", rel.target)):
            if value not in existing:
                raise ValidationError(
                    f"{end} {value!r} is not a known CI (load it first, or in the same batch)",
                    item=describe_key(rel.key),
                    field=end,
                )


def check_known(ids: Iterable[CiId], existing: set[CiId]) -> None:
    for ci in ids:
        if ci not in existing:
            raise NotFoundError(f"no CI with id {ci!r}")


def describe_key(key: RelKey) -> str:
    return f"{key[0]} -[{key[1]}]-> {key[2]}"


def seen_times(
    old: ConfigurationItem | Relationship | None,
    new: ConfigurationItem | Relationship,
    ctx: WriteContext,
) -> tuple[datetime, datetime]:
    """``first_seen`` and ``last_seen`` of what is stored: ``first_seen`` is kept from the
    stored item; ``last_seen`` is the caller's, or kept; either defaults to the write's time."""
    first_seen = old.first_seen if old is not None and old.first_seen else new.first_seen
    last_seen = new.last_seen or (old.last_seen if old is not None else None)
    return first_seen or ctx.at, last_seen or ctx.at


def _with_seen(new: T, seen: tuple[datetime, datetime]) -> T:
    if new.first_seen is seen[0] and new.last_seen is seen[1]:
        return new  # the caller's own times: nothing to copy
    return new.model_copy(update={"first_seen": seen[0], "last_seen": seen[1]})


def prepare_ci(
    old: ConfigurationItem | None, new: ConfigurationItem, ctx: WriteContext
) -> ConfigurationItem | None:
    """The CI to store, or None when ``new`` says nothing ``old`` does not already say.

    ``first_seen`` is kept from the stored CI; ``last_seen`` is the caller's, or kept.
    """
    if old is not None and old.tracked() == new.tracked() and old.provenance == new.provenance:
        return None
    return _with_seen(new, seen_times(old, new, ctx))


@dataclass(frozen=True, slots=True)
class CiWrite:
    """Writing one CI: ``ci`` as given, stored with these ``first_seen`` / ``last_seen``
    (what :func:`prepare_ci` would set), and the history :func:`ci_changes` would record."""

    ci: ConfigurationItem
    first_seen: datetime
    last_seen: datetime
    changes: list[Change]


def plan_ci(
    old: ConfigurationItem | None, new: ConfigurationItem, ctx: WriteContext
) -> CiWrite | None:
    """:func:`prepare_ci` and :func:`ci_changes` in one pass: each side's tracked fields are
    dumped once and ``new`` is not copied. None when nothing changes."""
    after = new.tracked()
    if old is None:
        changes = [_created(new, after, ctx)]
    else:
        before = old.tracked()
        if before == after and old.provenance == new.provenance:
            return None
        changes = _field_changes(new.id, before, after, ctx)
    first_seen, last_seen = seen_times(old, new, ctx)
    return CiWrite(new, first_seen, last_seen, changes)


def moves_structure(old: ConfigurationItem, new: ConfigurationItem) -> bool:
    """Whether updating ``old`` to ``new`` changes what a topology holds of a CI besides its
    status (its class, redundancy groups and teams): see ``Topology.structure``."""
    return (old.ci_class, old.redundancy, old.owner, old.support_group) != (
        new.ci_class,
        new.redundancy,
        new.owner,
        new.support_group,
    )


def ci_changes(
    old: ConfigurationItem | None, new: ConfigurationItem, ctx: WriteContext
) -> list[Change]:
    """History entries for writing ``new`` over ``old``: one ``created``, or one per field."""
    if old is None:
        return [_created(new, new.tracked(), ctx)]
    return _field_changes(new.id, old.tracked(), new.tracked(), ctx)


def _created(new: ConfigurationItem, after: dict[str, Any], ctx: WriteContext) -> Change:
    return _change(
        ctx,
        new.id,
        ChangeKind.CREATED,
        after=after,
        summary=f"created {new.ci_class} {new.name!r}",
    )


def _field_changes(
    ci: CiId, before: dict[str, Any], after: dict[str, Any], ctx: WriteContext
) -> list[Change]:
    changes = []
    for field_name in ConfigurationItem.TRACKED_FIELDS:
        if before[field_name] == after[field_name]:
            continue
        kind = (
            ChangeKind.RETIRED
            if field_name == "status" and after[field_name] == Status.RETIRED
            else ChangeKind.UPDATED
        )
        changes.append(
            _change(
                ctx,
                ci,
                kind,
                field=field_name,
                before=before[field_name],
                after=after[field_name],
                summary=_summary(field_name, before, after),
            )
        )
    return changes


def _summary(field_name: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    if field_name == "attributes":
        old, new = before["attributes"], after["attributes"]
        keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        return "attributes changed: " + ", ".join(keys[:10]) + ("…" if len(keys) > 10 else "")
    return f"{field_name}: {before[field_name]!r} -> {after[field_name]!r}"


def prepare_relationship(
    old: Relationship | None, new: Relationship, ctx: WriteContext
) -> Relationship | None:
    if old is not None and old.attributes == new.attributes and old.provenance == new.provenance:
        return None
    return _with_seen(new, seen_times(old, new, ctx))


def relationship_changes(
    old: Relationship | None, new: Relationship, ctx: WriteContext
) -> list[Change]:
    if old is None:
        return [
            _change(
                ctx,
                new.source,
                ChangeKind.RELATED,
                relationship=new.key,
                after=new.attributes,
                summary=describe_key(new.key),
            )
        ]
    if old.attributes == new.attributes:
        return []
    return [
        _change(
            ctx,
            new.source,
            ChangeKind.RELATIONSHIP_UPDATED,
            relationship=new.key,
            field="attributes",
            before=old.attributes,
            after=new.attributes,
            summary=f"{describe_key(new.key)} attributes changed",
        )
    ]


def unrelated_change(rel: Relationship, ctx: WriteContext) -> Change:
    return _change(
        ctx,
        rel.source,
        ChangeKind.UNRELATED,
        relationship=rel.key,
        before=rel.attributes,
        summary=f"removed {describe_key(rel.key)}",
    )


def deleted_change(ci: ConfigurationItem, ctx: WriteContext) -> Change:
    return _change(
        ctx,
        ci.id,
        ChangeKind.DELETED,
        before=ci.tracked(),
        summary=f"deleted {ci.ci_class} {ci.name!r}",
    )


def _change(
    ctx: WriteContext,
    ci: CiId,
    kind: ChangeKind,
    *,
    field: str | None = None,
    before: Any = None,
    after: Any = None,
    summary: str = "",
    relationship: RelKey | None = None,
) -> Change:
    return Change(
        id=new_change_id(),
        ci=ci,
        at=ctx.at,
        kind=kind,
        field=field,
        before=before,
        after=after,
        summary=summary,
        actor=ctx.actor,
        source=ctx.source,
        run_id=ctx.run_id,
        request_id=ctx.request_id,
        relationship=relationship,
    )


def external_change(ext: ExternalChange, ctx: WriteContext) -> Change:
    """A reported deployment or change request as a history entry; its id is the caller's,
    so reporting it again is a no-op."""
    return Change(
        id=ext.id,
        ci=ext.ci,
        at=ext.at,
        kind=ext.kind,
        summary=ext.summary,
        actor=ctx.actor,
        source=ctx.source,
        run_id=ctx.run_id,
        request_id=ctx.request_id,
        external_ref=ext.external_ref,
        planned_start=ext.planned_start,
        planned_end=ext.planned_end,
    )
