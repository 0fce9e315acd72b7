"""Planning an import run: what to write, without writing (``graph.sync`` applies it).

One :class:`Planner` lives for one run. It is fed the inventory chunk by chunk and keeps only
compact state between chunks (the keys seen, the CI each resolved to, the relationships seen),
so an inventory of a million items plans in bounded memory. Each chunk's plan lists the CIs
and relationships to upsert with their source records; :meth:`Planner.plan_cleanup` then
decides what the source no longer reports (absent), and what to retire or delete.

Identification of an incoming CI, in order:

1. the source reported this key before: the CI its source record names;
2. the class's identification rules (``graph.sync_rules``): the first identifier that finds
   candidates decides. One candidate: merge into it. Several: a conflict for review, nothing
   written. Candidates already claimed by another key of the same source are not candidates
   (a source that reports two things reports two CIs);
3. nothing: a new CI whose id is the key (or ``<source>:<key>`` when that id is taken).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
import orjson

from graph.batch import describe_key
from graph.errors import UnknownClassError, UnknownRelationshipTypeError, ValidationError
from graph.model import (
    AttributeValue,
    CiId,
    ConfigurationItem,
    ExternalChange,
    Provenance,
    RedundancyGroup,
    Relationship,
    RelKey,
    SourceRecord,
    Status,
    normalise_identifier,
)
from graph.store import STATUS_ORDER, Store
from graph.sync_report import Conflict, FieldChange, ItemUpdate, ReportBuilder
from graph.sync_rules import (
    ATTRIBUTES,
    ID,
    NAME,
    ReconciliationRules,
    merge_attributes,
    merge_ci,
    said,
)

PLACEHOLDER_CLASS: Final = "other"
PLACEHOLDER_ATTRIBUTE: Final = "placeholder"
RELATIONSHIP_PROVENANCE: Final = "relationship"
MAX_ERRORS: Final = 100

T = TypeVar("T")

# --------------------------------------------------------------------------------------------
# What the engine reads: any parser's Inventory (importers.base) fits these shapes.


class IncomingCi(Protocol):
    @property
    def ci(self) -> ConfigurationItem: ...

    @property
    def location(self) -> str: ...


class IncomingRelationship(Protocol):
    @property
    def source_ref(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def target_ref(self) -> str: ...

    @property
    def location(self) -> str: ...

    @property
    def attributes(self) -> Mapping[str, AttributeValue]: ...


class IncomingInventory(Protocol):
    """``importers.base.Inventory``, or one chunk of a streamed inventory."""

    @property
    def cis(self) -> Sequence[IncomingCi]: ...

    @property
    def relationships(self) -> Sequence[IncomingRelationship]: ...

    @property
    def changes(self) -> Sequence[ExternalChange]: ...

    @property
    def warnings(self) -> Sequence[str]: ...

    @property
    def complete(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How a run behaves; ``graph.sync.run_import`` documents each."""

    rules: ReconciliationRules
    grace: timedelta = timedelta(days=7)
    placeholders: bool = True
    allow_deletes: int | None = None
    max_delete_fraction: float = 0.10
    max_deletes: int = 500
    skip_unchanged: bool = True


@dataclass(slots=True)
class ChunkPlan:
    """The writes one chunk needs: CIs (with their records) before relationships."""

    cis: list[ConfigurationItem] = field(default_factory=list)
    ci_records: list[SourceRecord] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)
    relationship_records: list[SourceRecord] = field(default_factory=list)
    changes: list[ExternalChange] = field(default_factory=list)
    items: int = 0  # items of the chunk, for progress

    def extend(self, other: ChunkPlan) -> None:
        self.cis += other.cis
        self.ci_records += other.ci_records
        self.relationships += other.relationships
        self.relationship_records += other.relationship_records
        self.changes += other.changes
        self.items += other.items


@dataclass(slots=True)
class Cleanup:
    """The end of a complete run: absent marks, retirements, deletions."""

    absent_records: list[SourceRecord] = field(default_factory=list)
    retire: list[CiId] = field(default_factory=list)
    delete_relationships: list[RelKey] = field(default_factory=list)
    forget: list[tuple[str, str]] = field(default_factory=list)  # (kind, key) records
    stopped: str | None = None

    @property
    def removals(self) -> int:
        return len(self.retire) + len(self.delete_relationships)


def digest_ci(ci: ConfigurationItem) -> str:
    """A hash of what the source said about a CI (fields it set, with their values)."""
    data = ci.model_dump(mode="json", exclude_unset=True)
    return _hash(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


def digest_relationship(attributes: Mapping[str, AttributeValue]) -> str:
    if not attributes:  # most relationships: hashed once
        return _NO_ATTRIBUTES_DIGEST
    return _hash(orjson.dumps(dict(attributes), option=orjson.OPT_SORT_KEYS))


def _hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


_NO_ATTRIBUTES_DIGEST: Final = _hash(orjson.dumps({}, option=orjson.OPT_SORT_KEYS))


def relationship_key(key: RelKey) -> str:
    """The source record key of a relationship: ``<source ci>|<TYPE>|<target ci>``."""
    return f"{key[0]}|{key[1]}|{key[2]}"


def parse_relationship_key(text: str) -> RelKey:
    source, type_, target = text.split("|", 2) if text.count("|") == 2 else _split_key(text)
    return (CiId(source), type_, CiId(target))


def _split_key(text: str) -> list[str]:
    # CI ids may contain "|": the type, UPPER_SNAKE, never does; find it from the right.
    head, _, target = text.rpartition("|")
    source, _, type_ = head.rpartition("|")
    return [source, type_, target]


_RETIRED: Final = STATUS_ORDER.index(Status.RETIRED)


class _Snapshot:
    """Which CIs and relationships exist (and which CIs are retired), from the store's
    topology arrays: cheap to build, compact, and no CI bodies read.

    CI ids are found through a sorted array of their (per-process) hashes, not a dict: 16
    bytes per CI instead of ~100, on top of the id list the store caches anyway."""

    def __init__(self, store: Store) -> None:
        topo = store.topology()
        self._ids = topo.ids
        hashes = np.fromiter((hash(ci) for ci in topo.ids), dtype=np.int64, count=len(topo.ids))
        order = np.argsort(hashes, kind="stable")
        self._hashes: npt.NDArray[np.int64] = hashes[order]
        self._order: npt.NDArray[np.int64] = order
        self._statuses = topo.statuses
        self._types = {name: i for i, name in enumerate(topo.type_names)}
        self._n = max(len(topo.ids), 1)
        self._t = max(len(topo.type_names), 1)
        codes = (
            topo.src.astype(np.int64) * self._t + topo.rel_types.astype(np.int64)
        ) * self._n + topo.dst.astype(np.int64)
        self._codes: npt.NDArray[np.int64] = np.sort(codes)

    def _position(self, ci: str) -> int | None:
        h = hash(ci)
        i = int(self._hashes.searchsorted(h))
        while i < len(self._hashes) and int(self._hashes[i]) == h:
            pos = int(self._order[i])
            if self._ids[pos] == ci:
                return pos
            i += 1
        return None

    def alive(self, ci: str) -> bool:
        """The CI exists and is not retired."""
        pos = self._position(ci)
        return pos is not None and int(self._statuses[pos]) != _RETIRED

    def has_ci(self, ci: str) -> bool:
        return self._position(ci) is not None

    def alive_many(self, ids: Sequence[str]) -> list[bool]:
        """:meth:`alive` of many CIs at once (a chunk's worth)."""
        if not len(self._hashes):
            return [False] * len(ids)
        positions = self._positions(ids)
        found = positions >= 0
        statuses = self._statuses[np.where(found, positions, 0)]
        alive: list[bool] = (found & (statuses != _RETIRED)).tolist()
        return alive

    def _positions(self, ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """:meth:`_position` of many CIs at once (-1 for unknown ones)."""
        out = np.full(len(ids), -1, dtype=np.int64)
        if not len(self._hashes):
            return out
        hashes = np.fromiter((hash(ci) for ci in ids), dtype=np.int64, count=len(ids))
        at = np.minimum(self._hashes.searchsorted(hashes), len(self._hashes) - 1)
        positions = self._order[at]
        for i, (ci, pos, hit) in enumerate(
            zip(ids, positions.tolist(), (self._hashes[at] == hashes).tolist(), strict=True)
        ):
            if hit and self._ids[pos] == ci:
                out[i] = pos
            elif hit:  # (rarely) another CI with the same hash: look further
                found = self._position(ci)
                out[i] = -1 if found is None else found
        return out

    def has_relationships(self, keys: Sequence[RelKey]) -> list[bool]:
        """:meth:`has_relationship` of many keys at once (a chunk's worth)."""
        if not keys or not len(self._codes):
            return [False] * len(keys)
        src = self._positions([k[0] for k in keys])
        dst = self._positions([k[2] for k in keys])
        types = np.array([self._types.get(k[1], -1) for k in keys], dtype=np.int64)
        known = (src >= 0) & (dst >= 0) & (types >= 0)
        codes = (src * self._t + types) * self._n + dst
        at = np.minimum(self._codes.searchsorted(codes), len(self._codes) - 1)
        found: list[bool] = (known & (self._codes[at] == codes)).tolist()
        return found

    def has_relationship(self, key: RelKey) -> bool:
        type_ = self._types.get(key[1])
        if type_ is None:
            return False
        src, dst = self._position(key[0]), self._position(key[2])
        if src is None or dst is None:
            return False
        code = (src * self._t + type_) * self._n + dst
        i = int(self._codes.searchsorted(code))
        return i < len(self._codes) and int(self._codes[i]) == code


# --------------------------------------------------------------------------------------------
# The run's working memory: Python dicts while the run is small, a scratch SQLite file past
# IN_MEMORY_ENTRIES, so a run of a hundred thousand items plans at dict speed and a run of a
# million in bounded memory.

IN_MEMORY_ENTRIES: Final = 1_000_000
"""How many entries of run state a run keeps in Python dicts: the source's records as they
were when the run started, the keys seen with the CI each resolved to, the CIs claimed, the
relationship keys seen. Past it (checked as the records load and at the end of each chunk),
all of them move to the run's scratch database and stay there for the rest of the run.

An entry costs ~100-150 bytes in memory (a record: its key, digest and CI; the others: a
key and a dict slot), so the limit holds at most ~100-150 MB. Re-importing 100k CIs + 200k
relationships holds ~700k entries (~75 MiB more peak RSS than on disk, and planning twice as
fast); a first import of 1M CIs spills half-way through its CIs, a re-import of them at
once."""

_SCRATCH_SCHEMA: Final = """
CREATE TABLE record (
    kind INTEGER NOT NULL, key TEXT NOT NULL, ci TEXT NOT NULL, digest TEXT NOT NULL,
    last_run TEXT NOT NULL, last_seen TEXT NOT NULL, absent_since TEXT,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE TABLE seen (kind INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (kind, key)) WITHOUT ROWID;
CREATE TABLE elsewhere (kind INTEGER NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (kind, key)) WITHOUT ROWID;
"""
_CI_KIND: Final = 0
_REL_KIND: Final = 1
_CLAIMED_KIND: Final = 2
_FLUSH_EVERY: Final = 5_000
_RECORD_BATCH: Final = 1_000  # records copied to the scratch database at a time
_SCRATCH_CACHE_KIB: Final = 8 * 1024
# Built once the source's records are copied in (a bulk copy then one index build is ~4x
# faster than keeping the index up to date row by row).
_RECORD_CI_INDEX: Final = (
    "CREATE INDEX record_ci ON record (ci) WHERE kind = 0 AND absent_since IS NULL"
)


@contextmanager
def _bulk(db: sqlite3.Connection) -> Iterator[None]:
    """One transaction around a bulk copy into the scratch database: without it, each
    ``executemany`` commits on its own (autocommit), which costs more than the rows."""
    db.execute("BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _scratch_database() -> sqlite3.Connection:
    """A private temporary SQLite database (``""``: on disk, deleted when closed), with a
    small page cache: nothing it holds needs to survive the run or a crash."""
    db = sqlite3.connect("", isolation_level=None)
    db.execute(f"PRAGMA cache_size=-{_SCRATCH_CACHE_KIB}")
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.executescript(_SCRATCH_SCHEMA)
    return db


class _Scratch:
    """The run's scratch database, created when first needed (a run that stays in memory and
    removes nothing never creates it)."""

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = _scratch_database()
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


class _Known(NamedTuple):
    """A stored source record, as planning reads it (a tuple: cheap to build and to hold)."""

    ci: CiId
    digest: str
    last_run: str
    last_seen: datetime
    absent_since: datetime | None

    @property
    def absent(self) -> bool:
        return self.absent_since is not None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> _Known:
        ci, digest, last_run, last_seen, absent_since = row
        return cls(
            CiId(ci),
            digest,
            last_run,
            datetime.fromisoformat(last_seen),
            None if absent_since is None else datetime.fromisoformat(absent_since),
        )

    def row(self, kind: int, key: str) -> tuple[Any, ...]:
        absent = self.absent_since
        return (
            kind,
            key,
            self.ci,
            self.digest,
            self.last_run,
            self.last_seen.isoformat(),
            None if absent is None else absent.isoformat(),
        )


class _RunMap:
    """``str -> str`` (or a set, with the key as value) of run state. A dict while the run
    is small; once spilled (:meth:`spill`), rows of the scratch database, where writes wait
    in memory and go down in batches and :meth:`prefetch` answers a chunk's lookups at
    once."""

    __slots__ = ("_cache", "_db", "_kind", "_pending", "_prefetched")

    def __init__(self, kind: int, db: sqlite3.Connection | None = None) -> None:
        self._db = db
        self._kind = kind
        # In memory: every entry. Spilled: the writes not yet flushed.
        self._pending: dict[str, str] = {}
        self._cache: dict[str, str] = {}
        self._prefetched: set[str] = set()

    def __len__(self) -> int:
        """Entries held in memory."""
        return len(self._pending)

    def get(self, key: str) -> str | None:
        found = self._pending.get(key)
        if found is not None or self._db is None:
            return found
        found = self._cache.get(key)
        if found is not None or key in self._prefetched:
            return found
        row = self._db.execute(
            "SELECT value FROM seen WHERE kind = ? AND key = ?", (self._kind, key)
        ).fetchone()
        return None if row is None else str(row[0])

    def __contains__(self, key: str) -> bool:
        if self._db is None:
            return key in self._pending
        return self.get(key) is not None

    def __setitem__(self, key: str, value: str) -> None:
        self._pending[key] = value
        if self._db is not None:
            self._cache.pop(key, None)
            if len(self._pending) >= _FLUSH_EVERY:
                self.flush()

    def add(self, key: str) -> None:
        self[key] = key

    def prefetch(self, keys: Iterable[str]) -> None:
        if self._db is None:
            return
        wanted = [k for k in set(keys) if k not in self._pending and k not in self._prefetched]
        for start in range(0, len(wanted), _FLUSH_EVERY):
            part = wanted[start : start + _FLUSH_EVERY]
            rows = self._db.execute(
                "SELECT key, value FROM seen WHERE kind = ? AND key IN"
                " (SELECT value FROM json_each(?))",
                (self._kind, orjson.dumps(part).decode()),
            )
            self._cache.update(rows)
            self._prefetched.update(part)

    def flush(self) -> None:
        """Write what waits (prefetched answers stay right: they learn the new values)."""
        if self._db is None or not self._pending:
            return
        with _bulk(self._db):
            self._db.executemany(
                "INSERT OR REPLACE INTO seen (kind, key, value) VALUES (?, ?, ?)",
                [(self._kind, k, v) for k, v in self._pending.items()],
            )
        prefetched = self._prefetched
        self._cache.update((k, v) for k, v in self._pending.items() if k in prefetched)
        self._pending.clear()

    def end_chunk(self) -> None:
        """Spilled: write what waits and forget the chunk's prefetched answers."""
        if self._db is None:
            return
        self.flush()
        self._cache.clear()
        self._prefetched.clear()

    def spill(self, db: sqlite3.Connection) -> None:
        """Move every entry to the scratch database; from now on the map lives there."""
        if self._db is None:
            self._db = db
            self.flush()


class _Records:
    """The source's records as they were when the run started: in dicts (one per kind) up to
    ``limit`` records, else in the scratch database (then the dicts hold a chunk's
    prefetched answers)."""

    def __init__(self, scratch: _Scratch, store: Store, source: str, *, limit: int) -> None:
        self._scratch = scratch
        self._db: sqlite3.Connection | None = None
        self.source = source
        self._known: tuple[dict[str, _Known], dict[str, _Known]] = ({}, {})
        self._prefetched: tuple[set[str], set[str]] = (set(), set())
        self._current_cis: set[str] | None = None  # for claims(), built when first asked
        self.size = 0
        runs: dict[str, str] = {}  # a run's id and time are shared by its records
        times: dict[datetime, datetime] = {}
        rows: list[tuple[Any, ...]] = []
        make = tuple.__new__  # _Known(...) without its Python-level __new__: ~2x faster
        try:
            for record in store.iter_source_records(source):
                kind = _CI_KIND if record.kind == "ci" else _REL_KIND
                key, ci = record.key, record.ci
                last_run, last_seen = record.last_run, record.last_seen
                known: _Known = make(
                    _Known,
                    (
                        key if ci == key else ci,  # one string for both when they agree
                        record.digest,
                        runs.get(last_run) or runs.setdefault(last_run, last_run),
                        times.get(last_seen) or times.setdefault(last_seen, last_seen),
                        record.absent_since,
                    ),
                )
                self.size += 1
                if self._db is None:
                    self._known[kind][key] = known
                    if self.size > limit:
                        self._db = scratch.db
                        self._db.execute("BEGIN")
                        self._copy_known()
                    continue
                rows.append(known.row(kind, key))
                if len(rows) >= _RECORD_BATCH:
                    self._insert(rows)
            if self._db is not None:
                self._insert(rows)
                self._db.execute(_RECORD_CI_INDEX)
                self._db.execute("COMMIT")
        except BaseException:
            if self._db is not None and self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    @property
    def on_disk(self) -> sqlite3.Connection | None:
        """The scratch database once the records live there; None while in memory."""
        return self._db

    def __len__(self) -> int:
        """Records held in memory."""
        return len(self._known[_CI_KIND]) + len(self._known[_REL_KIND])

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        assert self._db is not None
        self._db.executemany("INSERT OR REPLACE INTO record VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        rows.clear()

    def _copy_known(self) -> None:
        """Copy the records held in memory to the scratch database (in its transaction)."""
        rows: list[tuple[Any, ...]] = []
        for kind, known in enumerate(self._known):
            for key, record in known.items():
                rows.append(record.row(kind, key))
                if len(rows) >= _RECORD_BATCH:
                    self._insert(rows)
            known.clear()
        self._insert(rows)
        self._current_cis = None

    def spill(self) -> None:
        """Move the records to the scratch database; from now on they live there."""
        if self._db is not None:
            return
        self._db = self._scratch.db
        with _bulk(self._db):
            self._copy_known()
            self._db.execute(_RECORD_CI_INDEX)

    def get(self, kind: int, key: str) -> _Known | None:
        found = self._known[kind].get(key)
        if found is not None or self._db is None or key in self._prefetched[kind]:
            return found
        row = self._db.execute(
            "SELECT ci, digest, last_run, last_seen, absent_since FROM record"
            " WHERE kind = ? AND key = ?",
            (kind, key),
        ).fetchone()
        return None if row is None else _Known.from_row(row)

    def prefetch(self, kind: int, keys: Iterable[str]) -> None:
        if self._db is None:
            return
        known, prefetched = self._known[kind], self._prefetched[kind]
        wanted = [k for k in set(keys) if k not in prefetched]
        for start in range(0, len(wanted), _FLUSH_EVERY):
            part = wanted[start : start + _FLUSH_EVERY]
            rows = self._db.execute(
                "SELECT key, ci, digest, last_run, last_seen, absent_since FROM record"
                " WHERE kind = ? AND key IN"
                " (SELECT value FROM json_each(?))",
                (kind, orjson.dumps(part).decode()),
            )
            for row in rows:
                known[row[0]] = _Known.from_row(row[1:])
            prefetched.update(part)

    def forget_prefetched(self) -> None:
        if self._db is None:
            return  # in memory, the dicts are the records
        for kind in (_CI_KIND, _REL_KIND):
            self._known[kind].clear()
            self._prefetched[kind].clear()

    def claims(self, ci: str) -> bool:
        """A current record of the source names this CI (it reports it under some key)."""
        if self._db is None:
            if self._current_cis is None:
                self._current_cis = {
                    r.ci for r in self._known[_CI_KIND].values() if r.absent_since is None
                }
            return ci in self._current_cis
        row = self._db.execute(
            "SELECT 1 FROM record WHERE kind = 0 AND absent_since IS NULL AND ci = ? LIMIT 1",
            (ci,),
        ).fetchone()
        return row is not None

    def unseen(self, kind: int, seen: _RunMap) -> Iterator[SourceRecord]:
        """Records of ``kind`` whose key this run did not see (is not in ``seen``), by key.
        On disk, ``seen`` is on disk too (the run's state spills as a whole) and flushed."""
        if self._db is None:
            known = self._known[kind]
            for key in sorted(known):
                if key not in seen:
                    yield self._record(kind, key, known[key])
            return
        rows = self._db.execute(
            "SELECT key, ci, digest, last_run, last_seen, absent_since FROM record AS r"
            " WHERE kind = ? AND NOT EXISTS"
            " (SELECT 1 FROM seen AS s WHERE s.kind = r.kind AND s.key = r.key) ORDER BY key",
            (kind,),
        )
        for row in rows:
            yield self._record(kind, row[0], _Known.from_row(row[1:]))

    def _record(self, kind: int, key: str, known: _Known) -> SourceRecord:
        return SourceRecord(
            source=self.source,
            kind="ci" if kind == _CI_KIND else "relationship",
            key=key,
            ci=known.ci,
            digest=known.digest,
            last_run=known.last_run,
            last_seen=known.last_seen,
            absent_since=known.absent_since,
        )


@dataclass(slots=True)
class _Item:
    incoming: IncomingCi
    key: str
    digest: str
    record: _Known | None
    placeholder: CiId | None = None  # the placeholder this run made for the key, if any
    target: CiId | None = None
    old: ConfigurationItem | None = None


class Planner:
    """Plans one run of one source. Feed chunks in order with :meth:`plan_chunk`, then call
    :meth:`plan_cleanup` once. Reads the store; never writes it."""

    def __init__(
        self, store: Store, *, source: str, run_id: str, now: datetime, options: RunOptions
    ) -> None:
        self.store = store
        self.source = source
        self.run_id = run_id
        self.now = now
        self.options = options
        self.rules = options.rules
        self.stamp = Provenance(source=source, at=now, run_id=run_id)
        self.report = ReportBuilder()
        self.errors: list[str] = []
        self.error_count = 0
        self.complete = True
        # Per-item state lives in dicts up to IN_MEMORY_ENTRIES, then in a scratch database:
        # memory stays bounded, whatever the size of the source (docs/importing.md).
        self._limit = IN_MEMORY_ENTRIES
        self._scratch = _Scratch()
        # The source's records when the run started; current ones name CIs this source
        # already reports under some key: never identification candidates.
        self.records = _Records(self._scratch, store, source, limit=self._limit)
        self.source_size = self.records.size
        disk = self.records.on_disk  # a source too big for memory starts the run on disk
        self.run_keys = _RunMap(_CI_KIND, disk)  # key -> CI, every CI item seen
        self.seen_relationships = _RunMap(_REL_KIND, disk)  # relationship keys
        self.run_claimed = _RunMap(_CLAIMED_KIND, disk)  # CIs reported or created
        # Exceptions, kept in memory: refs kept alive only by relationships, conflicts.
        self.placeholder_keys: dict[str, CiId] = {}
        self.conflict_keys: set[str] = set()
        self._snapshot: _Snapshot | None = None

    def close(self) -> None:
        """Drop the run's scratch database (also done when the planner is collected)."""
        self._scratch.close()

    @property
    def spilled(self) -> bool:
        """Whether the run's state moved to its scratch database (IN_MEMORY_ENTRIES)."""
        return self.records.on_disk is not None

    def _end_chunk(self) -> None:
        maps = (self.run_keys, self.seen_relationships, self.run_claimed)
        for state in maps:
            state.end_chunk()
        self.records.forget_prefetched()
        if not self.spilled and len(self.records) + sum(map(len, maps)) > self._limit:
            self.records.spill()
            db = self._scratch.db
            for state in maps:
                state.spill(db)

    # -- helpers -----------------------------------------------------------------------------
    @property
    def snapshot(self) -> _Snapshot:
        if self._snapshot is None:
            self._snapshot = _Snapshot(self.store)
        return self._snapshot

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)

    def warn(self, message: str) -> None:
        self.report.add("warnings", message)

    def conflict(self, conflict: Conflict) -> None:
        self.report.add("conflicts", conflict)

    @property
    def failed(self) -> bool:
        return self.error_count > 0

    # -- CIs ---------------------------------------------------------------------------------
    def plan_chunk(self, inventory: IncomingInventory) -> ChunkPlan:
        plan = ChunkPlan(items=len(inventory.cis) + len(inventory.relationships))
        if not inventory.complete:
            self.complete = False
        for warning in inventory.warnings:
            self.warn(warning)
        keys = [parsed.ci.id for parsed in inventory.cis]
        self.run_keys.prefetch(keys)
        self.run_claimed.prefetch(keys)  # new CIs take their key as id
        self.records.prefetch(_CI_KIND, keys)
        items = self._screen(inventory.cis)
        self._resolve(items)
        if not self.failed:
            self._plan_cis(items, plan)
            names = self._chunk_names(items)
            self._plan_relationships(inventory.relationships, plan, names)
            self._plan_changes(inventory.changes, plan)
        self._end_chunk()
        return plan

    def _screen(self, incoming: Sequence[IncomingCi]) -> list[_Item]:
        """Validate, and drop the items unchanged since the source last said them."""
        items: list[_Item] = []
        registry = self.store.registry
        run_keys, run_claimed = self.run_keys, self.run_claimed
        skip_unchanged = self.options.skip_unchanged
        # The source's records and whether the CIs they name are alive do not change during
        # the run: looked up for the whole chunk at once.
        records = [self.records.get(_CI_KIND, parsed.ci.id) for parsed in incoming]
        alive = self.snapshot.alive_many(
            [record.ci if record is not None else "" for record in records]
        )
        unchanged = 0
        for parsed, record, ci_alive in zip(incoming, records, alive, strict=True):
            ci = parsed.ci
            key = ci.id
            if key in run_keys or key in self.conflict_keys:
                self.error(
                    str(
                        ValidationError(
                            "the source reports this item twice in one run",
                            item=key,
                            field="id",
                            location=parsed.location,
                        )
                    )
                )
                continue
            try:
                registry.ci_class(ci.ci_class, item=key)
            except UnknownClassError as exc:
                exc.location = parsed.location
                self.error(exc._render())
                continue
            digest = digest_ci(ci)
            placeholder = self.placeholder_keys.pop(key, None)
            if (
                record is not None
                and skip_unchanged
                and record.digest == digest
                and record.absent_since is None
                and ci_alive
                and record.ci not in run_claimed
            ):
                run_keys[key] = record.ci
                run_claimed.add(record.ci)
                unchanged += 1
                continue
            items.append(_Item(parsed, key, digest, record, placeholder))
        if unchanged:
            self.report.count("ci", "unchanged", unchanged)
        return items

    def _resolve(self, items: list[_Item]) -> None:
        """Find each item's CI: its source record, else the identification rules."""
        wanted = {i.record.ci for i in items if i.record is not None}
        wanted.update(i.placeholder for i in items if i.placeholder is not None)
        olds = self.store.get_cis(wanted)
        unresolved: list[_Item] = []
        for item in items:
            record = item.record
            if item.placeholder is not None:
                # Referenced earlier in this run, reported now: the placeholder becomes it.
                self._claim(item, item.placeholder, olds.get(item.placeholder))
            elif record is not None and record.ci in olds and record.ci not in self.run_claimed:
                self._claim(item, record.ci, olds[record.ci])
            else:
                unresolved.append(item)
        step = 0
        while unresolved:
            unresolved = self._identify_step(unresolved, step)
            step += 1

    def _claim(self, item: _Item, target: CiId, old: ConfigurationItem | None) -> None:
        item.target, item.old = target, old
        self.run_keys[item.key] = target
        self.run_claimed.add(target)

    def _identify_step(self, items: list[_Item], step: int) -> list[_Item]:
        """Try each item's ``step``-th identifier; return those still unresolved."""
        groups: dict[str, list[_Item]] = {}
        exhausted: list[_Item] = []
        for item in items:
            entries = self.rules.identifiers(item.incoming.ci.ci_class)
            if step < len(entries):
                groups.setdefault(entries[step], []).append(item)
            else:
                exhausted.append(item)
        self._create(exhausted)
        left: list[_Item] = []
        for entry, group in groups.items():
            found = self._candidates(entry, group)
            for item in group:
                ci = item.incoming.ci
                candidates = [
                    c
                    for c in found.get(item.key, [])
                    if (not self.rules.same_class or c.ci_class == ci.ci_class)
                    and c.id not in self.run_claimed
                    and not self.records.claims(c.id)
                ]
                if not candidates:
                    left.append(item)
                elif len(candidates) == 1:
                    self._claim(item, candidates[0].id, candidates[0])
                else:
                    self.conflict_keys.add(item.key)
                    value = ci.name if entry == NAME else item.key
                    if entry not in (NAME, ID):
                        value = str(normalise_identifier(ci.attributes.get(entry)))
                    self.conflict(
                        Conflict(
                            item=item.key,
                            location=item.incoming.location,
                            reason=f"{entry} {value!r}"
                            + (f" and class {ci.ci_class}" if entry == NAME else ""),
                            candidates=tuple(sorted(c.id for c in candidates)),
                        )
                    )
        return left

    def _candidates(self, entry: str, items: list[_Item]) -> dict[str, list[ConfigurationItem]]:
        """Candidate CIs per item key for one identifier."""
        found: dict[str, list[ConfigurationItem]] = {}
        if entry == ID:
            existing = self.store.get_cis(CiId(i.key) for i in items)
            for item in items:
                if item.key in existing:
                    found[item.key] = [existing[CiId(item.key)]]
        elif entry == NAME:
            # By name alone, one lookup for the chunk; the class is filtered by the caller
            # (rules.same_class).
            named = self.store.find_by_names(i.incoming.ci.name for i in items)
            for item in items:
                found[item.key] = named.get(item.incoming.ci.name, [])
        else:
            values = {
                i.key: v
                for i in items
                if (v := normalise_identifier(i.incoming.ci.attributes.get(entry))) is not None
            }
            if values:
                matches = self.store.match_identifiers(entry, sorted(set(values.values())))
                bodies = self.store.get_cis({c for ids in matches.values() for c in ids})
                for key, value in values.items():
                    found[key] = [bodies[c] for c in matches.get(value, ()) if c in bodies]
        return found

    def _create(self, items: list[_Item]) -> None:
        """New CIs: id = the key, or ``<source>:<key>`` when the key is another CI's id."""
        if not items:
            return
        ids = [CiId(i.key) for i in items] + [CiId(f"{self.source}:{i.key}") for i in items]
        taken = set(self.store.get_cis(ids).keys())
        for item in items:
            target = CiId(item.key)
            if target in taken or target in self.run_claimed:
                target = CiId(f"{self.source}:{item.key}")
                if target in taken or target in self.run_claimed:
                    self.conflict_keys.add(item.key)
                    self.conflict(
                        Conflict(
                            item=item.key,
                            location=item.incoming.location,
                            reason=f"id {item.key!r} (taken by CIs it does not identify with)",
                            candidates=(CiId(item.key), target),
                        )
                    )
                    continue
            self._claim(item, target, None)
            taken.add(target)

    def _plan_cis(self, items: list[_Item], plan: ChunkPlan) -> None:
        for item in items:
            if item.target is None:
                continue  # a conflict
            incoming = item.incoming.ci
            update: dict[str, Any] = {"id": item.target}
            if incoming.redundancy:
                update["redundancy"] = self._translate_redundancy(incoming.redundancy)
            merged = merge_ci(
                item.old,
                incoming.model_copy(update=update),
                source=self.source,
                stamp=self.stamp,
                rules=self.rules,
            )
            record = item.record
            if (
                item.old is not None
                and record is not None
                and record.absent
                and item.old.status == Status.RETIRED
                and not said(incoming, "status")
            ):
                merged = merged.model_copy(update={"status": Status.OPERATIONAL})
            self._ci_outcome(item.old, merged, plan)
            self._record(plan.ci_records, "ci", item.key, item.target, item.digest)

    def _ci_outcome(
        self, old: ConfigurationItem | None, merged: ConfigurationItem, plan: ChunkPlan
    ) -> None:
        if old is None:
            plan.cis.append(merged.model_copy(update={"last_seen": self.now}))
            self.report.count("ci", "created")
            self.report.add("created", merged.id)
            return
        if merged is old or (
            merged.tracked() == old.tracked() and merged.provenance == old.provenance
        ):
            self.report.count("ci", "unchanged")
            return
        plan.cis.append(merged.model_copy(update={"last_seen": self.now}))
        changes = _field_changes(old, merged)
        if changes:
            self.report.count("ci", "updated")
            self.report.add("updated", ItemUpdate(merged.id, changes))
        else:
            self.report.count("ci", "unchanged")  # provenance only: no history entry

    def _record(
        self, records: list[SourceRecord], kind: str, key: str, ci: CiId, digest: str
    ) -> None:
        old = self.records.get(_CI_KIND if kind == "ci" else _REL_KIND, key)
        if old is not None and old.ci == ci and old.digest == digest and not old.absent:
            return
        records.append(
            SourceRecord(
                source=self.source,
                kind="ci" if kind == "ci" else "relationship",
                key=key,
                ci=ci,
                digest=digest,
                last_run=self.run_id,
                last_seen=self.now,
            )
        )

    def _translate_redundancy(
        self, groups: tuple[RedundancyGroup, ...]
    ) -> tuple[RedundancyGroup, ...]:
        """Members are the source's keys: name the reconciled CIs instead."""
        out = []
        for group in groups:
            members = [self._known_ref(m) or m for m in group.members]
            if list(members) == list(group.members):
                out.append(group)
            else:
                out.append(
                    RedundancyGroup.model_validate(
                        {**group.model_dump(), "members": sorted(set(members))}
                    )
                )
        return tuple(out)

    def _known_ref(self, ref: str) -> CiId | None:
        """A reference resolved from memory: a key of this run or of this source, or a CI
        this run creates."""
        found = self.run_keys.get(ref) or self.placeholder_keys.get(ref)
        if found is not None:
            return CiId(found)
        record = self.records.get(_CI_KIND, ref)
        if (
            record is not None
            and ref not in self.conflict_keys
            and (record.ci in self.run_claimed or self.snapshot.has_ci(record.ci))
        ):
            return record.ci
        if ref in self.run_claimed:
            return CiId(ref)
        return None

    @staticmethod
    def _chunk_names(items: list[_Item]) -> dict[str, set[CiId]]:
        names: dict[str, set[CiId]] = {}
        for item in items:
            if item.target is not None:
                names.setdefault(item.incoming.ci.name, set()).add(item.target)
        return names

    # -- relationships -----------------------------------------------------------------------
    def _plan_relationships(
        self,
        incoming: Sequence[IncomingRelationship],
        plan: ChunkPlan,
        chunk_names: dict[str, set[CiId]],
    ) -> None:
        registry = self.store.registry
        types = registry.relationship_types
        valid: list[IncomingRelationship] = []
        for rel in incoming:
            if rel.type not in types:
                try:
                    registry.relationship_type(rel.type, item=_describe_refs(rel))
                except UnknownRelationshipTypeError as exc:
                    exc.location = rel.location
                    self.error(exc._render())
                    continue
            valid.append(rel)
        if self.failed:
            return
        refs = self._resolve_refs(
            {r for rel in valid for r in (rel.source_ref, rel.target_ref)}, chunk_names
        )
        if self.spilled:
            # The keys of relationships whose ends are known, looked up at once (the others,
            # to placeholders, one by one).
            texts = [
                relationship_key((source, rel.type, target))
                for rel in valid
                if isinstance(source := refs.get(rel.source_ref), str)
                and isinstance(target := refs.get(rel.target_ref), str)
            ]
            self.seen_relationships.prefetch(texts)
            self.records.prefetch(_REL_KIND, texts)
        seen = self.seen_relationships
        records = self.records
        skip_unchanged = self.options.skip_unchanged
        # (key, its text, relationship, digest, whether the source's record says unchanged)
        planned: list[tuple[RelKey, str, IncomingRelationship, str, bool]] = []
        for rel in valid:
            source_ci = refs.get(rel.source_ref)
            if not isinstance(source_ci, str):
                source_ci = self._end(rel, "source", rel.source_ref, source_ci, plan)
            target_ci = refs.get(rel.target_ref)
            if not isinstance(target_ci, str):
                target_ci = self._end(rel, "target", rel.target_ref, target_ci, plan)
            if source_ci is None or target_ci is None:
                continue
            key: RelKey = (source_ci, rel.type, target_ci)
            if source_ci == target_ci:
                self.warn(
                    f"{rel.location}: {_describe_refs(rel)}: both ends are CI {source_ci!r}; "
                    "skipped"
                )
                continue
            text = relationship_key(key)
            if text in seen:
                self.warn(f"{rel.location}: {describe_key(key)} is reported twice; skipped")
                continue
            seen.add(text)
            digest = digest_relationship(rel.attributes)
            record = records.get(_REL_KIND, text)
            recorded = (
                record is not None
                and skip_unchanged
                and record.digest == digest
                and record.absent_since is None
            )
            planned.append((key, text, rel, digest, recorded))
        # Which of them exist, for the whole chunk at once.
        there = self.snapshot.has_relationships([entry[0] for entry in planned])
        unchanged = 0
        for (key, text, rel, digest, recorded), present in zip(planned, there, strict=True):
            if recorded and present:
                unchanged += 1
                continue
            old = self.store.get_relationship(key) if present else None
            self._relationship_outcome(key, old, rel.attributes, plan)
            self._record(plan.relationship_records, "relationship", text, key[0], digest)
        if unchanged:
            self.report.count("relationship", "unchanged", unchanged)

    def _relationship_outcome(
        self,
        key: RelKey,
        old: Relationship | None,
        attributes: Mapping[str, AttributeValue],
        plan: ChunkPlan,
    ) -> None:
        text = describe_key(key)
        if old is None:
            provenance = {RELATIONSHIP_PROVENANCE: self.stamp}
            provenance.update({f"{ATTRIBUTES}.{k}": self.stamp for k in attributes})
            plan.relationships.append(
                Relationship(
                    source=key[0],
                    type=key[1],
                    target=key[2],
                    attributes=dict(attributes),
                    provenance=provenance,
                    last_seen=self.now,
                )
            )
            self.report.count("relationship", "created")
            self.report.add("created_relationships", text)
            return
        provenance = dict(old.provenance)
        provenance.setdefault(RELATIONSHIP_PROVENANCE, self.stamp)
        merged, changed = merge_attributes(
            old.attributes,
            attributes,
            provenance,
            source=self.source,
            stamp=self.stamp,
            rules=self.rules,
        )
        if not changed and provenance == old.provenance:
            self.report.count("relationship", "unchanged")
            return
        plan.relationships.append(
            old.model_copy(
                update={"attributes": merged, "provenance": provenance, "last_seen": self.now}
            )
        )
        if changed:
            self.report.count("relationship", "updated")
            self.report.add(
                "updated_relationships",
                ItemUpdate(text, _attribute_changes(old.attributes, merged)),
            )
        else:
            self.report.count("relationship", "unchanged")

    def _resolve_refs(
        self, refs: Iterable[str], chunk_names: dict[str, set[CiId]]
    ) -> dict[str, CiId | tuple[CiId, ...] | None]:
        """Each reference to a CI, to a tuple of candidates (ambiguous name), or None."""
        out: dict[str, CiId | tuple[CiId, ...] | None] = {}
        pending: list[str] = []
        refs = list(refs)
        self.run_keys.prefetch(refs)
        self.run_claimed.prefetch(refs)
        self.records.prefetch(_CI_KIND, refs)
        for ref in refs:
            if ref in self.conflict_keys:
                out[ref] = None
                continue
            known = self._known_ref(ref)
            if known is not None:
                out[ref] = known
                if ref not in self.run_keys and self.records.get(_CI_KIND, ref) is not None:
                    # Still referenced: the CI stays reported, if only by reference.
                    self.placeholder_keys[ref] = known
            else:
                pending.append(ref)
        existing = self.store.get_cis(CiId(r) for r in pending)
        named = self.store.find_by_names(r for r in pending if r not in existing)
        for ref in pending:
            if ref in existing:
                out[ref] = CiId(ref)
                continue
            candidates = set(chunk_names.get(ref, ())) | {c.id for c in named.get(ref, ())}
            if len(candidates) == 1:
                out[ref] = next(iter(candidates))
            elif candidates:
                out[ref] = tuple(sorted(candidates))
            else:
                out[ref] = None
        return out

    def _end(
        self,
        rel: IncomingRelationship,
        end: str,
        ref: str,
        resolved: CiId | tuple[CiId, ...] | None,
        plan: ChunkPlan,
    ) -> CiId | None:
        if isinstance(resolved, str):
            return resolved
        what = _describe_refs(rel)
        if isinstance(resolved, tuple):
            self.conflict(
                Conflict(
                    item=what,
                    location=rel.location,
                    reason=f"{end} name {ref!r}",
                    candidates=resolved,
                )
            )
            return None
        if ref in self.conflict_keys:
            self.warn(f"{rel.location}: {what}: {end} {ref!r} is on the review list; skipped")
            return None
        if ref in self.placeholder_keys:
            return self.placeholder_keys[ref]
        if not self.options.placeholders:
            self.warn(f"{rel.location}: {what}: {end} {ref!r} names no CI; skipped")
            return None
        placeholder = self._placeholder(ref, plan)
        if placeholder is not None:
            self.warn(
                f"{rel.location}: {what}: {end} {ref!r} names no CI; created placeholder "
                f"CI {placeholder!r} (class {PLACEHOLDER_CLASS})"
            )
        return placeholder

    def _placeholder(self, ref: str, plan: ChunkPlan) -> CiId | None:
        target = CiId(ref)
        if target in self.run_claimed:
            target = CiId(f"{self.source}:{ref}")
        try:
            ci = ConfigurationItem.model_validate(
                {
                    "id": target,
                    "class": PLACEHOLDER_CLASS,
                    "name": ref[:512],
                    "attributes": {PLACEHOLDER_ATTRIBUTE: True},
                }
            )
        except ValueError as exc:
            self.warn(f"cannot create a placeholder for {ref!r}: {exc}")
            return None
        self.placeholder_keys[ref] = target
        self.run_claimed.add(target)
        self.report.add("placeholders", target)
        merged = merge_ci(None, ci, source=self.source, stamp=self.stamp, rules=self.rules)
        self._ci_outcome(None, merged, plan)
        self._record(plan.ci_records, "ci", ref, target, digest_ci(ci))
        return target

    def _plan_changes(self, changes: Sequence[ExternalChange], plan: ChunkPlan) -> None:
        for change in changes:
            ci = self._known_ref(change.ci) or change.ci
            plan.changes.append(change if ci == change.ci else change.model_copy(update={"ci": ci}))
            self.report.count("ci", "external_changes")

    # -- the end of the run ------------------------------------------------------------------
    def plan_cleanup(self) -> Cleanup:
        """What the source stopped reporting: mark absent; past the grace period retire CIs and
        delete relationships, unless another source still reports them. Nothing at all when
        the run failed or read the source only in part."""
        cleanup = Cleanup()
        if self.failed or not self.complete:
            return cleanup
        self._end_chunk()
        due = self.now - self.options.grace
        retire: list[SourceRecord] = []
        for batch in _batched(self.records.unseen(_CI_KIND, self.run_keys), _FLUSH_EVERY):
            unseen = [
                r
                for r in batch
                if r.key not in self.placeholder_keys and r.key not in self.conflict_keys
            ]
            current = self.store.get_cis({r.ci for r in unseen})
            for record in unseen:
                ci = current.get(record.ci)
                if ci is None:
                    cleanup.forget.append(("ci", record.key))
                    continue
                if ci.status == Status.RETIRED or record.ci in self.run_claimed:
                    continue
                self._mark_absent(record, cleanup, "absent")
                if (record.absent_since or self.now) <= due:
                    retire.append(record)
        delete: list[SourceRecord] = []
        for record in self.records.unseen(_REL_KIND, self.seen_relationships):
            key = parse_relationship_key(record.key)
            if not self.snapshot.has_relationship(key):
                cleanup.forget.append(("relationship", record.key))
                continue
            self._mark_absent(record, cleanup, "absent_relationships")
            if (record.absent_since or self.now) <= due:
                delete.append(record)
        if retire or delete:
            reported = self._reported_elsewhere()
            retiring: set[str] = set()
            for record in retire:
                if not reported(_CI_KIND, record.ci) and record.ci not in retiring:
                    retiring.add(record.ci)
                    cleanup.retire.append(record.ci)
            for record in delete:
                if not reported(_REL_KIND, record.key):
                    cleanup.delete_relationships.append(parse_relationship_key(record.key))
                    cleanup.forget.append(("relationship", record.key))
        self._guard(cleanup)
        return cleanup

    def _mark_absent(self, record: SourceRecord, cleanup: Cleanup, listed: str) -> None:
        kind = "ci" if record.kind == "ci" else "relationship"
        self.report.count(kind, "absent")
        self.report.add(listed, record.key)
        if record.absent_since is None:
            cleanup.absent_records.append(
                record.model_copy(update={"absent_since": self.now, "last_run": self.run_id})
            )

    def _reported_elsewhere(self) -> Callable[[int, str], bool]:
        """Whether other sources still report a CI (``_CI_KIND``, id) or a relationship
        (``_REL_KIND``, key): their current records, gathered in the scratch database."""
        db = self._scratch.db
        db.execute("DELETE FROM elsewhere")
        insert = "INSERT OR IGNORE INTO elsewhere (kind, key) VALUES (?, ?)"
        rows: list[tuple[int, str]] = []
        sources = {run.source for run in self.store.list_runs(limit=10_000)} - {self.source}
        with _bulk(db):
            for other in sorted(sources):
                for record in self.store.iter_source_records(other):
                    if record.absent_since is None:
                        rows.append(
                            (_CI_KIND, record.ci)
                            if record.kind == "ci"
                            else (_REL_KIND, record.key)
                        )
                    if len(rows) >= _FLUSH_EVERY:
                        db.executemany(insert, rows)
                        rows.clear()
            db.executemany(insert, rows)

        def reported(kind: int, key: str) -> bool:
            row = db.execute(
                "SELECT 1 FROM elsewhere WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
            return row is not None

        return reported

    def _guard(self, cleanup: Cleanup) -> None:
        removals = cleanup.removals
        if not removals:
            return
        allowed = self.options.allow_deletes
        what = (
            f"this run would retire {len(cleanup.retire)} CIs and delete "
            f"{len(cleanup.delete_relationships)} relationships ({removals} of the "
            f"{self.source_size} items source {self.source!r} reported)"
        )
        if allowed is not None:
            if removals > allowed:
                cleanup.stopped = (
                    f"{what}: more than --allow-deletes {allowed}. Nothing was removed; "
                    f"check the input, then re-run with --allow-deletes {removals}"
                )
            return
        fraction = self.options.max_delete_fraction
        if removals > fraction * self.source_size or removals > self.options.max_deletes:
            cleanup.stopped = (
                f"{what}: more than {fraction:.0%} of the source or "
                f"{self.options.max_deletes} items. Nothing was removed; check the input "
                f"(a truncated file? the wrong --source?), then re-run with "
                f"--allow-deletes {removals} to accept"
            )


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _describe_refs(rel: IncomingRelationship) -> str:
    return f"{rel.source_ref} -[{rel.type}]-> {rel.target_ref}"


def _field_changes(old: ConfigurationItem, new: ConfigurationItem) -> tuple[FieldChange, ...]:
    before, after = old.tracked(), new.tracked()
    changes: list[FieldChange] = []
    for name in ConfigurationItem.TRACKED_FIELDS:
        if before[name] == after[name]:
            continue
        if name == ATTRIBUTES:
            changes.extend(_attribute_changes(before[name], after[name]))
        else:
            changes.append(FieldChange(name, before[name], after[name]))
    return tuple(changes)


def _attribute_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    return tuple(
        FieldChange(f"{ATTRIBUTES}.{k}", old.get(k), new.get(k))
        for k in sorted(old.keys() | new.keys())
        if old.get(k) != new.get(k)
    )
