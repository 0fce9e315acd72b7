"""The one store protocol, and the values it hands back.

Both stores (``graph.sqlite_store.SqliteStore``, the embedded default, and
``graph.neo4j_store.Neo4jStore``, production) implement :class:`Store` and pass the same
contract suite (``tests/contract``). Methods are synchronous; ``graph.aio.AsyncStore`` runs
them off the event loop for the API.

Write semantics, for both stores:

* ``upsert_cis`` / ``upsert_relationships`` take the *whole* desired state of each item:
  fields not given are reset to their defaults. An item equal to what is stored is
  ``unchanged`` and records no history. A batch is validated completely before anything is
  written, and written in one transaction: all of it or none of it.
* Every change of a tracked field appends one :class:`~graph.model.Change` per field.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from graph.errors import AmbiguousReferenceError, NotFoundError
from graph.model import (
    Change,
    CiId,
    ConfigurationItem,
    Direction,
    ExternalChange,
    ImportRun,
    Incident,
    MaintenanceWindow,
    RedundancyGroup,
    Registry,
    Relationship,
    RelKey,
    SourceRecord,
    Status,
    WriteContext,
    WriteResult,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CiFilter:
    """Which CIs ``list_cis`` returns. Empty fields do not filter."""

    classes: frozenset[str] = frozenset()
    statuses: frozenset[Status] = frozenset()
    environment: str | None = None
    name_contains: str | None = None  # case-insensitive
    tag: str | None = None
    include_retired: bool = True


ALL_CIS = CiFilter()


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None  # pass as ``after`` for the next page; None on the last page
    total: int | None = None


@dataclass(frozen=True, slots=True)
class Subgraph:
    cis: list[ConfigurationItem]
    relationships: list[Relationship]


@dataclass(frozen=True, eq=False)
class TeamColumns:
    """The teams named in the CIs' ``owner`` and ``support_group`` fields, per node: a
    position in ``names``, or -1 when the field is empty. What impact analysis needs to name
    every team to notify, however many CIs a failure reaches, without reading them."""

    names: tuple[str, ...]
    owner: npt.NDArray[np.int32]
    support: npt.NDArray[np.int32]

    @classmethod
    def of(cls, count: int, fields: Iterable[tuple[int, str | None, str | None]]) -> TeamColumns:
        """From ``(node, owner, support_group)`` of the CIs that name a team (nodes < count)."""
        names: dict[str, int] = {}
        owner = np.full(count, -1, dtype=np.int32)
        support = np.full(count, -1, dtype=np.int32)
        for node, owned_by, supported_by in fields:
            if owned_by:
                owner[node] = names.setdefault(owned_by, len(names))
            if supported_by:
                support[node] = names.setdefault(supported_by, len(names))
        return cls(tuple(names), owner, support)


@dataclass(frozen=True, eq=False)
class Topology:
    """The graph's structure as compact arrays, for traversal (``impact``).

    Node numbers are positions in ``ids``. ``generation`` changes whenever the structure, a
    status or a CI's teams (``teams``) do, so an index built from it can be cached and
    reused while it matches. ``teams`` is None where the topology was made without them
    (tests, generated benchmark data): impact analysis then takes the teams of the CIs it
    reads (the nearest 10,000) and says whether that was all of them.

    ``structure`` is the store's count of the changes other than CI statuses (``None``: not
    kept): while it matches, a store can bring a topology up to date by reading only its
    statuses (``statuses_since``), which a resident index does instead of rebuilding.
    """

    ids: list[CiId]
    classes: npt.NDArray[np.int16]  # node -> position in class_names
    class_names: tuple[str, ...]
    statuses: npt.NDArray[np.int8]  # node -> position in STATUS_ORDER
    src: npt.NDArray[np.int32]
    dst: npt.NDArray[np.int32]
    rel_types: npt.NDArray[np.int16]  # edge -> position in type_names
    type_names: tuple[str, ...]
    redundancy: dict[int, tuple[RedundancyGroup, ...]]
    generation: str
    as_of: datetime
    _numbers: dict[CiId, int] = field(default_factory=dict, repr=False)
    teams: TeamColumns | None = None
    structure: str | None = None

    def number(self, ci: CiId) -> int:
        """The node number of a CI id; raises NotFoundError."""
        if not self._numbers and self.ids:
            self._numbers.update((ci_id, n) for n, ci_id in enumerate(self.ids))
        try:
            return self._numbers[ci]
        except KeyError:
            raise NotFoundError(f"no CI with id {ci!r}") from None

    @property
    def node_count(self) -> int:
        return len(self.ids)

    @property
    def edge_count(self) -> int:
        return int(self.src.shape[0])


STATUS_ORDER: tuple[Status, ...] = tuple(Status)
# a status's number in Topology.statuses, by its stored text
STATUS_NUMBERS: dict[str, int] = {s.value: i for i, s in enumerate(STATUS_ORDER)}


@runtime_checkable
class Store(Protocol):
    """What every store does. See the module docstring for write semantics."""

    registry: Registry

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None: ...

    def describe(self) -> str:
        """Where this store keeps its data (for logs and ``cmdb --help``); no secrets."""
        ...

    # -- writes ------------------------------------------------------------------------------
    def upsert_cis(self, cis: Sequence[ConfigurationItem], ctx: WriteContext) -> WriteResult: ...

    def upsert_relationships(
        self, relationships: Sequence[Relationship], ctx: WriteContext
    ) -> WriteResult: ...

    def apply(
        self,
        cis: Sequence[ConfigurationItem],
        relationships: Sequence[Relationship],
        ctx: WriteContext,
        *,
        delete_relationships: Sequence[RelKey] = (),
        source_records: Sequence[SourceRecord] = (),
    ) -> tuple[WriteResult, WriteResult]:
        """CIs, then relationships, then relationship deletions, then the source records of
        an import run, in one transaction."""
        ...

    def retire_cis(self, ids: Sequence[CiId], ctx: WriteContext) -> WriteResult:
        """Set status to retired (kept, with history); unknown ids raise NotFoundError."""
        ...

    def delete_cis(self, ids: Sequence[CiId], ctx: WriteContext) -> WriteResult:
        """Remove CIs and their relationships; history keeps a ``deleted`` entry."""
        ...

    def delete_relationships(self, keys: Sequence[RelKey], ctx: WriteContext) -> WriteResult: ...

    def record_external_changes(self, changes: Sequence[ExternalChange], ctx: WriteContext) -> int:
        """Attach deployments / change requests; idempotent by change id."""
        ...

    # -- reads -------------------------------------------------------------------------------
    def get_ci(self, ci: CiId) -> ConfigurationItem | None: ...

    def get_cis(self, ids: Iterable[CiId]) -> dict[CiId, ConfigurationItem]: ...

    def find_by_name(self, name: str, ci_class: str | None = None) -> list[ConfigurationItem]: ...

    def find_by_names(self, names: Iterable[str]) -> dict[str, list[ConfigurationItem]]:
        """CIs of any class carrying each of ``names``, ids sorted; names no CI carries are
        left out. One batched lookup: what an importer resolving a chunk by name needs."""
        ...

    def list_cis(
        self, filter: CiFilter = ALL_CIS, *, first: int = 100, after: str | None = None
    ) -> Page[ConfigurationItem]:
        """CIs ordered by id; ``after`` is the ``next_cursor`` of the previous page."""
        ...

    def count_cis(self, filter: CiFilter = ALL_CIS) -> int: ...

    def get_relationship(self, key: RelKey) -> Relationship | None: ...

    def relationships(
        self,
        ci: CiId,
        direction: Direction = Direction.BOTH,
        types: frozenset[str] = frozenset(),
    ) -> list[Relationship]: ...

    def iter_relationships(self, batch_size: int = 10_000) -> Iterator[Relationship]:
        """Every relationship, ordered by (source, type, target)."""
        ...

    def neighbourhood(
        self,
        roots: Sequence[CiId],
        *,
        direction: Direction = Direction.BOTH,
        depth: int = 1,
        types: frozenset[str] = frozenset(),
        limit: int = 10_000,
    ) -> Subgraph:
        """The CIs within ``depth`` hops of ``roots`` and the relationships among them."""
        ...

    def history(
        self,
        cis: Sequence[CiId] | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        run_id: str | None = None,
        limit: int = 1000,
    ) -> list[Change]:
        """History entries, oldest first, for some CIs (or all) in a time range."""
        ...

    # -- incidents and maintenance -----------------------------------------------------------
    def put_incident(self, incident: Incident) -> None: ...

    def get_incident(self, incident_id: str) -> Incident | None: ...

    def list_incidents(self, *, open_only: bool = False) -> list[Incident]: ...

    def put_maintenance_window(self, window: MaintenanceWindow) -> None: ...

    def delete_maintenance_window(self, window_id: str) -> None: ...

    def maintenance_windows(
        self, cis: Sequence[CiId] | None = None, *, at: datetime | None = None
    ) -> list[MaintenanceWindow]:
        """Windows on these CIs (or all), only those covering ``at`` when given."""
        ...

    # -- import engine -----------------------------------------------------------------------
    def match_identifiers(self, attribute: str, values: Sequence[str]) -> dict[str, list[CiId]]:
        """CIs whose identifying ``attribute`` (one of ``IDENTIFIER_ATTRIBUTES``) has one of
        ``values`` (normalised with ``normalise_identifier``), ids sorted."""
        ...

    def source_records(self, source: str) -> list[SourceRecord]:
        """Everything ``source`` has reported (and not been forgotten), ordered by kind, key."""
        ...

    def iter_source_records(
        self, source: str, *, batch_size: int = 1_000
    ) -> Iterator[SourceRecord]:
        """:meth:`source_records` a page of ``batch_size`` at a time, in the same order: what
        the import engine streams, whatever the size of the source."""
        ...

    def put_source_records(self, records: Sequence[SourceRecord]) -> None: ...

    def delete_source_records(self, source: str, keys: Sequence[tuple[str, str]]) -> int:
        """Forget ``(kind, key)`` records of a source; returns how many existed."""
        ...

    def put_run(self, run: ImportRun) -> None: ...

    def get_run(self, run_id: str) -> ImportRun | None: ...

    def list_runs(self, source: str | None = None, *, limit: int = 100) -> list[ImportRun]:
        """Newest first."""
        ...

    # -- traversal ---------------------------------------------------------------------------
    def topology(self) -> Topology:
        """The current structure as arrays; cached while ``generation`` is unchanged."""
        ...

    def statuses_since(self, topology: Topology) -> Topology | None:
        """``topology`` (read from this store) brought up to date when only CI statuses
        changed since: its arrays shared, its statuses and generation current; the same
        object when nothing changed. None when anything else did: read ``topology()``."""
        ...


def resolve_reference(store: Store, reference: str) -> ConfigurationItem:
    """A CI by id, else by unique name. Raises NotFoundError or AmbiguousReferenceError."""
    found = store.get_ci(CiId(reference))
    if found is not None:
        return found
    matches = store.find_by_name(reference)
    if not matches:
        raise NotFoundError(f"no CI has the id or name {reference!r}")
    if len(matches) > 1:
        raise AmbiguousReferenceError(reference, sorted(m.id for m in matches))
    return matches[0]
