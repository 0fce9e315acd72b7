"""The embedded store: SQLite from the standard library, one file on local disk.

Zero set-up, and safe in the ways a CMDB needs:

* durable: WAL journal with ``synchronous=FULL``; a write that returned survives ``kill -9``
  (and power loss);
* safe for several processes: SQLite's own locking; writers take the lock up front
  (``BEGIN IMMEDIATE``) and wait up to ``busy_timeout`` for each other;
* one batch, one transaction: validation happens before the transaction, and anything that
  fails inside it rolls the whole batch back.

Each CI is a row with the columns filters need, plus its full JSON body; relationships are
keyed by node numbers ``(src, type, dst)`` so that the topology snapshot reads compact
integers.
"""

from __future__ import annotations

import base64
import dataclasses
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import orjson

from graph import batch
from graph.errors import ConfigurationError, NotFoundError, StoreError, ValidationError
from graph.model import (
    DEFAULT_REGISTRY,
    IDENTIFIER_ATTRIBUTES,
    Change,
    CiId,
    ConfigurationItem,
    Direction,
    ExternalChange,
    ImportRun,
    Incident,
    Limits,
    MaintenanceWindow,
    RedundancyGroup,
    Registry,
    Relationship,
    RelKey,
    SourceRecord,
    Status,
    WriteContext,
    WriteResult,
    check_batch_size,
    normalise_identifier,
    utcnow,
)
from graph.store import (
    ALL_CIS,
    STATUS_NUMBERS,
    CiFilter,
    Page,
    Subgraph,
    TeamColumns,
    Topology,
)

DB_FILE = "cmdb.sqlite3"
SCHEMA_VERSION = 1
_CHUNK = 500  # ids per IN (json_each) lookup; keeps single statements small

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ci (
    n INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    ci_class TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    environment TEXT,
    tags TEXT NOT NULL,
    redundancy TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ci_name ON ci (name, ci_class);
CREATE INDEX IF NOT EXISTS ci_class ON ci (ci_class, id);
CREATE TABLE IF NOT EXISTS rel (
    src INTEGER NOT NULL REFERENCES ci (n),
    type TEXT NOT NULL,
    dst INTEGER NOT NULL REFERENCES ci (n),
    body TEXT NOT NULL,
    PRIMARY KEY (src, type, dst)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rel_dst ON rel (dst, type, src);
CREATE TABLE IF NOT EXISTS change (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    ci TEXT NOT NULL,
    at TEXT NOT NULL,
    run_id TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS change_ci ON change (ci, at);
CREATE INDEX IF NOT EXISTS change_at ON change (at);
CREATE INDEX IF NOT EXISTS change_run ON change (run_id);
CREATE TABLE IF NOT EXISTS incident (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, opened_at TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS maintenance (
    id TEXT PRIMARY KEY, ci TEXT NOT NULL, start TEXT NOT NULL, end TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS maintenance_ci ON maintenance (ci);
CREATE TABLE IF NOT EXISTS ident (
    attr TEXT NOT NULL, value TEXT NOT NULL, n INTEGER NOT NULL REFERENCES ci (n),
    PRIMARY KEY (attr, value, n)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ident_n ON ident (n);
CREATE TABLE IF NOT EXISTS source_record (
    source TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (source, kind, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, started_at TEXT NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS run_source ON run (source, started_at);
"""


def iso(at: datetime) -> str:
    """UTC, fixed width: sorts as text in time order."""
    # isoformat pads the year to four digits (strftime's %Y does not below 1000)
    return at.astimezone(tz=_UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


_UTC = utcnow().tzinfo


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _ci_row(ci: ConfigurationItem) -> tuple[Any, ...]:
    return (
        ci.id,
        ci.ci_class,
        ci.name,
        ci.status.value,
        ci.environment,
        _dumps(list(ci.tags)),
        _dumps([g.model_dump(mode="json") for g in ci.redundancy]) if ci.redundancy else None,
        ci.model_dump_json(by_alias=False),
    )


def _encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode()


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("not a cursor this store issued", field="after") from None


T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqliteStore:
    """The embedded store in directory ``path`` (created if missing)."""

    def __init__(
        self,
        path: str | Path = ".cmdb",
        *,
        registry: Registry = DEFAULT_REGISTRY,
        busy_timeout_s: float = 30.0,
    ) -> None:
        self.registry = registry
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the embedded store directory {self.path}: {exc}; "
                "choose another with --store or CMDB_STORE"
            ) from exc
        self.file = self.path / DB_FILE
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._topology: Topology | None = None
        self._topology_lock = threading.Lock()
        self._init_schema()

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(
                    self.file,
                    timeout=self._busy_timeout_s,
                    isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                    check_same_thread=False,
                )
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open {self.file}: {exc}") from exc
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache per connection
            # SQLite's lower() folds ASCII only; Cypher's toLower() folds all of Unicode.
            db.create_function("py_lower", 1, _lower, deterministic=True)
            self._local.db = db
            self._all_connections().append(db)
        return db

    def _all_connections(self) -> list[sqlite3.Connection]:
        return self._conns

    def _init_schema(self) -> None:
        # IF NOT EXISTS everywhere: two processes opening a new store at once both succeed.
        self._connect().executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        with self._write() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?), ('generation', 0)",
                    (SCHEMA_VERSION,),
                )
            elif row[0] != SCHEMA_VERSION:
                raise ConfigurationError(
                    f"{self.file} has schema version {row[0]}; this release reads "
                    f"{SCHEMA_VERSION}. Export it with the release that wrote it."
                )
            # how many moves of the generation changed CI statuses only (see _versions)
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('status_moves', 0)")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.file} stayed locked by another writer: {exc}") from exc
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # One read transaction: a consistent snapshot across the statements inside.
        db = self._connect()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def close(self) -> None:
        for db in self._all_connections():
            db.close()
        self._all_connections().clear()
        self._local = threading.local()

    def describe(self) -> str:
        return f"embedded store at {self.file}"

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _bump(db: sqlite3.Connection, *, structure: bool = True) -> None:
        """Move the generation; ``structure=False``: only CI statuses changed."""
        db.execute(
            "UPDATE meta SET value = value + 1"
            " WHERE key = 'generation' OR (NOT ?1 AND key = 'status_moves')",
            (structure,),
        )

    @staticmethod
    def _versions(db: sqlite3.Connection) -> tuple[str, str]:
        """The generation and the count of its moves other than status-only ones (the
        structure count of ``Topology.structure``). A writer of an earlier release moves the
        generation alone: its changes all count as structural, which is safe."""
        values = dict(
            db.execute("SELECT key, value FROM meta WHERE key IN ('generation', 'status_moves')")
        )
        generation = int(values["generation"])
        return str(generation), str(generation - int(values.get("status_moves", 0)))

    @staticmethod
    def _insert_changes(db: sqlite3.Connection, changes: Sequence[Change]) -> None:
        db.executemany(
            "INSERT INTO change (id, ci, at, run_id, body) VALUES (?, ?, ?, ?, ?)",
            [(c.id, c.ci, iso(c.at), c.run_id, c.model_dump_json()) for c in changes],
        )

    @staticmethod
    def _load_cis(db: sqlite3.Connection, ids: Sequence[str]) -> dict[CiId, ConfigurationItem]:
        found: dict[CiId, ConfigurationItem] = {}
        for chunk in _chunks(ids):
            rows = db.execute(
                "SELECT body FROM ci WHERE id IN (SELECT value FROM json_each(?))",
                (_dumps(list(chunk)),),
            )
            for (body,) in rows:
                ci = ConfigurationItem.model_validate_json(body)
                found[ci.id] = ci
        return found

    @staticmethod
    def _numbers(db: sqlite3.Connection, ids: Iterable[str]) -> dict[CiId, int]:
        numbers: dict[CiId, int] = {}
        for chunk in _chunks(list(set(ids))):
            rows = db.execute(
                "SELECT id, n FROM ci WHERE id IN (SELECT value FROM json_each(?))",
                (_dumps(list(chunk)),),
            )
            numbers.update((CiId(i), n) for i, n in rows)
        return numbers

    @staticmethod
    def _ids_by_number(db: sqlite3.Connection, numbers: Iterable[int]) -> dict[int, str]:
        ids: dict[int, str] = {}
        for chunk in _chunks(sorted(numbers)):
            rows = db.execute(
                "SELECT n, id FROM ci WHERE n IN (SELECT value FROM json_each(?))",
                (_dumps(list(chunk)),),
            )
            ids.update(rows)
        return ids

    @staticmethod
    def _load_rels(
        db: sqlite3.Connection, keys: Sequence[tuple[int, str, int]]
    ) -> dict[tuple[int, str, int], Relationship]:
        found: dict[tuple[int, str, int], Relationship] = {}
        for chunk in _chunks(keys):
            rows = db.execute(
                "SELECT r.src, r.type, r.dst, r.body FROM json_each(?) AS j CROSS JOIN rel AS r"
                " ON r.src = json_extract(j.value, '$[0]')"
                " AND r.type = json_extract(j.value, '$[1]')"
                " AND r.dst = json_extract(j.value, '$[2]')",
                (_dumps([list(k) for k in chunk]),),
            )
            for src, type_, dst, body in rows:
                found[(src, type_, dst)] = Relationship.model_validate_json(body)
        return found

    # -- writes ------------------------------------------------------------------------------
    def upsert_cis(self, cis: Sequence[ConfigurationItem], ctx: WriteContext) -> WriteResult:
        result, _ = self.apply(cis, (), ctx)
        return result

    def upsert_relationships(
        self, relationships: Sequence[Relationship], ctx: WriteContext
    ) -> WriteResult:
        _, result = self.apply((), relationships, ctx)
        return result

    def apply(
        self,
        cis: Sequence[ConfigurationItem],
        relationships: Sequence[Relationship],
        ctx: WriteContext,
        *,
        delete_relationships: Sequence[RelKey] = (),
        source_records: Sequence[SourceRecord] = (),
    ) -> tuple[WriteResult, WriteResult]:
        batch.validate_cis(cis, self.registry)
        batch.validate_relationships(relationships, self.registry)
        with self._write() as db:
            ci_result, moved = self._write_cis(db, cis, ctx)
            rel_result = self._write_rels(db, relationships, ctx)
            if delete_relationships:
                rel_result += self._delete_rels(db, delete_relationships, ctx)
            self._put_source_records(db, source_records)
            rels_changed = rel_result.created + rel_result.updated + rel_result.deleted
            if ci_result.created + ci_result.updated + rels_changed:
                self._bump(db, structure=moved or bool(rels_changed))
        return ci_result, rel_result

    def _write_cis(
        self, db: sqlite3.Connection, cis: Sequence[ConfigurationItem], ctx: WriteContext
    ) -> tuple[WriteResult, bool]:
        """Write ``cis``; also whether the topology changed beyond statuses (a CI created,
        or a class, redundancy, owner or support group changed)."""
        if not cis:
            return WriteResult(), False
        existing = self._load_cis(db, [ci.id for ci in cis])
        rows: list[tuple[Any, ...]] = []
        written: list[ConfigurationItem] = []
        changes: list[Change] = []
        created = updated = 0
        moved = False
        for new in cis:
            old = existing.get(new.id)
            stored = batch.prepare_ci(old, new, ctx)
            if stored is None:
                continue
            rows.append(_ci_row(stored))
            written.append(stored)
            changes.extend(batch.ci_changes(old, stored, ctx))
            if old is None:
                created += 1
                moved = True
            else:
                updated += 1
                moved = moved or batch.moves_structure(old, stored)
        db.executemany(
            "INSERT INTO ci (id, ci_class, name, status, environment, tags, redundancy, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET ci_class = excluded.ci_class,"
            " name = excluded.name, status = excluded.status,"
            " environment = excluded.environment, tags = excluded.tags,"
            " redundancy = excluded.redundancy, body = excluded.body",
            rows,
        )
        self._index_identifiers(db, written)
        self._insert_changes(db, changes)
        unchanged = len(cis) - created - updated
        return WriteResult(created=created, updated=updated, unchanged=unchanged), moved

    def _index_identifiers(self, db: sqlite3.Connection, cis: Sequence[ConfigurationItem]) -> None:
        numbers = self._numbers(db, [ci.id for ci in cis])
        db.executemany("DELETE FROM ident WHERE n = ?", [(n,) for n in numbers.values()])
        db.executemany(
            "INSERT OR IGNORE INTO ident (attr, value, n) VALUES (?, ?, ?)",
            [
                (attr, value, numbers[ci.id])
                for ci in cis
                for attr in IDENTIFIER_ATTRIBUTES
                if (value := normalise_identifier(ci.attributes.get(attr))) is not None
            ],
        )

    def _write_rels(
        self, db: sqlite3.Connection, relationships: Sequence[Relationship], ctx: WriteContext
    ) -> WriteResult:
        if not relationships:
            return WriteResult()
        numbers = self._numbers(db, [e for r in relationships for e in (r.source, r.target)])
        batch.check_ends(relationships, set(numbers))
        keyed = [((numbers[r.source], r.type, numbers[r.target]), r) for r in relationships]
        existing = self._load_rels(db, [k for k, _ in keyed])
        rows: list[tuple[Any, ...]] = []
        changes: list[Change] = []
        created = updated = 0
        for key, new in keyed:
            old = existing.get(key)
            stored = batch.prepare_relationship(old, new, ctx)
            if stored is None:
                continue
            rows.append((*key, stored.model_dump_json()))
            changes.extend(batch.relationship_changes(old, stored, ctx))
            if old is None:
                created += 1
            else:
                updated += 1
        db.executemany(
            "INSERT INTO rel (src, type, dst, body) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (src, type, dst) DO UPDATE SET body = excluded.body",
            rows,
        )
        self._insert_changes(db, changes)
        return WriteResult(
            created=created, updated=updated, unchanged=len(relationships) - created - updated
        )

    def _delete_rels(
        self, db: sqlite3.Connection, keys: Sequence[RelKey], ctx: WriteContext
    ) -> WriteResult:
        check_batch_size(len(keys), "relationships")
        numbers = self._numbers(db, [e for k in keys for e in (k[0], k[2])])
        numbered = [
            (numbers[s], t, numbers[d]) for s, t, d in keys if s in numbers and d in numbers
        ]
        existing = self._load_rels(db, numbered)
        db.executemany("DELETE FROM rel WHERE src = ? AND type = ? AND dst = ?", list(existing))
        self._insert_changes(db, [batch.unrelated_change(r, ctx) for r in existing.values()])
        return WriteResult(deleted=len(existing))

    def delete_relationships(self, keys: Sequence[RelKey], ctx: WriteContext) -> WriteResult:
        _, result = self.apply((), (), ctx, delete_relationships=keys)
        return result

    def retire_cis(self, ids: Sequence[CiId], ctx: WriteContext) -> WriteResult:
        check_batch_size(len(ids), "CIs")
        with self._write() as db:
            existing = self._load_cis(db, list(ids))
            batch.check_known(ids, set(existing))
            # In the caller's order, as on Neo4j: the history entries are numbered in it.
            retired = [
                existing[ci_id].model_copy(update={"status": Status.RETIRED})
                for ci_id in dict.fromkeys(ids)
            ]
            result, moved = self._write_cis(db, retired, ctx)
            if result.updated:
                self._bump(db, structure=moved)
        return result

    def delete_cis(self, ids: Sequence[CiId], ctx: WriteContext) -> WriteResult:
        check_batch_size(len(ids), "CIs")
        with self._write() as db:
            existing = self._load_cis(db, list(ids))
            batch.check_known(ids, set(existing))
            numbers = self._numbers(db, list(existing))
            removed: dict[RelKey, Relationship] = {}
            for n in numbers.values():
                for (body,) in db.execute(
                    "SELECT body FROM rel WHERE src = ?1"
                    " UNION ALL SELECT body FROM rel WHERE dst = ?1",
                    (n,),
                ):
                    rel = Relationship.model_validate_json(body)
                    removed[rel.key] = rel
            # Canonical order, the same in both stores: relationships by key, then the CIs.
            changes = [batch.unrelated_change(removed[key], ctx) for key in sorted(removed)]
            changes.extend(
                batch.deleted_change(existing[ci_id], ctx) for ci_id in dict.fromkeys(ids)
            )
            params = [(n,) for n in numbers.values()]
            db.executemany("DELETE FROM rel WHERE src = ?", params)
            db.executemany("DELETE FROM rel WHERE dst = ?", params)
            db.executemany("DELETE FROM ident WHERE n = ?", params)
            db.executemany("DELETE FROM ci WHERE n = ?", params)
            self._insert_changes(db, changes)
            if existing:
                self._bump(db)
        return WriteResult(deleted=len(existing))

    def record_external_changes(self, changes: Sequence[ExternalChange], ctx: WriteContext) -> int:
        check_batch_size(len(changes), "changes")
        entries = [batch.external_change(c, ctx) for c in changes]
        with self._write() as db:
            known = self._numbers(db, [c.ci for c in entries])
            batch.check_known([c.ci for c in entries], set(known))
            before = db.total_changes
            db.executemany(
                "INSERT INTO change (id, ci, at, run_id, body) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                [(c.id, c.ci, iso(c.at), c.run_id, c.model_dump_json()) for c in entries],
            )
            return db.total_changes - before

    # -- reads -------------------------------------------------------------------------------
    def get_ci(self, ci: CiId) -> ConfigurationItem | None:
        row = self._connect().execute("SELECT body FROM ci WHERE id = ?", (ci,)).fetchone()
        return ConfigurationItem.model_validate_json(row[0]) if row else None

    def get_cis(self, ids: Iterable[CiId]) -> dict[CiId, ConfigurationItem]:
        with self._read() as db:
            return self._load_cis(db, list(dict.fromkeys(ids)))

    def find_by_name(self, name: str, ci_class: str | None = None) -> list[ConfigurationItem]:
        if ci_class is None:
            rows = self._connect().execute(
                "SELECT body FROM ci WHERE name = ? ORDER BY id", (name,)
            )
        else:
            rows = self._connect().execute(
                "SELECT body FROM ci WHERE name = ? AND ci_class = ? ORDER BY id",
                (name, ci_class),
            )
        return [ConfigurationItem.model_validate_json(body) for (body,) in rows]

    def find_by_names(self, names: Iterable[str]) -> dict[str, list[ConfigurationItem]]:
        found: dict[str, list[ConfigurationItem]] = {}
        db = self._connect()
        for chunk in _chunks(sorted(set(names))):
            rows = db.execute(
                "SELECT c.name, c.body FROM json_each(?) AS j"
                " CROSS JOIN ci AS c ON c.name = j.value ORDER BY c.name, c.id",
                (_dumps(list(chunk)),),
            )
            for name, body in rows:
                found.setdefault(name, []).append(ConfigurationItem.model_validate_json(body))
        return found

    @staticmethod
    def _where(filter: CiFilter) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if filter.classes:
            clauses.append("ci_class IN (SELECT value FROM json_each(?))")
            params.append(_dumps(sorted(filter.classes)))
        if filter.statuses:
            clauses.append("status IN (SELECT value FROM json_each(?))")
            params.append(_dumps(sorted(s.value for s in filter.statuses)))
        if not filter.include_retired:
            clauses.append("status != 'retired'")
        if filter.environment is not None:
            clauses.append("environment = ?")
            params.append(filter.environment)
        if filter.name_contains:
            clauses.append("instr(py_lower(name), py_lower(?)) > 0")
            params.append(filter.name_contains)
        if filter.tag is not None:
            clauses.append("EXISTS (SELECT 1 FROM json_each(ci.tags) WHERE value = ?)")
            params.append(filter.tag)
        return clauses, params

    def list_cis(
        self, filter: CiFilter = ALL_CIS, *, first: int = 100, after: str | None = None
    ) -> Page[ConfigurationItem]:
        if not 1 <= first <= Limits.MAX_PAGE:
            raise ValidationError(f"page size must be 1..{Limits.MAX_PAGE}", field="first")
        clauses, params = self._where(filter)
        if after is not None:
            clauses.append("id > ?")
            params.append(_decode_cursor(after))
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        rows = (
            self._connect()
            .execute(
                f"SELECT body FROM ci{where} ORDER BY id LIMIT ?",  # noqa: S608 (fixed clauses)
                (*params, first + 1),
            )
            .fetchall()
        )
        items = [ConfigurationItem.model_validate_json(body) for (body,) in rows[:first]]
        cursor = _encode_cursor(items[-1].id) if len(rows) > first else None
        return Page(items=items, next_cursor=cursor)

    def count_cis(self, filter: CiFilter = ALL_CIS) -> int:
        clauses, params = self._where(filter)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        row = (
            self._connect()
            .execute(
                f"SELECT count(*) FROM ci{where}",  # noqa: S608 (fixed clauses)
                params,
            )
            .fetchone()
        )
        return int(row[0])

    def get_relationship(self, key: RelKey) -> Relationship | None:
        row = (
            self._connect()
            .execute(
                "SELECT r.body FROM rel AS r"
                " JOIN ci AS s ON s.n = r.src JOIN ci AS d ON d.n = r.dst"
                " WHERE s.id = ? AND r.type = ? AND d.id = ?",
                key,
            )
            .fetchone()
        )
        return Relationship.model_validate_json(row[0]) if row else None

    def relationships(
        self,
        ci: CiId,
        direction: Direction = Direction.BOTH,
        types: frozenset[str] = frozenset(),
    ) -> list[Relationship]:
        with self._read() as db:
            numbers = self._numbers(db, [ci])
            if ci not in numbers:
                raise NotFoundError(f"no CI with id {ci!r}")
            rels = self._adjacent(db, [numbers[ci]], direction, types)
        return sorted((r for _, r in rels), key=lambda r: r.key)

    @staticmethod
    def _adjacent(
        db: sqlite3.Connection,
        nodes: Sequence[int],
        direction: Direction,
        types: frozenset[str],
        *,
        within: set[int] | None = None,
    ) -> list[tuple[int, Relationship]]:
        """Relationships touching ``nodes`` with the number of the node at the far end; with
        ``within``, only those whose far end is in it (the others are not parsed)."""
        found: list[tuple[int, Relationship]] = []
        for far, body in SqliteStore._adjacent_rows(db, nodes, direction, types, "r.body"):
            if within is None or far in within:
                found.append((far, Relationship.model_validate_json(body)))
        return found

    @staticmethod
    def _adjacent_rows(
        db: sqlite3.Connection,
        nodes: Sequence[int],
        direction: Direction,
        types: frozenset[str],
        column: Literal["r.body", "NULL"],
    ) -> Iterator[tuple[int, Any]]:
        """(far-end number, ``column``) of the relationships touching ``nodes``."""
        type_list = _dumps(sorted(types))
        type_clause = " AND r.type IN (SELECT value FROM json_each(?))" if types else ""
        queries = []
        if direction in (Direction.OUT, Direction.BOTH):
            queries.append(("src", "dst"))
        if direction in (Direction.IN, Direction.BOTH):
            queries.append(("dst", "src"))
        for near, far in queries:
            sql = (
                f"SELECT r.{far}, {column} FROM json_each(?) AS j CROSS JOIN rel AS r"  # noqa: S608
                f" ON r.{near} = j.value{type_clause}"
            )
            for chunk in _chunks(nodes):
                params: tuple[Any, ...] = (_dumps(list(chunk)),)
                if types:
                    params += (type_list,)
                yield from db.execute(sql, params)

    def iter_relationships(self, batch_size: int = 10_000) -> Iterator[Relationship]:
        last: tuple[str, str, str] = ("", "", "")
        while True:
            rows = (
                self._connect()
                .execute(
                    "SELECT s.id, r.type, d.id, r.body FROM rel AS r"
                    " JOIN ci AS s ON s.n = r.src JOIN ci AS d ON d.n = r.dst"
                    " WHERE (s.id, r.type, d.id) > (?, ?, ?)"
                    " ORDER BY s.id, r.type, d.id LIMIT ?",
                    (*last, batch_size),
                )
                .fetchall()
            )
            for _, _, _, body in rows:
                yield Relationship.model_validate_json(body)
            if len(rows) < batch_size:
                return
            last = (rows[-1][0], rows[-1][1], rows[-1][2])

    def neighbourhood(
        self,
        roots: Sequence[CiId],
        *,
        direction: Direction = Direction.BOTH,
        depth: int = 1,
        types: frozenset[str] = frozenset(),
        limit: int = 10_000,
    ) -> Subgraph:
        if not 0 <= depth <= Limits.MAX_DEPTH:
            raise ValidationError(f"depth must be 0..{Limits.MAX_DEPTH}", field="depth")
        for type_name in types:
            self.registry.relationship_type(type_name)
        # Parsing thousands of bodies allocates many small objects: no cyclic GC meanwhile.
        with self._read() as db, batch.gc_paused():
            numbers = self._numbers(db, roots)
            batch.check_known(roots, set(numbers))
            seen: set[int] = set(numbers.values())
            frontier = sorted(seen)
            for _ in range(depth):
                if not frontier or len(seen) >= limit:
                    break
                adjacent = self._adjacent_rows(db, frontier, direction, types, "NULL")
                reached = {n for n, _ in adjacent} - seen
                room = limit - len(seen)
                if len(reached) > room:  # keep the first by id, as the Neo4j store does
                    by_id = {ci_id: n for n, ci_id in self._ids_by_number(db, reached).items()}
                    reached = {by_id[ci_id] for ci_id in sorted(by_id)[:room]}
                frontier = sorted(reached)
                seen.update(frontier)
            cis = self._load_by_numbers(db, sorted(seen))
            inner = self._adjacent(db, sorted(seen), Direction.OUT, types, within=seen)
            rels = [r for _, r in inner]
        return Subgraph(
            cis=sorted(cis, key=lambda c: c.id), relationships=sorted(rels, key=lambda r: r.key)
        )

    @staticmethod
    def _load_by_numbers(db: sqlite3.Connection, numbers: Sequence[int]) -> list[ConfigurationItem]:
        cis: list[ConfigurationItem] = []
        for chunk in _chunks(numbers):
            rows = db.execute(
                "SELECT body FROM ci WHERE n IN (SELECT value FROM json_each(?))",
                (_dumps(list(chunk)),),
            )
            cis.extend(ConfigurationItem.model_validate_json(body) for (body,) in rows)
        return cis

    def history(
        self,
        cis: Sequence[CiId] | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        run_id: str | None = None,
        limit: int = 1000,
    ) -> list[Change]:
        if not 1 <= limit <= Limits.MAX_PAGE * 10:
            raise ValidationError(f"limit must be 1..{Limits.MAX_PAGE * 10}", field="limit")
        clauses: list[str] = []
        params: list[Any] = []
        if cis is not None:
            clauses.append("ci IN (SELECT value FROM json_each(?))")
            params.append(_dumps(list(cis)))
        if since is not None:
            clauses.append("at >= ?")
            params.append(iso(since))
        if until is not None:
            clauses.append("at <= ?")
            params.append(iso(until))
        if run_id is not None:
            clauses.append("run_id = ?")
            params.append(run_id)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        rows = self._connect().execute(
            f"SELECT body FROM change{where} ORDER BY at, seq LIMIT ?",  # noqa: S608
            (*params, limit),
        )
        return [Change.model_validate_json(body) for (body,) in rows]

    # -- incidents and maintenance -----------------------------------------------------------
    def put_incident(self, incident: Incident) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO incident (id, status, opened_at, body) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
                " opened_at = excluded.opened_at, body = excluded.body",
                (
                    incident.id,
                    incident.status.value,
                    iso(incident.opened_at),
                    incident.model_dump_json(),
                ),
            )

    def get_incident(self, incident_id: str) -> Incident | None:
        row = (
            self._connect()
            .execute("SELECT body FROM incident WHERE id = ?", (incident_id,))
            .fetchone()
        )
        return Incident.model_validate_json(row[0]) if row else None

    def list_incidents(self, *, open_only: bool = False) -> list[Incident]:
        sql = "SELECT body FROM incident"
        if open_only:
            sql += " WHERE status = 'open'"
        rows = self._connect().execute(sql + " ORDER BY opened_at, id")
        return [Incident.model_validate_json(body) for (body,) in rows]

    def put_maintenance_window(self, window: MaintenanceWindow) -> None:
        with self._write() as db:
            if not self._numbers(db, [window.ci]):
                raise NotFoundError(f"no CI with id {window.ci!r}")
            db.execute(
                "INSERT INTO maintenance (id, ci, start, end, body) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET ci = excluded.ci, start = excluded.start,"
                " end = excluded.end, body = excluded.body",
                (
                    window.id,
                    window.ci,
                    iso(window.start),
                    iso(window.end),
                    window.model_dump_json(),
                ),
            )

    def delete_maintenance_window(self, window_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM maintenance WHERE id = ?", (window_id,))

    def maintenance_windows(
        self, cis: Sequence[CiId] | None = None, *, at: datetime | None = None
    ) -> list[MaintenanceWindow]:
        clauses: list[str] = []
        params: list[Any] = []
        if cis is not None:
            clauses.append("ci IN (SELECT value FROM json_each(?))")
            params.append(_dumps(list(cis)))
        if at is not None:
            clauses.append("start <= ? AND end > ?")
            params.extend([iso(at), iso(at)])
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        rows = self._connect().execute(
            f"SELECT body FROM maintenance{where} ORDER BY start, id",  # noqa: S608
            params,
        )
        return [MaintenanceWindow.model_validate_json(body) for (body,) in rows]

    # -- import engine -----------------------------------------------------------------------
    def match_identifiers(self, attribute: str, values: Sequence[str]) -> dict[str, list[CiId]]:
        if attribute not in IDENTIFIER_ATTRIBUTES:
            raise ValidationError(
                f"not an identifying attribute; use one of {', '.join(IDENTIFIER_ATTRIBUTES)}",
                field=attribute,
            )
        found: dict[str, list[CiId]] = {}
        db = self._connect()
        for chunk in _chunks(sorted(set(values))):
            rows = db.execute(
                "SELECT i.value, c.id FROM json_each(?) AS j"
                " CROSS JOIN ident AS i ON i.attr = ? AND i.value = j.value"
                " JOIN ci AS c ON c.n = i.n ORDER BY i.value, c.id",
                (_dumps(list(chunk)), attribute),
            )
            for value, ci_id in rows:
                found.setdefault(value, []).append(CiId(ci_id))
        return found

    def source_records(self, source: str) -> list[SourceRecord]:
        return list(self.iter_source_records(source))

    def iter_source_records(
        self, source: str, *, batch_size: int = 1_000
    ) -> Iterator[SourceRecord]:
        """``source_records`` a page at a time (the import engine streams a million of them;
        ``graph.sync_plan``). Ordered by kind, key."""
        last = ("", "")
        while True:
            rows = (
                self._connect()
                .execute(
                    "SELECT kind, key, body FROM source_record WHERE source = ?"
                    " AND (kind, key) > (?, ?) ORDER BY kind, key LIMIT ?",
                    (source, *last, batch_size),
                )
                .fetchall()
            )
            for _, _, body in rows:
                yield SourceRecord.model_validate_json(body)
            if len(rows) < batch_size:
                return
            last = (rows[-1][0], rows[-1][1])

    @staticmethod
    def _put_source_records(db: sqlite3.Connection, records: Sequence[SourceRecord]) -> None:
        db.executemany(
            "INSERT INTO source_record (source, kind, key, body) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (source, kind, key) DO UPDATE SET body = excluded.body",
            [(r.source, r.kind, r.key, r.model_dump_json()) for r in records],
        )

    def put_source_records(self, records: Sequence[SourceRecord]) -> None:
        with self._write() as db:
            self._put_source_records(db, records)

    def delete_source_records(self, source: str, keys: Sequence[tuple[str, str]]) -> int:
        with self._write() as db:
            before = db.total_changes
            db.executemany(
                "DELETE FROM source_record WHERE source = ? AND kind = ? AND key = ?",
                [(source, kind, key) for kind, key in keys],
            )
            return db.total_changes - before

    def put_run(self, run: ImportRun) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO run (id, source, started_at, body) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                (run.id, run.source, iso(run.started_at), run.model_dump_json()),
            )

    def get_run(self, run_id: str) -> ImportRun | None:
        row = self._connect().execute("SELECT body FROM run WHERE id = ?", (run_id,)).fetchone()
        return ImportRun.model_validate_json(row[0]) if row else None

    def list_runs(self, source: str | None = None, *, limit: int = 100) -> list[ImportRun]:
        if source is None:
            rows = self._connect().execute(
                "SELECT body FROM run ORDER BY started_at DESC, id DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._connect().execute(
                "SELECT body FROM run WHERE source = ? ORDER BY started_at DESC, id DESC LIMIT ?",
                (source, limit),
            )
        return [ImportRun.model_validate_json(body) for (body,) in rows]

    # -- traversal ---------------------------------------------------------------------------
    def generation(self) -> str:
        row = self._connect().execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return str(row[0])

    def topology(self) -> Topology:
        with self._topology_lock:
            if self._topology is not None and self._topology.generation == self.generation():
                return self._topology
            self._topology = self._build_topology()
            return self._topology

    def _build_topology(self) -> Topology:
        type_names, class_names = self.registry.fingerprint()
        class_index = {name: i for i, name in enumerate(class_names)}
        type_index = {name: i for i, name in enumerate(type_names)}
        with self._read() as db:
            generation, structure = self._versions(db)
            # Row by row, never fetchall(): a million rows as tuples of str are ~300 MB.
            count, max_n = db.execute("SELECT count(*), coalesce(max(n), 0) FROM ci").fetchone()
            position = np.full(max_n + 1, -1, dtype=np.int64)
            ids: list[CiId] = []
            classes = np.empty(count, dtype=np.int16)
            statuses = np.empty(count, dtype=np.int8)
            rows = db.execute("SELECT n, id, ci_class, status FROM ci ORDER BY id")
            for i, (n, ci_id, ci_class, status) in enumerate(rows):
                position[n] = i
                ids.append(ci_id)
                classes[i] = class_index.get(ci_class, -1)
                statuses[i] = STATUS_NUMBERS[status]
            redundancy: dict[int, tuple[RedundancyGroup, ...]] = {}
            for n, groups in db.execute(
                "SELECT n, redundancy FROM ci WHERE redundancy IS NOT NULL"
            ):
                redundancy[int(position[n])] = tuple(
                    RedundancyGroup.model_validate(g) for g in orjson.loads(groups)
                )
            # the teams CIs name (a JSON field each: parsed by SQLite, only rows naming one)
            teams = TeamColumns.of(
                count,
                (
                    (int(position[n]), owner, support)
                    for n, owner, support in db.execute(
                        "SELECT n, owner, support FROM (SELECT n, "
                        "json_extract(body, '$.owner') AS owner, "
                        "json_extract(body, '$.support_group') AS support FROM ci) "
                        "WHERE owner IS NOT NULL OR support IS NOT NULL"
                    )
                ),
            )
            (edge_count,) = db.execute("SELECT count(*) FROM rel").fetchone()
            src = np.empty(edge_count, dtype=np.int64)
            dst = np.empty(edge_count, dtype=np.int64)
            types = np.empty(edge_count, dtype=np.int16)
            edges = db.execute("SELECT src, type, dst FROM rel")
            at = 0
            while page := edges.fetchmany(65_536):
                end = at + len(page)
                src[at:end] = np.fromiter((e[0] for e in page), dtype=np.int64, count=len(page))
                dst[at:end] = np.fromiter((e[2] for e in page), dtype=np.int64, count=len(page))
                types[at:end] = np.fromiter(
                    (type_index.get(e[1], -1) for e in page), dtype=np.int16, count=len(page)
                )
                at = end
        return Topology(
            ids=ids,
            classes=classes,
            class_names=class_names,
            statuses=statuses,
            src=position[src].astype(np.int32),
            dst=position[dst].astype(np.int32),
            rel_types=types,
            type_names=type_names,
            redundancy=redundancy,
            generation=generation,
            as_of=utcnow(),
            teams=teams,
            structure=structure,
        )

    def statuses_since(self, topology: Topology) -> Topology | None:
        with self._read() as db:
            generation, structure = self._versions(db)
            if topology.structure is None or structure != topology.structure:
                return None
            if generation == topology.generation:
                return topology
            ids: list[CiId] = []
            statuses = np.empty(topology.node_count, dtype=np.int8)
            for i, (ci_id, status) in enumerate(
                db.execute("SELECT id, status FROM ci ORDER BY id")
            ):
                if i >= topology.node_count:
                    return None
                ids.append(ci_id)
                statuses[i] = STATUS_NUMBERS[status]
        if ids != topology.ids:  # the structure count says they are; never trust it blindly
            return None
        current = dataclasses.replace(
            topology, statuses=statuses, generation=generation, as_of=utcnow()
        )
        with self._topology_lock:
            self._topology = current
        return current
