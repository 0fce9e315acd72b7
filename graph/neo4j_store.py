"""The production store: Neo4j 5 (Community or Enterprise) over Bolt.

How it keeps the store contract (``graph.store``):

* one call, one managed transaction (``execute_write``, retried by the driver on transient
  errors): the batch is validated first; the transaction waits for its turn (the history
  counter's lock, which every writer takes before it reads what it will write over and
  before its first write: writers that change things take turns, as on the embedded
  store); the stored versions of its items are read, and only the items that changed are
  written, with their history, in ``UNWIND`` chunks of :data:`CHUNK` rows; CIs found
  missing are CREATEd (should a writer that does not take turns create one meanwhile, the
  uniqueness constraint fails and the write runs again); missing relationships are CREATEd
  between ends found by internal node id;
* the creation entry of a CI or relationship is kept on the item (``created*`` properties),
  not in a :Change node, until the item is deleted (see ``graph.neo4j_cypher``);
* labels and relationship types come from the registry only (see ``graph.neo4j_cypher``);
  everything else is a parameter;
* driver errors become ``graph.errors`` (:meth:`Neo4jStore._errors`).

This is the only module that imports ``neo4j``.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import os
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, LiteralString, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import neo4j
import neo4j.exceptions as neo4j_errors
import neo4j.time
import numpy as np
import numpy.typing as npt
import orjson
from pydantic import TypeAdapter

from graph import batch
from graph import neo4j_cypher as cypher
from graph.errors import (
    ConfigurationError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
    ValidationError,
)
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

CHUNK = 10_000  # rows per UNWIND statement; a call's chunks share one transaction
TOPOLOGY_CHUNK = 100_000  # CIs per column-wise topology query
SCHEMES = ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc")
# Range indexes refuse keys over ~8 KB; longer identifier values are simply not indexed.
_MAX_IDENT_BYTES = 4000

_CONFLICT_ATTEMPTS = 3  # runs of a write that lost a race to create the same CI

R = TypeVar("R")
T = TypeVar("T")
Tx = neo4j.ManagedTransaction


# -- encoding ---------------------------------------------------------------------------------


def _json(value: Any, *, item: str, field: str) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError as exc:
        raise ValidationError(f"cannot be stored: {exc}", item=item, field=field) from exc


def _load(value: str | None, default: Any = None) -> Any:
    return default if value is None else orjson.loads(value)


# Times are stored as fixed-width UTC text (``2026-01-05T09:00:00.000123Z``), not as Neo4j
# DateTime: text sorts and compares in time order all the same, and the driver turns each
# DateTime into Python through pure-Python code at ~0.2 ms apiece, which dominated reads.
def _utc(value: datetime | None) -> str | None:
    # isoformat, not strftime("%Y"): glibc does not pad years below 1000 to four digits.
    return None if value is None else _utc_text(value)


def _utc_text(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _native(value: Any) -> datetime | None:
    """A stored time as an aware UTC ``datetime`` (microseconds, as it was written)."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(value, neo4j.time.DateTime):  # written by hand, or by another tool
        return value.to_native().astimezone(UTC)
    raise StoreError(f"expected a date-time in the database, found {value!r}")


def _ident(value: object) -> str | None:
    normal = normalise_identifier(value)
    if normal is None or len(normal.encode()) > _MAX_IDENT_BYTES:
        return None
    return normal


def _ci_row(ci: ConfigurationItem, first_seen: str | None, last_seen: str | None) -> dict[str, Any]:
    """The properties of a CI node; the times come as stored text (see ``_Write.utc``)."""
    row: dict[str, Any] = {
        "id": ci.id,
        "ci_class": ci.ci_class,
        "name": ci.name,
        "status": ci.status.value,
        "environment": ci.environment,
        "criticality": ci.criticality,
        "owner": ci.owner,
        "support_group": ci.support_group,
        "description": ci.description,
        "tags": list(ci.tags),
        "attributes": _json(ci.attributes, item=ci.id, field="attributes"),
        # Absent rather than "[]": the topology query picks up only CIs that have groups.
        "redundancy": (
            _json(
                [g.model_dump(mode="json") for g in ci.redundancy], item=ci.id, field="redundancy"
            )
            if ci.redundancy
            else None
        ),
        "provenance": _json(
            {k: v.model_dump(mode="json") for k, v in ci.provenance.items()},
            item=ci.id,
            field="provenance",
        ),
        "first_seen": first_seen,
        "last_seen": last_seen,
    }
    for attribute in IDENTIFIER_ATTRIBUTES:
        row[cypher.ident_property(attribute)] = _ident(ci.attributes.get(attribute))
    return row


def _same_ci(props: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """Whether stored CI properties already hold ``row`` (``_ci_row`` of the CI to write),
    times aside. Equal text is equal values, so such a CI is unchanged; unequal text may
    still be equal values (another key order), which building the stored CI finds out."""
    return all(
        props.get(key) == value
        for key, value in row.items()
        if key not in ("first_seen", "last_seen")
    )


def _ci_from(props: Mapping[str, Any]) -> ConfigurationItem:
    return ConfigurationItem.model_validate(
        {
            "id": props["id"],
            "class": props["ci_class"],
            "name": props["name"],
            "status": props["status"],
            "environment": props.get("environment"),
            "criticality": props.get("criticality"),
            "owner": props.get("owner"),
            "support_group": props.get("support_group"),
            "description": props.get("description"),
            "tags": props.get("tags") or (),
            "attributes": _load(props.get("attributes"), {}),
            "redundancy": _load(props.get("redundancy"), ()),
            "provenance": _load(props.get("provenance"), {}),
            "first_seen": _native(props.get("first_seen")),
            "last_seen": _native(props.get("last_seen")),
        }
    )


def _rel_row(rel: Relationship, first_seen: str | None, last_seen: str | None) -> dict[str, Any]:
    """The properties of a relationship; the times come as stored text."""
    item = batch.describe_key(rel.key)
    return {
        "source": rel.source,
        "target": rel.target,
        "attributes": _json(rel.attributes, item=item, field="attributes"),
        "provenance": _json(
            {k: v.model_dump(mode="json") for k, v in rel.provenance.items()},
            item=item,
            field="provenance",
        ),
        "first_seen": first_seen,
        "last_seen": last_seen,
    }


def _rel_from(record: neo4j.Record) -> Relationship:
    return _rel_from_parts((record["source"], record["type"], record["target"]), record["r"])


def _rel_from_parts(key: tuple[str, str, str], props: Mapping[str, Any]) -> Relationship:
    return Relationship.model_validate(
        {
            "source": key[0],
            "type": key[1],
            "target": key[2],
            "attributes": _load(props.get("attributes"), {}),
            "provenance": _load(props.get("provenance"), {}),
            "first_seen": _native(props.get("first_seen")),
            "last_seen": _native(props.get("last_seen")),
        }
    )


def _change_row(change: Change, seq: int, at: str | None = None) -> dict[str, Any]:
    """A history entry as node properties: what queries filter and sort on, and a JSON
    ``body`` with the rest (``at``: the entry's time as stored text, when known)."""
    return {
        "id": change.id,
        "ci": change.ci,
        "at": at or _utc(change.at),
        "seq": seq,
        "run_id": change.run_id,
        "body": _json(_change_body(change), item=change.ci, field="history"),
    }


def _created_props(change: Change, seq: int, at: str) -> dict[str, Any]:
    """The creation entry of a CI or relationship as its ``created*`` properties: the entry's
    id travels in the JSON body (see ``graph.neo4j_cypher``)."""
    return {
        "created_seq": seq,
        "created_at": at,
        "created_run": change.run_id,
        "created": _json(
            {"id": change.id, **_change_body(change)}, item=change.ci, field="history"
        ),
    }


def _materialised(ci: str, props: Mapping[str, Any]) -> dict[str, Any] | None:
    """The :Change node properties of a creation entry kept on a CI or relationship
    (``props``), unaltered, or None when it keeps none (written by an earlier version)."""
    if props.get("created_seq") is None:
        return None
    return {
        "id": orjson.loads(props["created"])["id"],
        "ci": ci,
        "at": props["created_at"],
        "seq": props["created_seq"],
        "run_id": props.get("created_run"),
        "body": props["created"],  # its "id" key is ignored by _change_from
    }


def _change_body(change: Change) -> dict[str, Any]:
    body = {
        "kind": change.kind.value,
        "field": change.field,
        "before": change.before,
        "after": change.after,
        "summary": change.summary,
        "actor": change.actor,
        "source": change.source,
        "request_id": change.request_id,
        "external_ref": change.external_ref,
        "planned_start": _utc(change.planned_start),
        "planned_end": _utc(change.planned_end),
        "relationship": change.relationship,
    }
    return {k: v for k, v in body.items() if v is not None}


def _change_from(props: Mapping[str, Any]) -> Change:
    body = props.get("body")
    if body is not None:
        fields: Mapping[str, Any] = orjson.loads(body)
        before, after = fields.get("before"), fields.get("after")
    else:  # written by an earlier version: every field a property, values as JSON text
        fields = props
        before, after = _load(props.get("before")), _load(props.get("after"))
    relationship = fields.get("relationship")
    return Change.model_validate(
        {
            "id": props["id"] if "id" in props else fields["id"],  # a relationship's entry
            "ci": props["ci"],
            "at": _native(props["at"]),
            "kind": fields["kind"],
            "field": fields.get("field"),
            "before": before,
            "after": after,
            "summary": fields.get("summary", ""),
            "actor": fields.get("actor", "system"),
            "source": fields.get("source"),
            "run_id": props.get("run_id"),
            "request_id": fields.get("request_id"),
            "external_ref": fields.get("external_ref"),
            "planned_start": _native(fields.get("planned_start")),
            "planned_end": _native(fields.get("planned_end")),
            "relationship": tuple(relationship) if relationship else None,
        }
    )


def _incident_row(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": incident.title,
        "status": incident.status.value,
        "external_ref": incident.external_ref,
        "opened_at": _utc(incident.opened_at),
        "resolved_at": _utc(incident.resolved_at),
        "affected": list(incident.affected),
        "impact": None
        if incident.impact is None
        else _json(incident.impact, item=incident.id, field="impact"),
        "impact_at": _utc(incident.impact_at),
    }


def _incident_from(props: Mapping[str, Any]) -> Incident:
    return Incident.model_validate(
        {
            "id": props["id"],
            "title": props["title"],
            "status": props["status"],
            "external_ref": props.get("external_ref"),
            "opened_at": _native(props["opened_at"]),
            "resolved_at": _native(props.get("resolved_at")),
            "affected": props.get("affected") or (),
            "impact": _load(props.get("impact")),
            "impact_at": _native(props.get("impact_at")),
        }
    )


def _window_row(window: MaintenanceWindow) -> dict[str, Any]:
    return {
        "id": window.id,
        "ci": window.ci,
        "start": _utc(window.start),
        "end": _utc(window.end),
        "description": window.description,
    }


def _window_from(props: Mapping[str, Any]) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(
        {
            "id": props["id"],
            "ci": props["ci"],
            "start": _native(props["start"]),
            "end": _native(props["end"]),
            "description": props.get("description", ""),
        }
    )


def _source_record_row(record: SourceRecord) -> dict[str, Any]:
    return {
        "source": record.source,
        "kind": record.kind,
        "key": record.key,
        "ci": record.ci,
        "digest": record.digest,
        "last_run": record.last_run,
        "last_seen": _utc(record.last_seen),
        "absent_since": _utc(record.absent_since),
    }


def _source_record_from(props: Mapping[str, Any]) -> SourceRecord:
    return SourceRecord.model_validate(
        {
            "source": props["source"],
            "kind": props["kind"],
            "key": props["key"],
            "ci": props["ci"],
            "digest": props.get("digest", ""),
            "last_run": props["last_run"],
            "last_seen": _native(props["last_seen"]),
            "absent_since": _native(props.get("absent_since")),
        }
    )


def _run_row(run: ImportRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "source": run.source,
        "format": run.format,
        "status": run.status.value,
        "started_at": _utc(run.started_at),
        "finished_at": _utc(run.finished_at),
        "counts": _json(run.counts, item=run.id, field="counts"),
        "messages": list(run.messages),
    }


def _run_from(props: Mapping[str, Any]) -> ImportRun:
    return ImportRun.model_validate(
        {
            "id": props["id"],
            "source": props["source"],
            "format": props["format"],
            "status": props["status"],
            "started_at": _native(props["started_at"]),
            "finished_at": _native(props.get("finished_at")),
            "counts": _load(props.get("counts"), {}),
            "messages": props.get("messages") or (),
        }
    )


def _encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode()


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("not a cursor this store issued", field="after") from None


def _out_of_memory(exc: neo4j_errors.Neo4jError) -> bool:
    return "Memory" in (exc.code or "")  # MemoryPoolOutOfMemoryError, TransactionMemoryLimit


def _too_big(exc: neo4j_errors.Neo4jError) -> StoreError:
    return StoreError(
        "the write needs more transaction memory than Neo4j allows "
        f"({exc.message or exc.code}): split it into smaller batches, or give Neo4j more heap "
        "(NEO4J_HEAP for scripts/neo4j.sh; about 15 KB per new CI or relationship with its "
        "history at commit)"
    )


def _key_param(key: RelKey) -> dict[str, str]:
    return {"source": key[0], "type": key[1], "target": key[2]}


class _Rows(list[T]):
    """A statement's parameter list that says how long it is when printed. The driver
    formats every statement's parameters for its debug log line whether debug logging is on
    or not (neo4j 6 ``Bolt5x5.run``): for the rows of a bulk write that was ~15 µs a CI,
    a sixth of the client's time of a load."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} rows>"


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[_Rows[T]]:
    for start in range(0, len(items), size):
        yield _Rows(items[start : start + size])


def _ci_clauses(filter: CiFilter) -> tuple[list[LiteralString], dict[str, Any]]:
    """Fixed WHERE fragments over ``c`` and their parameters."""
    clauses: list[LiteralString] = []
    params: dict[str, Any] = {}
    if filter.classes:
        clauses.append("c.ci_class IN $classes")
        params["classes"] = sorted(filter.classes)
    if filter.statuses:
        clauses.append("c.status IN $statuses")
        params["statuses"] = sorted(s.value for s in filter.statuses)
    if not filter.include_retired:
        clauses.append("c.status <> 'retired'")
    if filter.environment is not None:
        clauses.append("c.environment = $environment")
        params["environment"] = filter.environment
    if filter.name_contains:
        clauses.append("toLower(c.name) CONTAINS toLower($name_contains)")
        params["name_contains"] = filter.name_contains
    if filter.tag is not None:
        clauses.append("$tag IN c.tags")
        params["tag"] = filter.tag
    return clauses, params


# -- connection settings ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    uri: str  # without user info or query
    user: str | None
    password: str | None
    database: str | None


def _parse_uri(url: str) -> _Target:
    """Split ``scheme://[user[:password]@]host[:port][?database=name]``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"cannot read the Neo4j URL: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(
            f"unsupported Neo4j URL scheme {parts.scheme!r}: use one of "
            + ", ".join(f"{s}://" for s in SCHEMES)
        )
    if not parts.hostname:
        raise ConfigurationError("the Neo4j URL names no host: use e.g. bolt://127.0.0.1:7687")
    if parts.path not in ("", "/"):
        raise ConfigurationError("a Neo4j URL has no path; choose the database with ?database=name")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"database"})
    if unknown:
        raise ConfigurationError(
            f"unknown Neo4j URL parameter(s) {', '.join(unknown)}: only ?database=name is read"
        )
    database = query["database"][-1] if "database" in query else None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return _Target(
        uri=f"{parts.scheme}://{host}" + (f":{port}" if port else ""),
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        database=database or None,
    )


# -- the store --------------------------------------------------------------------------------


class Neo4jStore:
    """A CMDB in a Neo4j database. See the module docstring for how writes work."""

    def __init__(
        self,
        uri: str,
        *,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        registry: Registry = DEFAULT_REGISTRY,
        connection_acquisition_timeout: float = 10.0,
        max_transaction_retry_time: float = 15.0,
    ) -> None:
        target = _parse_uri(uri)
        self.registry = registry
        self._uri = target.uri
        self._user = user or target.user or "neo4j"
        password = password if password is not None else target.password
        self._requested_database = database or target.database
        self._database: str | None = self._requested_database
        self._topology: Topology | None = None
        self._topology_lock = threading.Lock()
        with self._errors():
            self._driver = neo4j.GraphDatabase.driver(
                self._uri,
                auth=(self._user, password) if password is not None else None,
                # Fail fast when the pool is exhausted (the API answers 503) instead of the
                # driver's 60 s; re-check idle pooled connections so a restarted server's dead
                # sockets are dropped before use.
                connection_acquisition_timeout=connection_acquisition_timeout,
                max_transaction_retry_time=max_transaction_retry_time,
                liveness_check_timeout=30.0,
                max_connection_lifetime=3600,
                user_agent="cmdb-graph",
                # The server's notifications (performance hints, deprecations such as id(),
                # "label does not exist yet" on a new database) are hints for people writing
                # queries: logged per statement they flood a long import's stderr. Errors are
                # not notifications and still raise.
                notifications_min_severity="OFF",
            )
        try:
            self._start()
        except BaseException:
            self._driver.close()
            raise

    @classmethod
    def from_url(cls, url: str, *, registry: Registry = DEFAULT_REGISTRY) -> Neo4jStore:
        """A store from ``neo4j[+s]://`` or ``bolt[+s]://`` with optional ``user:password@``
        and ``?database=name``; otherwise ``NEO4J_USER`` (default neo4j), ``NEO4J_PASSWORD``
        and ``NEO4J_DATABASE`` (default: the server's default database)."""
        target = _parse_uri(url)
        return cls(
            url,
            user=target.user or os.environ.get("NEO4J_USER") or "neo4j",
            password=(
                target.password if target.password is not None else os.environ.get("NEO4J_PASSWORD")
            ),
            database=target.database or os.environ.get("NEO4J_DATABASE") or None,
            registry=registry,
        )

    def _start(self) -> None:
        with self._errors():
            self._driver.verify_connectivity()
            with self._driver.session(database=self._database) as session:
                # Resolve the home database once: every later session names it, which
                # saves a round trip per session and pins the store to one database.
                summary = session.run("RETURN 1").consume()
                self._database = summary.database or self._database
                for statement in cypher.SCHEMA:
                    self._create_schema(session, statement)
                session.run(cypher.AWAIT_INDEXES, seconds=300).consume()
                session.execute_write(lambda tx: tx.run(cypher.ENSURE_META).consume())

    @staticmethod
    def _create_schema(session: neo4j.Session, statement: LiteralString) -> None:
        try:
            session.run(statement).consume()
        except neo4j_errors.ClientError as exc:
            # Another process created the same index at the same moment: that is the goal.
            if "AlreadyExists" not in (exc.code or ""):
                raise

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self._driver.close()

    def describe(self) -> str:
        return f"Neo4j at {self._uri} (user {self._user}, database {self._database or 'default'})"

    # -- plumbing ----------------------------------------------------------------------------
    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Driver errors as ``graph.errors``; ours pass through unchanged."""
        try:
            yield
        except neo4j_errors.AuthError as exc:
            raise ConfigurationError(
                f"Neo4j at {self._uri} refused user {self._user!r}: set NEO4J_PASSWORD (and "
                "NEO4J_USER) or put user:password@ in the store URL"
            ) from exc
        except neo4j_errors.IncompleteCommit as exc:
            raise StoreUnavailableError(
                f"the connection to Neo4j at {self._uri} broke while committing; the write may "
                "or may not have happened (repeating it is safe)"
            ) from exc
        except (
            neo4j_errors.ServiceUnavailable,
            neo4j_errors.SessionExpired,
            neo4j_errors.DatabaseUnavailable,
        ) as exc:
            raise StoreUnavailableError(
                f"Neo4j at {self._uri} is unavailable (after retries): {exc}"
            ) from exc
        except neo4j_errors.ConnectionAcquisitionTimeoutError as exc:
            raise StoreUnavailableError(
                f"no free connection to Neo4j at {self._uri}: too many requests at once"
            ) from exc
        except neo4j_errors.TransientError as exc:
            if _out_of_memory(exc):
                raise _too_big(exc) from exc
            raise StoreError(f"Neo4j failed (after retries): {exc.message or exc}") from exc
        except neo4j_errors.ClientError as exc:
            if exc.code == "Neo.ClientError.Database.DatabaseNotFound":
                raise ConfigurationError(
                    f"Neo4j at {self._uri} has no database {self._database!r}: set "
                    "NEO4J_DATABASE or ?database= in the store URL to an existing one"
                ) from exc
            raise StoreError(f"Neo4j refused the operation: {exc.message or exc}") from exc
        except neo4j_errors.ConfigurationError as exc:
            raise ConfigurationError(f"bad Neo4j driver settings: {exc}") from exc
        except (neo4j_errors.Neo4jError, neo4j_errors.DriverError) as exc:
            raise StoreError(f"Neo4j failed: {exc}") from exc

    def _session(self, mode: str = neo4j.WRITE_ACCESS, **config: Any) -> neo4j.Session:
        # The driver's shared bookmark manager makes every read see this store's earlier
        # writes, even routed to another cluster member.
        return self._driver.session(
            database=self._database,
            default_access_mode=mode,
            bookmark_manager=self._driver.execute_query_bookmark_manager,
            **config,
        )

    def _write(self, work: Callable[[Tx], R]) -> R:
        def once(tx: Tx) -> R:
            try:
                return work(tx)
            except neo4j_errors.TransientError as exc:
                # Retrying a transaction that is too big for the server only fails again.
                if _out_of_memory(exc):
                    raise _too_big(exc) from exc
                raise

        # fetch_size -1: a write's few results come in one message, not a PULL per 1000.
        with (
            self._errors(),
            self._session(fetch_size=-1) as session,
            batch.gc_paused(),
        ):
            for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
                try:
                    return session.execute_write(once)
                except neo4j_errors.ConstraintError:
                    # A writer that does not take turns (a release before them, Cypher run
                    # by hand) created a CI of this batch after the transaction read it as
                    # missing (``create_cis``): run it again, reading it as stored.
                    if attempt == _CONFLICT_ATTEMPTS:
                        raise
            raise AssertionError("unreachable")  # the loop returns or raises

    def _read(self, work: Callable[[Tx], R], **config: Any) -> R:
        with self._errors(), self._session(neo4j.READ_ACCESS, **config) as session:
            return session.execute_read(work)

    def _records(self, query: LiteralString, **params: Any) -> list[neo4j.Record]:
        return self._read(lambda tx: list(tx.run(query, params)))

    def generation(self) -> str | None:
        """The structure counter, or None if the database was emptied behind our back."""
        # Called on every impact request: one auto-commit query (RUN and PULL in one round
        # trip), not a managed transaction (BEGIN, RUN, PULL, then COMMIT: two). It is not
        # retried on a transient error (the next request reads it again); the session's
        # bookmarks still order it after this store's writes.
        with self._errors(), self._session(neo4j.READ_ACCESS, fetch_size=-1) as session:
            record = session.run(cypher.READ_GENERATION).single(strict=True)
        if record["value"] is None:
            return None
        return f"{record['epoch']}-{record['value']}"

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
        check_batch_size(len(delete_relationships), "relationships")
        if not (cis or relationships or delete_relationships or source_records):
            return WriteResult(), WriteResult()

        def work(tx: Tx) -> tuple[WriteResult, WriteResult]:
            write = _Write(tx, self.registry, ctx)
            ci_result = write.cis(cis)
            rel_result = write.relationships(relationships)
            if delete_relationships:
                rel_result += write.delete_relationships(delete_relationships)
            write.source_records(source_records)
            write.finish()
            return ci_result, rel_result

        return self._write(work)

    def delete_relationships(self, keys: Sequence[RelKey], ctx: WriteContext) -> WriteResult:
        _, result = self.apply((), (), ctx, delete_relationships=keys)
        return result

    def retire_cis(self, ids: Sequence[CiId], ctx: WriteContext) -> WriteResult:
        check_batch_size(len(ids), "CIs")
        if not ids:
            return WriteResult()

        def work(tx: Tx) -> WriteResult:
            write = _Write(tx, self.registry, ctx)
            existing = write.read_cis(list(dict.fromkeys(ids)))
            batch.check_known(ids, set(existing))
            # In the caller's order, as on the embedded store: history entries are numbered
            # in it.
            result = write.cis(
                [
                    existing[ci_id].model_copy(update={"status": Status.RETIRED})
                    for ci_id in dict.fromkeys(ids)
                ],
                existing,
            )
            write.finish()
            return result

        return self._write(work)

    def delete_cis(self, ids: Sequence[CiId], ctx: WriteContext) -> WriteResult:
        check_batch_size(len(ids), "CIs")
        if not ids:
            return WriteResult()

        def work(tx: Tx) -> WriteResult:
            write = _Write(tx, self.registry, ctx)
            unique = list(dict.fromkeys(ids))
            existing = write.read_cis(unique)
            batch.check_known(ids, set(existing))
            write.delete_cis(existing)
            write.finish()
            return WriteResult(deleted=len(existing))

        return self._write(work)

    def record_external_changes(self, changes: Sequence[ExternalChange], ctx: WriteContext) -> int:
        check_batch_size(len(changes), "changes")
        entries: list[Change] = []
        seen: set[str] = set()
        for change in changes:  # the first report of an id wins, as on a second call
            if change.id not in seen:
                seen.add(change.id)
                entries.append(batch.external_change(change, ctx))
        if not entries:
            return 0

        def work(tx: Tx) -> int:
            write = _Write(tx, self.registry, ctx)
            known = write.existing_ids([c.ci for c in entries])
            batch.check_known([c.ci for c in entries], known)
            base = write.reserve_seq(len(entries))
            created = 0
            for start, chunk in enumerate(_chunks(entries)):
                rows = [_change_row(c, base + start * CHUNK + i + 1) for i, c in enumerate(chunk)]
                summary = tx.run(cypher.MERGE_CHANGES, rows=rows).consume()
                created += summary.counters.nodes_created
            return created

        return self._write(work)

    # -- reads -------------------------------------------------------------------------------
    def get_ci(self, ci: CiId) -> ConfigurationItem | None:
        records = self._records(cypher.GET_CI, id=ci)
        return _ci_from(records[0]["c"]) if records else None

    def get_cis(self, ids: Iterable[CiId]) -> dict[CiId, ConfigurationItem]:
        unique = list(dict.fromkeys(ids))
        return self._read(lambda tx: _read_cis(tx, unique))

    def find_by_name(self, name: str, ci_class: str | None = None) -> list[ConfigurationItem]:
        records = self._records(cypher.FIND_BY_NAME, name=name, ci_class=ci_class)
        return [_ci_from(r["c"]) for r in records]

    def find_by_names(self, names: Iterable[str]) -> dict[str, list[ConfigurationItem]]:
        found: dict[str, list[ConfigurationItem]] = {}
        for chunk in _chunks(sorted(set(names))):
            for record in self._records(cypher.FIND_BY_NAMES, names=chunk):
                found.setdefault(record["name"], []).append(_ci_from(record["c"]))
        return found

    def list_cis(
        self, filter: CiFilter = ALL_CIS, *, first: int = 100, after: str | None = None
    ) -> Page[ConfigurationItem]:
        if not 1 <= first <= Limits.MAX_PAGE:
            raise ValidationError(f"page size must be 1..{Limits.MAX_PAGE}", field="first")
        clauses, params = _ci_clauses(filter)
        if after is not None:
            clauses.append("c.id > $after")
            params["after"] = _decode_cursor(after)
        elif not (filter.classes or filter.statuses or filter.environment is not None):
            # Always true (ids are constrained), but it lets the planner read the id index in
            # order and stop after the page; an indexed filter is better served by its seek.
            clauses.append("c.id IS NOT NULL")
        records = self._records(cypher.list_cis(clauses), limit=first + 1, **params)
        items = [_ci_from(r["c"]) for r in records[:first]]
        cursor = _encode_cursor(items[-1].id) if len(records) > first else None
        return Page(items=items, next_cursor=cursor)

    def count_cis(self, filter: CiFilter = ALL_CIS) -> int:
        clauses, params = _ci_clauses(filter)
        return int(self._records(cypher.count_cis(clauses), **params)[0]["n"])

    def get_relationship(self, key: RelKey) -> Relationship | None:
        records = self._records(cypher.READ_RELATIONSHIPS, keys=[_key_param(key)])
        return _rel_from(records[0]) if records else None

    def relationships(
        self,
        ci: CiId,
        direction: Direction = Direction.BOTH,
        types: frozenset[str] = frozenset(),
    ) -> list[Relationship]:
        type_list = sorted(types)

        def work(tx: Tx) -> list[Relationship]:
            if not _existing_ids(tx, [ci]):
                raise NotFoundError(f"no CI with id {ci!r}")
            found: list[Relationship] = []
            if direction in (Direction.OUT, Direction.BOTH):
                found.extend(
                    map(_rel_from, tx.run(cypher.RELATIONSHIPS_OUT, id=ci, types=type_list))
                )
            if direction in (Direction.IN, Direction.BOTH):
                found.extend(
                    map(_rel_from, tx.run(cypher.RELATIONSHIPS_IN, id=ci, types=type_list))
                )
            return found

        return sorted(self._read(work), key=lambda r: r.key)

    def iter_relationships(self, batch_size: int = 10_000) -> Iterator[Relationship]:
        # One short read transaction per page: a slow consumer holds no transaction open.
        last: tuple[str, str, str] = ("", "", "")
        while True:
            records = self._records(
                cypher.RELATIONSHIP_PAGE,
                source=last[0],
                type=last[1],
                target=last[2],
                limit=batch_size,
            )
            for record in records:
                yield _rel_from(record)
            if len(records) < batch_size:
                return
            tail = records[-1]
            last = (tail["source"], tail["type"], tail["target"])

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
        type_list = sorted(types)
        expand = {
            Direction.OUT: cypher.EXPAND_OUT,
            Direction.IN: cypher.EXPAND_IN,
            Direction.BOTH: cypher.EXPAND_BOTH,
        }[direction]

        def work(tx: Tx) -> Subgraph:
            # Breadth-first from the client, one query per level over the whole frontier:
            # each CI is expanded once, so cycles and diamonds cost nothing extra.
            seen = _existing_ids(tx, list(dict.fromkeys(roots)))
            batch.check_known(roots, seen)
            frontier = sorted(seen)
            for _ in range(depth):
                if not frontier or len(seen) >= limit:
                    break
                reached = set(
                    tx.run(expand, frontier=frontier, types=type_list).single(strict=True)["ids"]
                )
                frontier = sorted(reached - seen)[: max(0, limit - len(seen))]
                seen.update(frontier)
            ids = sorted(seen)
            cis = _read_cis(tx, ids)
            found = tx.run(
                cypher.RELATIONSHIPS_AMONG, ids=ids, among=dict.fromkeys(ids, True), types=type_list
            ).single(strict=True)["rows"]
            rels = [_rel_from_parts((s, t, o), props) for s, t, o, props in found]
            return Subgraph(
                cis=[cis[i] for i in ids if i in cis],
                relationships=sorted(rels, key=lambda r: r.key),
            )

        return self._read(work)

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
        clauses: list[LiteralString] = []
        created: list[LiteralString] = []  # the same terms over a CI's own creation entry
        related: list[LiteralString] = []  # and over a relationship's
        params: dict[str, Any] = {"limit": limit}
        if cis is not None:
            params["cis"] = list(dict.fromkeys(cis))
        if since is not None:
            clauses.append("h.at >= $since")
            created.append("c.created_at >= $since")
            related.append("r.created_at >= $since")
            params["since"] = _utc(since)
        if until is not None:
            clauses.append("h.at <= $until")
            created.append("c.created_at <= $until")
            related.append("r.created_at <= $until")
            params["until"] = _utc(until)
        if run_id is not None:
            clauses.append("h.run_id = $run_id")
            created.append("c.created_run = $run_id")
            related.append("r.created_run = $run_id")
            params["run_id"] = run_id
        if cis is not None and since is None and until is None:
            clauses.append("h.at IS NOT NULL")  # the (ci, at) index hint needs an `at` term
        by_ci = cis is not None
        nodes_query = cypher.history(clauses, by_ci=by_ci)
        kept = (
            cypher.created_history(created, by_ci=by_ci),
            cypher.related_history(related, by_ci=by_ci),
        )

        def work(tx: Tx) -> list[tuple[Change, int]]:
            found = [
                (_change_from(r["h"]), r["h"].get("seq", 0)) for r in tx.run(nodes_query, params)
            ]
            for query in kept:
                for record in tx.run(query, params):
                    props = record.data()
                    found.append((_change_from(props), props["seq"]))
            return found

        found = self._read(work)
        found.sort(key=lambda entry: (entry[0].at, entry[1]))
        return [change for change, _ in found[:limit]]

    # -- incidents and maintenance -----------------------------------------------------------
    def put_incident(self, incident: Incident) -> None:
        props = _incident_row(incident)
        self._write(lambda tx: tx.run(cypher.PUT_INCIDENT, props=props).consume())

    def get_incident(self, incident_id: str) -> Incident | None:
        records = self._records(cypher.GET_INCIDENT, id=incident_id)
        return _incident_from(records[0]["i"]) if records else None

    def list_incidents(self, *, open_only: bool = False) -> list[Incident]:
        records = self._records(cypher.LIST_INCIDENTS, open_only=open_only)
        return [_incident_from(r["i"]) for r in records]

    def put_maintenance_window(self, window: MaintenanceWindow) -> None:
        props = _window_row(window)

        def work(tx: Tx) -> None:
            if not _existing_ids(tx, [window.ci]):
                raise NotFoundError(f"no CI with id {window.ci!r}")
            tx.run(cypher.PUT_WINDOW, props=props).consume()

        self._write(work)

    def delete_maintenance_window(self, window_id: str) -> None:
        self._write(lambda tx: tx.run(cypher.DELETE_WINDOW, id=window_id).consume())

    def maintenance_windows(
        self, cis: Sequence[CiId] | None = None, *, at: datetime | None = None
    ) -> list[MaintenanceWindow]:
        clauses: list[LiteralString] = []
        params: dict[str, Any] = {}
        if cis is not None:
            clauses.append("w.ci IN $cis")
            params["cis"] = list(cis)
        if at is not None:
            clauses.append("w.start <= $at AND w.end > $at")
            params["at"] = _utc(at)
        records = self._records(cypher.maintenance_windows(clauses), **params)
        return [_window_from(r["w"]) for r in records]

    # -- import engine -----------------------------------------------------------------------
    def match_identifiers(self, attribute: str, values: Sequence[str]) -> dict[str, list[CiId]]:
        if attribute not in IDENTIFIER_ATTRIBUTES:
            raise ValidationError(
                f"not an identifying attribute; use one of {', '.join(IDENTIFIER_ATTRIBUTES)}",
                field=attribute,
            )
        found: dict[str, list[CiId]] = {}
        query = cypher.match_identifiers(attribute)
        for record in self._records(query, values=sorted(set(values))):
            found.setdefault(record["value"], []).append(CiId(record["id"]))
        return found

    def source_records(self, source: str) -> list[SourceRecord]:
        records = self._records(cypher.SOURCE_RECORDS, source=source)
        return [_source_record_from(r["r"]) for r in records]

    def iter_source_records(
        self, source: str, *, batch_size: int = 1_000
    ) -> Iterator[SourceRecord]:
        """``source_records`` a page at a time, ordered by kind, key (the import engine
        streams a million of them; ``graph.sync_plan``). One short read
        transaction per page: a slow consumer holds no transaction open."""
        if batch_size < 1:
            raise ValidationError("page size must be at least 1", field="batch_size")

        def page(tx: Tx, kind: str, key: str) -> list[dict[str, Any]]:
            params = {"source": source, "kind": kind, "key": key, "limit": batch_size}
            found = [r["r"] for r in tx.run(cypher.SOURCE_RECORDS_SAME_KIND, params)]
            if len(found) < batch_size:
                params["limit"] = batch_size - len(found)
                found.extend(r["r"] for r in tx.run(cypher.SOURCE_RECORDS_NEXT_KINDS, params))
            return found

        kind, key = "", ""  # before every record: kinds and keys are never empty
        while True:
            props = self._read(functools.partial(page, kind=kind, key=key))
            for item in props:
                yield _source_record_from(item)
            if len(props) < batch_size:
                return
            kind, key = props[-1]["kind"], props[-1]["key"]

    def put_source_records(self, records: Sequence[SourceRecord]) -> None:
        if records:
            self._write(lambda tx: _put_source_records(tx, records))

    def delete_source_records(self, source: str, keys: Sequence[tuple[str, str]]) -> int:
        unique = [{"kind": kind, "key": key} for kind, key in dict.fromkeys(keys)]
        if not unique:
            return 0

        def work(tx: Tx) -> int:
            deleted = 0
            for chunk in _chunks(unique):
                summary = tx.run(cypher.DELETE_SOURCE_RECORDS, source=source, keys=chunk).consume()
                deleted += summary.counters.nodes_deleted
            return deleted

        return self._write(work)

    def put_run(self, run: ImportRun) -> None:
        props = _run_row(run)
        self._write(lambda tx: tx.run(cypher.PUT_RUN, props=props).consume())

    def get_run(self, run_id: str) -> ImportRun | None:
        records = self._records(cypher.GET_RUN, id=run_id)
        return _run_from(records[0]["r"]) if records else None

    def list_runs(self, source: str | None = None, *, limit: int = 100) -> list[ImportRun]:
        records = self._records(cypher.LIST_RUNS, source=source, limit=limit)
        return [_run_from(r["r"]) for r in records]

    # -- traversal ---------------------------------------------------------------------------
    def topology(self) -> Topology:
        with self._topology_lock:
            generation = self.generation()
            cached = self._topology
            if cached is not None and generation is not None and cached.generation == generation:
                return cached
            topology = self._build_topology()
            self._topology = topology
            return topology

    def _build_topology(self) -> Topology:
        type_names, class_names = self.registry.fingerprint()
        reader = _TopologyReader(self._single, type_names, class_names)
        for _attempt in range(3):
            topology = reader.read()
            if topology is not None:
                return topology
        # Writers kept moving underneath: hand back the last try, tagged so it is not reused.
        topology = reader.read(consistent=False)
        assert topology is not None  # read(consistent=False) always returns one
        return topology

    def statuses_since(self, topology: Topology) -> Topology | None:
        type_names, class_names = self.registry.fingerprint()
        current = _TopologyReader(self._single, type_names, class_names).statuses(topology)
        if current is not None and current is not topology:
            with self._topology_lock:
                self._topology = current
        return current

    def _single(self, query: LiteralString, **params: Any) -> neo4j.Record:
        """The one record of ``query``, read in a read transaction of its own."""
        return self._read(lambda tx: tx.run(query, params).single(strict=True))


# -- transaction helpers ----------------------------------------------------------------------


def _existing_ids(tx: Tx, ids: Sequence[str]) -> set[CiId]:
    found: set[CiId] = set()
    for chunk in _chunks(ids):
        record = tx.run(cypher.EXISTING_IDS, ids=chunk).single(strict=True)
        found.update(record["ids"])
    return found


def _read_cis(tx: Tx, ids: Sequence[str]) -> dict[CiId, ConfigurationItem]:
    found: dict[CiId, ConfigurationItem] = {}
    for chunk in _chunks(ids):
        for record in tx.run(cypher.READ_CIS, ids=chunk):
            ci = _ci_from(record["c"])
            found[ci.id] = ci
    return found


def _put_source_records(tx: Tx, records: Sequence[SourceRecord]) -> None:
    for chunk in _chunks(records):
        tx.run(cypher.PUT_SOURCE_RECORDS, rows=[_source_record_row(r) for r in chunk]).consume()


class _Write:
    """One write transaction: reads what is stored, writes what changed, and collects the
    history, which :meth:`finish` appends with the generation bump.

    Writers that change things take turns, as on the embedded store (``BEGIN IMMEDIATE``):
    a transaction's turn is the counter node's lock (:meth:`lock`), taken before any other
    write lock, so every writer takes its locks in the same order, and before it reads what
    it will write over, so it reads what the writer before it committed (a writer that read
    a CI while another was changing it would write its whole CI back over the other's
    commit, undoing the other's change to a field it did not touch with no history entry to
    say so). History entries are numbered (``seq``) in that turn, before the statements that
    cause them run, since a relationship's creation entry is written with it."""

    def __init__(self, tx: Tx, registry: Registry, ctx: WriteContext) -> None:
        self.tx = tx
        self.registry = registry
        self.ctx = ctx
        self.entries: list[dict[str, Any]] = []  # :Change rows, numbered, for finish()
        self.structural = False  # the topology (structure, a class, a status, teams) changed
        self.moved_structure = False  # ... and not only CI statuses (Topology.structure)
        self.pending: neo4j.Result | None = None
        self.times: dict[datetime, str] = {}
        self.locked = False  # holds the counter lock: has its turn

    def lock(self) -> None:
        """Wait for this transaction's turn (the counter lock), if it does not have it yet:
        before reading what it will write over, so that it reads what the writer before it
        committed."""
        if not self.locked:
            self.tx.run(cypher.TAKE_TURN).consume()
            self.locked = True

    def existing_ids(self, ids: Iterable[str]) -> set[CiId]:
        self.lock()
        return _existing_ids(self.tx, list(dict.fromkeys(ids)))

    def read_cis(self, ids: Sequence[str]) -> dict[CiId, ConfigurationItem]:
        self.lock()
        return _read_cis(self.tx, ids)

    def cis(
        self,
        cis: Sequence[ConfigurationItem],
        existing: Mapping[CiId, ConfigurationItem] | None = None,
    ) -> WriteResult:
        """Write ``cis`` over what is stored: ``existing`` (read in this turn), or else read
        here."""
        if not cis:
            return WriteResult()
        self.lock()  # held already when ``existing`` was read: the writes below are in turn
        stored = self.read_ci_props([ci.id for ci in cis]) if existing is None else {}
        created = updated = 0
        for part in _chunks(cis):
            # (label, label to remove, missing from the store): one statement each
            groups: dict[tuple[str, str | None, bool], list[dict[str, Any]]] = defaultdict(list)
            # each entry with the row of the CI it creates, which keeps it (else a :Change)
            changes: list[tuple[Change, dict[str, Any] | None]] = []
            for new in part:
                row = _ci_row(new, None, None)
                old: ConfigurationItem | None
                if existing is not None:
                    old = existing.get(new.id)
                else:
                    props = stored.get(new.id)
                    if props is not None and _same_ci(props, row):
                        continue  # stored as given: no need to build the stored CI
                    old = None if props is None else _ci_from(props)
                planned = batch.plan_ci(old, new, self.ctx)
                if planned is None:
                    continue
                keeper = row if old is None else None
                changes.extend((change, keeper) for change in planned.changes)
                label = self.registry.ci_class(new.ci_class, item=new.id).label
                old_label: str | None = None
                if old is None:
                    created += 1
                    self.structural = self.moved_structure = True
                else:
                    updated += 1
                    if batch.moves_structure(old, new):
                        self.structural = self.moved_structure = True
                    elif old.status != new.status:
                        self.structural = True
                    if old.ci_class != new.ci_class and old.ci_class in self.registry.classes:
                        old_label = self.registry.classes[old.ci_class].label
                        old_label = None if old_label == label else old_label
                row["first_seen"] = self.utc(planned.first_seen)
                row["last_seen"] = self.utc(planned.last_seen)
                groups[(label, old_label, old is None)].append(row)
            self.number(changes)
            for (label, old_label, missing), rows in groups.items():
                query = cypher.create_cis(label) if missing else cypher.upsert_cis(label, old_label)
                self.send(query, rows=_Rows(rows))
        return WriteResult(created=created, updated=updated, unchanged=len(cis) - created - updated)

    def read_ci_props(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored properties of these CIs, for those that exist."""
        self.lock()
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(ids):
            for record in self.tx.run(cypher.READ_CIS, ids=chunk):
                props = record["c"]
                found[props["id"]] = props
        return found

    def relationships(self, relationships: Sequence[Relationship]) -> WriteResult:
        if not relationships:
            return WriteResult()
        # One number per relationship, in the caller's order, which the history keeps: the
        # creation entry of a relationship is written with it. Reserving them waits for the
        # transaction's turn, before anything below is read (see the class docstring).
        base = self.reserve_seq(len(relationships))
        nids = self.node_ids({end for r in relationships for end in (r.source, r.target)})
        batch.check_ends(relationships, set(nids))
        existing, same = self.read_existing(relationships, nids)
        created = updated = 0
        missing: dict[str, list[dict[str, Any]]] = defaultdict(list)
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for i, new in enumerate(relationships):
            if new.key in same:
                continue
            rel_type = self.registry.relationship_type(new.type).name
            old = existing.get(new.key)
            if old is None:
                missing[rel_type].append(self.new_rel_row(new, base + i + 1, nids))
                created += 1
                self.structural = self.moved_structure = True
                continue
            stored = batch.prepare_relationship(old, new, self.ctx)
            if stored is None:
                continue
            for change in batch.relationship_changes(old, stored, self.ctx):  # one at most
                self.entries.append(_change_row(change, base + i + 1, self.utc(change.at)))
            updated += 1
            groups[rel_type].append(self.rel_row(stored, batch.seen_times(old, new, self.ctx)))
        for rel_type, rows in missing.items():
            rows.sort(key=lambda row: (row["s"], row["t"]))
            for chunk in _chunks(rows):
                self.send(cypher.create_relationships(rel_type), rows=chunk)
        for rel_type, rows in groups.items():
            # Sorted by source then target: neighbouring rows lock neighbouring nodes.
            rows.sort(key=lambda row: (row["source"], row["target"]))
            for chunk in _chunks(rows):
                self.send(cypher.upsert_relationships(rel_type), rows=chunk)
        return WriteResult(
            created=created, updated=updated, unchanged=len(relationships) - created - updated
        )

    def node_ids(self, ids: Iterable[str]) -> dict[CiId, int]:
        """The internal node ids of these CIs, for those that exist."""
        found: dict[CiId, int] = {}
        for chunk in _chunks(sorted(ids)):
            record = self.tx.run(cypher.NODE_IDS, ids=chunk).single(strict=True)
            found.update(zip(record["ids"], record["nids"], strict=True))
        return found

    def read_existing(
        self, relationships: Sequence[Relationship], nids: Mapping[CiId, int]
    ) -> tuple[dict[RelKey, Relationship], set[RelKey]]:
        """The stored versions of these relationships, for those that exist, and the keys of
        those stored exactly as given (what prepare_relationship would find unchanged)."""
        by_type: dict[str, list[dict[str, int]]] = defaultdict(list)
        for i, rel in enumerate(relationships):
            by_type[self.registry.relationship_type(rel.type).name].append(
                {"i": i, "s": nids[rel.source], "t": nids[rel.target]}
            )
        # The driver reads the previous statement's records before sending the next one.
        sent = [
            self.tx.run(cypher.existing_relationships(rel_type), rows=chunk)
            for rel_type, rows in by_type.items()
            for chunk in _chunks(rows)
        ]
        existing: dict[RelKey, Relationship] = {}
        same: set[RelKey] = set()
        for result in sent:
            for record in result:
                rel, props = relationships[record["i"]], record["r"]
                row = _rel_row(rel, None, None)
                if (props.get("attributes"), props.get("provenance")) == (
                    row["attributes"],
                    row["provenance"],
                ):
                    same.add(rel.key)
                else:
                    existing[rel.key] = _rel_from_parts(rel.key, props)
        return existing, same

    def rel_row(self, rel: Relationship, seen: tuple[datetime, datetime]) -> dict[str, Any]:
        return _rel_row(rel, self.utc(seen[0]), self.utc(seen[1]))

    def new_rel_row(self, rel: Relationship, seq: int, nids: Mapping[CiId, int]) -> dict[str, Any]:
        """The row of a relationship to create: its ends' node ids, its properties and its
        creation entry."""
        row = self.rel_row(rel, batch.seen_times(None, rel, self.ctx))
        del row["source"], row["target"]
        row["s"], row["t"] = nids[rel.source], nids[rel.target]
        (change,) = batch.relationship_changes(None, rel, self.ctx)
        row.update(_created_props(change, seq, self.utc(change.at)))
        return row

    def number(self, changes: Sequence[tuple[Change, dict[str, Any] | None]]) -> None:
        """Number ``changes`` in order: an entry paired with the row of the CI it creates is
        kept in that row, the others are for :meth:`finish`."""
        if changes:
            base = self.reserve_seq(len(changes))
            for i, (change, row) in enumerate(changes):
                at = self.utc(change.at)
                if row is None:
                    self.entries.append(_change_row(change, base + i + 1, at))
                else:
                    row.update(_created_props(change, base + i + 1, at))

    def record(self, changes: Sequence[Change]) -> None:
        """Number ``changes`` (in order) for :meth:`finish`."""
        if changes:
            base = self.reserve_seq(len(changes))
            self.entries.extend(
                _change_row(c, base + i + 1, self.utc(c.at)) for i, c in enumerate(changes)
            )

    def hand_over(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Keep the creation entries of items about to be deleted (each with the CI its
        entry is about) as :Change nodes."""
        for ci, props in items:
            row = _materialised(ci, props)
            if row is not None:
                self.entries.append(row)

    def utc(self, value: datetime) -> str:
        """``_utc``, remembered: most times of a write are its own, one value."""
        text = self.times.get(value)
        if text is None:
            text = self.times[value] = _utc_text(value)
        return text

    def read_relationships(
        self, keys: Sequence[RelKey]
    ) -> dict[RelKey, tuple[Relationship, dict[str, Any]]]:
        """These relationships, for those that exist, with all their properties."""
        self.lock()
        found: dict[RelKey, tuple[Relationship, dict[str, Any]]] = {}
        for chunk in _chunks(keys):
            params = [_key_param(k) for k in chunk]
            for record in self.tx.run(cypher.READ_RELATIONSHIPS_WHOLE, keys=params):
                rel = _rel_from(record)
                found[rel.key] = (rel, record["r"])
        return found

    def delete_relationships(self, keys: Sequence[RelKey]) -> WriteResult:
        unique: list[RelKey] = list(dict.fromkeys((k[0], k[1], k[2]) for k in keys))
        existing = self.read_relationships(unique)
        gone = [existing[k] for k in unique if k in existing]
        self.record([batch.unrelated_change(r, self.ctx) for r, _ in gone])
        self.hand_over((r.source, props) for r, props in gone)
        for chunk in _chunks(gone):
            params = [_key_param(r.key) for r, _ in chunk]
            self.tx.run(cypher.DELETE_RELATIONSHIPS, keys=params).consume()
        if gone:
            self.structural = self.moved_structure = True
        return WriteResult(deleted=len(gone))

    def delete_cis(self, existing: Mapping[CiId, ConfigurationItem]) -> None:
        ids = list(existing)
        rels: dict[RelKey, tuple[Relationship, dict[str, Any]]] = {}
        for chunk in _chunks(ids):
            for record in self.tx.run(cypher.ADJACENT_OF_CIS, ids=chunk):
                rel = _rel_from(record)
                rels.setdefault(rel.key, (rel, record["r"]))  # between two of them: once
        self.record(
            [batch.unrelated_change(rels[k][0], self.ctx) for k in sorted(rels)]
            + [batch.deleted_change(existing[i], self.ctx) for i in ids]
        )
        self.hand_over((k[0], rels[k][1]) for k in sorted(rels))
        for chunk in _chunks(ids):
            for record in self.tx.run(cypher.CREATED_OF_CIS, ids=chunk):
                self.hand_over([(record["id"], record["r"])])
        for chunk in _chunks(ids):
            self.tx.run(cypher.DELETE_CIS, ids=chunk).consume()
        self.structural = self.moved_structure = True

    def source_records(self, records: Sequence[SourceRecord]) -> None:
        if records:
            _put_source_records(self.tx, records)

    def reserve_seq(self, count: int) -> int:
        self.lock()
        record = self.tx.run(cypher.RESERVE_SEQ, count=count).single(strict=True)
        return int(record["base"])

    def send(self, query: LiteralString, **params: Any) -> None:
        """Run a statement without waiting for it: the driver waits before sending the next
        one, so preparing the next chunk here overlaps the server's work on this one."""
        self.pending = self.tx.run(query, params)

    def finish(self) -> None:
        for rows in _chunks(self.entries):
            self.send(cypher.CREATE_CHANGES, rows=rows)
        if self.structural:
            self.send(cypher.BUMP_GENERATION, structure=self.moved_structure)
        if self.pending is not None:
            self.pending.consume()  # its errors surface here, inside the transaction function


# Stored redundancy texts, parsed once per process: many CIs share their groups' text, and
# a topology build parses every one (validation is most of the client's time of a build).
_REDUNDANCY = TypeAdapter(tuple[RedundancyGroup, ...])


@functools.lru_cache(maxsize=65_536)
def _redundancy(raw: str) -> tuple[RedundancyGroup, ...]:
    return _REDUNDANCY.validate_json(raw)  # frozen models: safe to share


class _TopologyReader:
    """Reads the structure column-wise: each chunk's nodes and its edges in two read
    transactions at once (``query`` runs one query in a read transaction of its own and
    returns its single record), between two reads of the generation."""

    def __init__(
        self,
        query: Callable[..., Mapping[str, Any]],
        type_names: tuple[str, ...],
        class_names: tuple[str, ...],
    ):
        self.query = query
        self.type_names = type_names
        self.class_names = class_names

    def _generation(self) -> str:
        return self._versions()[0]

    def _versions(self) -> tuple[str, str | None]:
        """The generation and the structure count (None before the database has either)."""
        record = self.query(cypher.READ_GENERATION)
        if record["value"] is None:
            return "none", None
        return f"{record['epoch']}-{record['value']}", f"{record['epoch']}-{record['structure']}"

    def statuses(self, topology: Topology) -> Topology | None:
        """``topology`` with the statuses of now, when only statuses changed since it was
        read; the same object when nothing did; None when anything else did (or a writer
        moved the generation during the read)."""
        generation, structure = self._versions()
        if topology.structure is None or structure != topology.structure:
            return None
        if generation == topology.generation:
            return topology
        statuses = np.zeros(topology.node_count, dtype=np.int8)
        seen = 0
        after = ""
        while True:
            chunk = self.query(
                cypher.TOPOLOGY_STATUSES,
                after=after,
                limit=TOPOLOGY_CHUNK,
                status_index=STATUS_NUMBERS,
            )
            chunk_ids: list[CiId] = chunk["ids"]
            if not chunk_ids:
                break
            try:  # the topology's numbering (code point order, see read())
                at = [topology.number(ci) for ci in chunk_ids]
            except NotFoundError:
                return None
            statuses[at] = chunk["statuses"]
            seen += len(chunk_ids)
            if len(chunk_ids) < TOPOLOGY_CHUNK:
                break
            after = chunk_ids[-1]
        if seen != topology.node_count or self._versions() != (generation, structure):
            return None
        return dataclasses.replace(
            topology, statuses=statuses, generation=generation, as_of=utcnow()
        )

    def read(self, *, consistent: bool = True) -> Topology | None:
        """The topology, or None when a writer changed the generation during the read."""
        generation, structure = self._versions()
        class_index = {name: i for i, name in enumerate(self.class_names)}
        type_index = {name: i for i, name in enumerate(self.type_names)}
        ids: list[CiId] = []
        nids: list[int] = []
        classes: list[int] = []
        statuses: list[int] = []
        redundant: list[tuple[str, str]] = []
        named_teams: list[tuple[str, str | None, str | None]] = []
        src: list[int] = []
        rel_types: list[int] = []
        dst: list[int] = []
        after = ""
        # Nodes and edges of a chunk are read at once, on two connections: the server reads
        # them on two cores, and the client decodes one while the other is read. (One read
        # transaction would not be a snapshot either: the generation checks are what tell a
        # consistent read.)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cmdb-topology")
        try:
            while True:
                pending = pool.submit(
                    self.query,
                    cypher.TOPOLOGY_EDGES,
                    after=after,
                    limit=TOPOLOGY_CHUNK,
                    type_index=type_index,
                )
                nodes = self.query(
                    cypher.TOPOLOGY_NODES,
                    after=after,
                    limit=TOPOLOGY_CHUNK,
                    class_index=class_index,
                    status_index=STATUS_NUMBERS,
                )
                edges = pending.result()
                chunk_ids: list[CiId] = nodes["ids"]
                if not chunk_ids:
                    break
                ids.extend(chunk_ids)
                nids.extend(nodes["nids"])
                classes.extend(nodes["classes"])
                statuses.extend(nodes["statuses"])
                redundant.extend(nodes["redundancy"])
                named_teams.extend(nodes["teams"])
                src.extend(edges["src"])
                rel_types.extend(edges["types"])
                dst.extend(edges["dst"])
                if len(chunk_ids) < TOPOLOGY_CHUNK:
                    break
                after = chunk_ids[-1]
        finally:
            pool.shutdown()
        if consistent and self._generation() != generation:
            return None
        if not consistent:
            generation = f"unsettled-{uuid.uuid4().hex}"

        node_ids = np.asarray(nids, dtype=np.int64)
        class_arr = np.asarray(classes, dtype=np.int16)
        status_arr = np.asarray(statuses, dtype=np.int8)
        # Neo4j orders strings by UTF-16 unit; both stores number nodes in code point order.
        if any(ids[i] >= ids[i + 1] for i in range(len(ids) - 1)):
            order = sorted(range(len(ids)), key=ids.__getitem__)
            ids = [ids[i] for i in order]
            perm = np.asarray(order, dtype=np.int64)
            node_ids, class_arr, status_arr = node_ids[perm], class_arr[perm], status_arr[perm]

        sorter = np.argsort(node_ids, kind="stable")
        sorted_nids = node_ids[sorter]

        def numbers(internal: list[int]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
            """Node numbers of internal node ids, and which of them were found."""
            arr = np.asarray(internal, dtype=np.int64)
            if not len(sorted_nids):
                return arr, np.zeros(len(arr), dtype=np.bool_)
            pos = np.minimum(np.searchsorted(sorted_nids, arr), len(sorted_nids) - 1)
            return sorter[pos], sorted_nids[pos] == arr

        src_n, src_ok = numbers(src)
        dst_n, dst_ok = numbers(dst)
        type_arr = np.asarray(rel_types, dtype=np.int16)
        keep = src_ok & dst_ok  # an end created after its chunk was read: next build has it
        if consistent and not keep.all():
            return None
        src_n, dst_n, type_arr = src_n[keep], dst_n[keep], type_arr[keep]
        edge_order = np.lexsort((dst_n, type_arr, src_n))

        position = {ci: n for n, ci in enumerate(ids)}
        redundancy = {position[CiId(ci)]: _redundancy(raw) for ci, raw in redundant}
        teams = TeamColumns.of(
            len(ids),
            ((position[CiId(ci)], owner, support) for ci, owner, support in named_teams),
        )
        return Topology(
            ids=ids,
            classes=class_arr,
            class_names=self.class_names,
            statuses=status_arr,
            src=src_n[edge_order].astype(np.int32),
            dst=dst_n[edge_order].astype(np.int32),
            rel_types=type_arr[edge_order],
            type_names=self.type_names,
            redundancy=redundancy,
            generation=generation,
            as_of=utcnow(),
            _numbers=position,
            teams=teams,
            structure=structure if consistent else None,
        )
