"""The Cypher text of the Neo4j store, in one place so it can be read and EXPLAINed as a whole.

Every value is a parameter. Cypher cannot parameterise labels and relationship types (the
dynamic ``$(...)`` forms of 5.26 plan as scans, not index seeks), so the few queries that
need one are built by the functions below from a name the caller has looked up in the
registry, and the name is quoted as an identifier all the same.

Graph layout::

    (:CI:<ClassLabel> {id, name, ci_class, status, ..., attributes: json, ...})
        -[:<TYPE> {attributes: json, provenance: json, first_seen, last_seen}]->(:CI)
    (:Change {id, ci, at, seq, run_id, body: json}) append-only history, found by ci / at
    (:Incident), (:MaintenanceWindow), (:SourceRecord), (:ImportRun)
    (:Meta {key: 'generation' | 'change_seq', value})
"""

from __future__ import annotations

from typing import LiteralString

from graph.model import IDENTIFIER_ATTRIBUTES


def quote(name: str) -> LiteralString:
    """``name`` as a Cypher identifier in backticks (the driver manual's recipe: the unicode
    escape of a backtick is a backtick too, and a backtick is escaped by doubling it)."""
    escaped = name.replace("\\u0060", "`").replace("`", "``")
    # The one place a non-literal string becomes query text; callers pass registry names.
    # (mypy checks LiteralString as str; a type checker that knows it flags this line.)
    return f"`{escaped}`"


def ident_property(attribute: str) -> LiteralString:
    """The CI property holding the normalised value of an identifying attribute."""
    if attribute not in IDENTIFIER_ATTRIBUTES:
        raise ValueError(f"not an identifying attribute: {attribute!r}")
    return f"ident_{attribute}"


# -- schema -----------------------------------------------------------------------------------

_IDENT_INDEXES: tuple[LiteralString, ...] = tuple(
    f"CREATE INDEX cmdb_ci_{ident_property(a)} IF NOT EXISTS FOR (c:CI) ON (c.{ident_property(a)})"
    for a in IDENTIFIER_ATTRIBUTES
)

SCHEMA: tuple[LiteralString, ...] = (
    "CREATE CONSTRAINT cmdb_ci_id IF NOT EXISTS FOR (c:CI) REQUIRE c.id IS UNIQUE",
    "CREATE INDEX cmdb_ci_name IF NOT EXISTS FOR (c:CI) ON (c.name)",
    "CREATE INDEX cmdb_ci_class IF NOT EXISTS FOR (c:CI) ON (c.ci_class)",
    "CREATE INDEX cmdb_ci_status IF NOT EXISTS FOR (c:CI) ON (c.status)",
    "CREATE INDEX cmdb_ci_environment IF NOT EXISTS FOR (c:CI) ON (c.environment)",
    *_IDENT_INDEXES,
    "CREATE CONSTRAINT cmdb_change_id IF NOT EXISTS FOR (h:Change) REQUIRE h.id IS UNIQUE",
    "CREATE INDEX cmdb_change_ci_at IF NOT EXISTS FOR (h:Change) ON (h.ci, h.at)",
    "CREATE INDEX cmdb_change_at IF NOT EXISTS FOR (h:Change) ON (h.at)",
    "CREATE INDEX cmdb_change_run_id IF NOT EXISTS FOR (h:Change) ON (h.run_id)",
    "CREATE CONSTRAINT cmdb_incident_id IF NOT EXISTS FOR (i:Incident) REQUIRE i.id IS UNIQUE",
    "CREATE CONSTRAINT cmdb_window_id IF NOT EXISTS "
    "FOR (w:MaintenanceWindow) REQUIRE w.id IS UNIQUE",
    "CREATE INDEX cmdb_window_ci IF NOT EXISTS FOR (w:MaintenanceWindow) ON (w.ci)",
    "CREATE CONSTRAINT cmdb_meta_key IF NOT EXISTS FOR (m:Meta) REQUIRE m.key IS UNIQUE",
    "CREATE CONSTRAINT cmdb_source_record_key IF NOT EXISTS "
    "FOR (r:SourceRecord) REQUIRE (r.source, r.kind, r.key) IS UNIQUE",
    "CREATE INDEX cmdb_source_record_source IF NOT EXISTS FOR (r:SourceRecord) ON (r.source)",
    "CREATE CONSTRAINT cmdb_run_id IF NOT EXISTS FOR (r:ImportRun) REQUIRE r.id IS UNIQUE",
    "CREATE INDEX cmdb_run_source IF NOT EXISTS FOR (r:ImportRun) ON (r.source, r.started_at)",
)

AWAIT_INDEXES: LiteralString = "CALL db.awaitIndexes($seconds)"

# -- counters ---------------------------------------------------------------------------------

# A fresh epoch whenever the counter node is (re)created tells a wiped-and-refilled database
# from the one a cached topology came from: the counter alone would start again at 0.
ENSURE_META: LiteralString = """
MERGE (g:Meta {key: 'generation'}) ON CREATE SET g.value = 0, g.epoch = randomUUID()
MERGE (s:Meta {key: 'change_seq'}) ON CREATE SET s.value = 0
"""

BUMP_GENERATION: LiteralString = """
MERGE (m:Meta {key: 'generation'}) ON CREATE SET m.value = 0, m.epoch = randomUUID()
SET m.value = m.value + 1
"""

READ_GENERATION: LiteralString = """
OPTIONAL MATCH (m:Meta {key: 'generation'})
RETURN m.epoch AS epoch, m.value AS value
"""

# Reserves ``$count`` consecutive sequence numbers; the lock on the node orders writers.
RESERVE_SEQ: LiteralString = """
MERGE (m:Meta {key: 'change_seq'}) ON CREATE SET m.value = 0
SET m.value = m.value + $count
RETURN m.value - $count AS base
"""

# -- CIs --------------------------------------------------------------------------------------

CI_FIELDS: tuple[str, ...] = (
    "ci_class",
    "name",
    "status",
    "environment",
    "criticality",
    "owner",
    "support_group",
    "description",
    "tags",
    "attributes",
    "redundancy",
    "provenance",
    "first_seen",
    "last_seen",
    *(ident_property(a) for a in IDENTIFIER_ATTRIBUTES),
)

# One SET per property, not ``SET c = row`` / ``SET c += row``: those overwrite the key
# MERGE looks up and make the planner insert an Eager (whole batch in memory).
_SET_CI: LiteralString = "SET " + ", ".join(f"c.{f} = row.{f}" for f in CI_FIELDS)


def create_cis(label: str) -> LiteralString:
    """Write CIs of one class label that the transaction found missing. CREATE, not MERGE:
    no lookup first, and a CI another writer created meanwhile fails the uniqueness
    constraint (the store then runs the whole write again, as an update)."""
    return f"""
UNWIND $rows AS row
CREATE (c:CI {{id: row.id}})
{_SET_CI}
SET c:{quote(label)}
"""


def upsert_cis(label: str, old_label: str | None = None) -> LiteralString:
    """Write whole CIs of one class label; ``old_label`` is removed (a class change)."""
    remove: LiteralString = f"REMOVE c:{quote(old_label)}" if old_label else ""
    return f"""
UNWIND $rows AS row
MERGE (c:CI {{id: row.id}})
{_SET_CI}
SET c:{quote(label)}
{remove}
"""


READ_CIS: LiteralString = """
UNWIND $ids AS cid
MATCH (c:CI {id: cid}) USING INDEX SEEK c:CI(id)
RETURN c {.*} AS c
"""

EXISTING_IDS: LiteralString = """
UNWIND $ids AS cid
MATCH (c:CI {id: cid}) USING INDEX SEEK c:CI(id)
RETURN collect(c.id) AS ids
"""

GET_CI: LiteralString = "MATCH (c:CI {id: $id}) USING INDEX SEEK c:CI(id) RETURN c {.*} AS c"

FIND_BY_NAME: LiteralString = """
MATCH (c:CI {name: $name})
WHERE $ci_class IS NULL OR c.ci_class = $ci_class
RETURN c {.*} AS c ORDER BY c.id
"""

# Relationships are collected before the nodes go: the history names each one.
ADJACENT_OF_CIS: LiteralString = """
UNWIND $ids AS cid
MATCH (c:CI {id: cid})-[r]-(:CI) USING INDEX SEEK c:CI(id)
RETURN startNode(r).id AS source, type(r) AS type, endNode(r).id AS target, r {.*} AS r
"""

DELETE_CIS: LiteralString = """
UNWIND $ids AS cid
MATCH (c:CI {id: cid}) USING INDEX SEEK c:CI(id)
DETACH DELETE c
"""


def list_cis(clauses: list[LiteralString]) -> LiteralString:
    """CIs matching all ``clauses`` (fixed fragments over ``c``), ordered by id."""
    where = "WHERE " + " AND ".join(clauses) if clauses else ""
    return f"MATCH (c:CI) {where} RETURN c {{.*}} AS c ORDER BY c.id LIMIT $limit"


def count_cis(clauses: list[LiteralString]) -> LiteralString:
    where = "WHERE " + " AND ".join(clauses) if clauses else ""
    return f"MATCH (c:CI) {where} RETURN count(c) AS n"


def match_identifiers(attribute: str) -> LiteralString:
    prop = ident_property(attribute)
    return f"""
UNWIND $values AS value
MATCH (c:CI) WHERE c.{prop} = value
RETURN value, c.id AS id ORDER BY value, id
"""


# -- relationships ----------------------------------------------------------------------------


def merge_relationships(rel_type: str) -> LiteralString:
    """Find or create relationships of one type; return the ones that existed before.

    A missing one is created with its row's properties (the row says what a new one holds),
    so only those that existed may need a second statement. The marker property tells the
    created from the found; it never outlives the statement.

    MERGE is what pins the plan: it always seeks both ends and expands between them from the
    end with fewer relationships (Expand(Into)). A MATCH of the same pattern is planned by
    statistics: with few relationships counted (a new database) as a scan of the whole
    relationship store per row, otherwise maybe as an expansion of every relationship of one
    end, and a hub has 100k of them. A RETURN after a write makes the plan Eager; a chunk is
    bounded by ``neo4j_store.CHUNK`` rows.
    """
    return f"""
UNWIND $rows AS row
MATCH (s:CI {{id: row.source}}) USING INDEX SEEK s:CI(id)
MATCH (t:CI {{id: row.target}}) USING INDEX SEEK t:CI(id)
MERGE (s)-[r:{quote(rel_type)}]->(t)
ON CREATE SET r.attributes = row.attributes, r.provenance = row.provenance,
    r.first_seen = row.first_seen, r.last_seen = row.last_seen, r.cmdb_created = true
WITH row, r, r.cmdb_created IS NULL AS existed
FOREACH (_ IN CASE WHEN existed THEN [] ELSE [1] END | REMOVE r.cmdb_created)
WITH row, r WHERE existed
RETURN row.source AS source, row.target AS target, r {{.*}} AS r
"""


def upsert_relationships(rel_type: str) -> LiteralString:
    """Rewrite relationships of one type that existed (found again by MERGE, for the same
    reason)."""
    return f"""
UNWIND $rows AS row
MATCH (s:CI {{id: row.source}}) USING INDEX SEEK s:CI(id)
MATCH (t:CI {{id: row.target}}) USING INDEX SEEK t:CI(id)
MERGE (s)-[r:{quote(rel_type)}]->(t)
SET r.attributes = row.attributes, r.provenance = row.provenance,
    r.first_seen = row.first_seen, r.last_seen = row.last_seen
"""


# The planner costs plans by statistics and has been seen to pick an index *scan* per row for
# ``UNWIND ... MATCH (c:CI {id: ...})``; the ``USING INDEX`` hints pin the seek.

# Keys are {source, type, target} maps (``k[0]`` in a pattern defeats the index seek); the
# type is compared, not interpolated. One connected pattern, not two MATCHes and a join: with
# few relationships in its statistics the planner answers ``MATCH (s) MATCH (t) ...
# (s)-[r]->(t)`` with a scan of the whole relationship store per row.
READ_RELATIONSHIPS: LiteralString = """
UNWIND $keys AS k
MATCH (s:CI {id: k.source})-[r]->(t:CI {id: k.target})
USING INDEX SEEK s:CI(id) USING INDEX SEEK t:CI(id)
WHERE type(r) = k.type
RETURN s.id AS source, type(r) AS type, t.id AS target, r {.*} AS r
"""

DELETE_RELATIONSHIPS: LiteralString = """
UNWIND $keys AS k
MATCH (s:CI {id: k.source})-[r]->(t:CI {id: k.target})
USING INDEX SEEK s:CI(id) USING INDEX SEEK t:CI(id)
WHERE type(r) = k.type
DELETE r
"""

RELATIONSHIPS_OUT: LiteralString = """
MATCH (c:CI {id: $id})-[r]->(o:CI) USING INDEX SEEK c:CI(id)
WHERE size($types) = 0 OR type(r) IN $types
RETURN c.id AS source, type(r) AS type, o.id AS target, r {.*} AS r
"""

RELATIONSHIPS_IN: LiteralString = """
MATCH (c:CI {id: $id})<-[r]-(o:CI) USING INDEX SEEK c:CI(id)
WHERE size($types) = 0 OR type(r) IN $types
RETURN o.id AS source, type(r) AS type, c.id AS target, r {.*} AS r
"""

# Keyset page over (source, type, target): the id index supplies the source order, so the
# server sorts only within a page (PartialTop), never the whole relationship set.
RELATIONSHIP_PAGE: LiteralString = """
MATCH (s:CI) USING INDEX SEEK s:CI(id) WHERE s.id >= $source
MATCH (s)-[r]->(t:CI)
WHERE s.id > $source OR type(r) > $type OR (type(r) = $type AND t.id > $target)
RETURN s.id AS source, type(r) AS type, t.id AS target, r {.*} AS r
ORDER BY source, type, target
LIMIT $limit
"""

# One BFS level: the distinct CIs one hop from the frontier.
EXPAND_OUT: LiteralString = """
UNWIND $frontier AS cid
MATCH (c:CI {id: cid})-[r]->(o:CI) USING INDEX SEEK c:CI(id)
WHERE size($types) = 0 OR type(r) IN $types
RETURN collect(DISTINCT o.id) AS ids
"""

EXPAND_IN: LiteralString = """
UNWIND $frontier AS cid
MATCH (c:CI {id: cid})<-[r]-(o:CI) USING INDEX SEEK c:CI(id)
WHERE size($types) = 0 OR type(r) IN $types
RETURN collect(DISTINCT o.id) AS ids
"""

EXPAND_BOTH: LiteralString = """
UNWIND $frontier AS cid
MATCH (c:CI {id: cid})-[r]-(o:CI) USING INDEX SEEK c:CI(id)
WHERE size($types) = 0 OR type(r) IN $types
RETURN collect(DISTINCT o.id) AS ids
"""

# ``$among`` maps the same ids to true. A lookup in it cannot be turned into an index seek
# on ``t``; ``t.id IN $ids`` can, and then costs a seek of every id per row.
RELATIONSHIPS_AMONG: LiteralString = """
UNWIND $ids AS cid
MATCH (s:CI {id: cid})-[r]->(t:CI) USING INDEX SEEK s:CI(id)
WHERE $among[t.id] AND (size($types) = 0 OR type(r) IN $types)
RETURN s.id AS source, type(r) AS type, t.id AS target, r {.*} AS r
"""

# -- topology ---------------------------------------------------------------------------------
# Column-wise chunks (a few big lists, not millions of records) keyed by the id index.
# ``id()`` is deprecated in favour of ``elementId()``, but an integer per node is what makes
# the edge lists small and the number mapping a numpy operation; both queries run in one
# read transaction, and the build is redone if the generation moved meanwhile.

TOPOLOGY_NODES: LiteralString = """
MATCH (c:CI) USING INDEX SEEK c:CI(id) WHERE c.id > $after
WITH c ORDER BY c.id LIMIT $limit
RETURN collect(c.id) AS ids,
       collect(id(c)) AS nids,
       collect(coalesce($class_index[c.ci_class], -1)) AS classes,
       collect(coalesce($status_index[c.status], 0)) AS statuses,
       collect(CASE WHEN c.redundancy IS NOT NULL THEN [c.id, c.redundancy] END) AS redundancy
"""

TOPOLOGY_EDGES: LiteralString = """
MATCH (s:CI) USING INDEX SEEK s:CI(id) WHERE s.id > $after
WITH s ORDER BY s.id LIMIT $limit
MATCH (s)-[r]->(t:CI)
RETURN collect(id(s)) AS src,
       collect(coalesce($type_index[type(r)], -1)) AS types,
       collect(id(t)) AS dst
"""

# -- history ----------------------------------------------------------------------------------

# Only what history queries filter and sort on is a property; the rest of an entry is one
# JSON ``body``: half the properties to write per entry. (Entries written by earlier
# versions hold every field as a property; the store reads both layouts.)
CREATE_CHANGES: LiteralString = """
UNWIND $rows AS row
CREATE (h:Change)
SET h = row
"""

# External changes are idempotent by id: an id already recorded is left as it is.
MERGE_CHANGES: LiteralString = """
UNWIND $rows AS row
MERGE (h:Change {id: row.id})
ON CREATE SET h += row
"""


def history(clauses: list[LiteralString], *, by_ci: bool = False) -> LiteralString:
    """History entries matching ``clauses`` (fixed fragments over ``h``), oldest first;
    ``by_ci``: only those of the CIs in ``$cis``, looked up per CI in the (ci, at) index
    (an ``IN`` list may instead be planned as a walk of the whole ``at`` index)."""
    where = "WHERE " + " AND ".join(clauses) if clauses else ""
    match = (
        "UNWIND $cis AS cid MATCH (h:Change {ci: cid}) USING INDEX SEEK h:Change(ci, at)"
        if by_ci
        else "MATCH (h:Change)"
    )
    return f"{match} {where} RETURN h {{.*}} AS h ORDER BY h.at, h.seq LIMIT $limit"


# -- incidents, maintenance, import engine ----------------------------------------------------

PUT_INCIDENT: LiteralString = "MERGE (i:Incident {id: $props.id}) SET i = $props"
GET_INCIDENT: LiteralString = "MATCH (i:Incident {id: $id}) RETURN i {.*} AS i"
LIST_INCIDENTS: LiteralString = """
MATCH (i:Incident) WHERE NOT $open_only OR i.status = 'open'
RETURN i {.*} AS i ORDER BY i.opened_at, i.id
"""

PUT_WINDOW: LiteralString = "MERGE (w:MaintenanceWindow {id: $props.id}) SET w = $props"
DELETE_WINDOW: LiteralString = "MATCH (w:MaintenanceWindow {id: $id}) DELETE w"


def maintenance_windows(clauses: list[LiteralString]) -> LiteralString:
    where = "WHERE " + " AND ".join(clauses) if clauses else ""
    return f"MATCH (w:MaintenanceWindow) {where} RETURN w {{.*}} AS w ORDER BY w.start, w.id"


PUT_SOURCE_RECORDS: LiteralString = """
UNWIND $rows AS row
MERGE (r:SourceRecord {source: row.source, kind: row.kind, key: row.key})
SET r.ci = row.ci, r.digest = row.digest, r.last_run = row.last_run,
    r.last_seen = row.last_seen, r.absent_since = row.absent_since
"""

SOURCE_RECORDS: LiteralString = """
MATCH (r:SourceRecord {source: $source})
RETURN r {.*} AS r ORDER BY r.kind, r.key
"""

DELETE_SOURCE_RECORDS: LiteralString = """
UNWIND $keys AS k
MATCH (r:SourceRecord {source: $source, kind: k.kind, key: k.key})
DELETE r
"""

PUT_RUN: LiteralString = "MERGE (r:ImportRun {id: $props.id}) SET r = $props"
GET_RUN: LiteralString = "MATCH (r:ImportRun {id: $id}) RETURN r {.*} AS r"
LIST_RUNS: LiteralString = """
MATCH (r:ImportRun) WHERE $source IS NULL OR r.source = $source
RETURN r {.*} AS r ORDER BY r.started_at DESC, r.id DESC LIMIT $limit
"""
