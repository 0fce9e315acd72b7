"""The Cypher text of the Neo4j store, in one place so it can be read and EXPLAINed as a whole.

Every value is a parameter. Cypher cannot parameterise labels and relationship types (the
dynamic ``$(...)`` forms of 5.26 plan as scans, not index seeks), so the few queries that
need one are built by the functions below from a name the caller has looked up in the
registry, and the name is quoted as an identifier all the same.

Graph layout::

    (:CI:<ClassLabel> {id, name, ci_class, status, ..., attributes: json, ...,
                       created_seq, created_at, created_run, created: json})
        -[:<TYPE> {attributes: json, provenance: json, first_seen, last_seen,
                   created_seq, created_at, created_run, created: json}]->(:CI)
    (:Change {id, ci, at, seq, run_id, body: json}) append-only history, found by ci / at

A CI and a relationship keep the history entry of their own creation (``created``,
``related``) in their ``created*`` properties, not in a :Change node of its own: a node, six
properties and four index entries less per item, which was about half the cost of loading
one. ``history()`` reads all three; an entry becomes a :Change node, unaltered, when its item
is deleted. Reads of CIs and relationships project their own properties only.
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
    # History without a CI filter: the creation entries kept on CIs in time order, read from
    # the index (a seek from ``since``) instead of a scan and sort of every CI.
    "CREATE INDEX cmdb_ci_created_at IF NOT EXISTS FOR (c:CI) ON (c.created_at)",
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

# ``status_moves`` counts the moves of the generation that changed CI statuses only, so that
# ``value - status_moves`` counts every other change (``Topology.structure``). A writer of an
# earlier release moves ``value`` alone: its changes all count as structural, which is safe.
BUMP_GENERATION: LiteralString = """
MERGE (m:Meta {key: 'generation'}) ON CREATE SET m.value = 0, m.epoch = randomUUID()
SET m.value = m.value + 1,
    m.status_moves = coalesce(m.status_moves, 0) + CASE WHEN $structure THEN 0 ELSE 1 END
"""

READ_GENERATION: LiteralString = """
OPTIONAL MATCH (m:Meta {key: 'generation'})
RETURN m.epoch AS epoch, m.value AS value, m.value - coalesce(m.status_moves, 0) AS structure
"""

# The statuses of a chunk of CIs, in the order of TOPOLOGY_NODES.
TOPOLOGY_STATUSES: LiteralString = """
MATCH (c:CI) USING INDEX SEEK c:CI(id) WHERE c.id > $after
WITH c ORDER BY c.id LIMIT $limit
RETURN collect(c.id) AS ids, collect(coalesce($status_index[c.status], 0)) AS statuses
"""

# A writer's turn: the counter node's lock, taken by a plain write before the transaction
# reads what it will write over, and held until it commits. Not ``SET m.value = m.value +
# 0``: two transactions that each increment the node (one holding it, one waiting) are
# reported as a deadlock when the holder increments it again; a plain write to wait with
# is not (measured on 5.26).
TAKE_TURN: LiteralString = """
MERGE (m:Meta {key: 'change_seq'}) ON CREATE SET m.value = 0
SET m.turn = true
"""

# Reserves ``$count`` consecutive sequence numbers, in a transaction that has its turn.
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

# What reads of a CI need; its creation entry (``created*``) is read by history only.
_CI: LiteralString = "c {.id, " + ", ".join(f".{f}" for f in CI_FIELDS) + "}"

CREATED_FIELDS: tuple[str, ...] = ("created_seq", "created_at", "created_run", "created")

# A new CI's labels and properties in the CREATE itself: one operator that writes the node
# whole, rather than a node, a property at a time and then a label (fewer, larger writes
# to the transaction state). A null value is simply not stored, as with SET.
_NEW_CI: LiteralString = (
    "{id: row.id, " + ", ".join(f"{f}: row.{f}" for f in (*CI_FIELDS, *CREATED_FIELDS)) + "}"
)


def create_cis(label: str) -> LiteralString:
    """Write CIs of one class label that the transaction found missing. CREATE, not MERGE:
    no lookup first (the transaction read them in its turn), and a CI that a writer not
    taking turns created meanwhile fails the uniqueness constraint (the store then runs the
    whole write again, as an update)."""
    return f"""
UNWIND $rows AS row
CREATE (c:CI:{quote(label)} {_NEW_CI})
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


READ_CIS: LiteralString = f"""
UNWIND $ids AS cid
MATCH (c:CI {{id: cid}}) USING INDEX SEEK c:CI(id)
RETURN {_CI} AS c
"""

# The creation entries of CIs about to be deleted, which become :Change nodes.
CREATED_OF_CIS: LiteralString = """
UNWIND $ids AS cid
MATCH (c:CI {id: cid}) USING INDEX SEEK c:CI(id)
WHERE c.created_seq IS NOT NULL
RETURN c.id AS id, c {.created_seq, .created_at, .created_run, .created} AS r
"""

EXISTING_IDS: LiteralString = """
UNWIND $ids AS cid
MATCH (c:CI {id: cid}) USING INDEX SEEK c:CI(id)
RETURN collect(c.id) AS ids
"""

GET_CI: LiteralString = f"MATCH (c:CI {{id: $id}}) USING INDEX SEEK c:CI(id) RETURN {_CI} AS c"

FIND_BY_NAME: LiteralString = f"""
MATCH (c:CI {{name: $name}})
WHERE $ci_class IS NULL OR c.ci_class = $ci_class
RETURN {_CI} AS c ORDER BY c.id
"""

FIND_BY_NAMES: LiteralString = f"""
UNWIND $names AS name
MATCH (c:CI {{name: name}})
RETURN name, c.id AS id, {_CI} AS c ORDER BY name, id
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
    """CIs matching all ``clauses`` (fixed fragments over ``c``), ordered by id. The page is
    cut before the CIs are projected: ``RETURN {…} ORDER BY … LIMIT`` projected every match
    first (~0.25 s for the first page of 100k CIs)."""
    where = "WHERE " + " AND ".join(clauses) if clauses else ""
    return f"MATCH (c:CI) {where} WITH c ORDER BY c.id LIMIT $limit RETURN {_CI} AS c"


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

# What reads of a relationship need; its creation entry (``created*``) is read by history only.
_REL: LiteralString = "r {.attributes, .provenance, .first_seen, .last_seen}"


# The relationship writes address their ends by internal node id (``id()``, deprecated in
# favour of ``elementId()``, but an integer is what keeps 50k-row parameters small), looked
# up once per transaction: an id seek per end instead of an index seek per end and row. The
# ids are read after the writer took the counter lock (see ``neo4j_store._Write``), and no
# node is deleted without it, so an id cannot be reused under the transaction.
NODE_IDS: LiteralString = """
UNWIND $ids AS cid
MATCH (c:CI {id: cid}) USING INDEX SEEK c:CI(id)
RETURN collect(c.id) AS ids, collect(id(c)) AS nids
"""


def existing_relationships(rel_type: str) -> LiteralString:
    """The stored relationships of one type among ``$rows`` ({i, s, t}: a row number and the
    ends' node ids), each with its row number. The subquery pins Expand(Into) between the two
    ends: a plain MATCH has been planned as an expansion of every relationship of ``s``."""
    return f"""
UNWIND $rows AS row
MATCH (s) WHERE id(s) = row.s
MATCH (t) WHERE id(t) = row.t
CALL (s, t) {{ MATCH (s)-[r:{quote(rel_type)}]->(t) RETURN r }}
RETURN row.i AS i, {_REL} AS r
"""


# The properties of a new relationship in its CREATE (``SET r = row.props`` would plan an
# Eager: the whole batch held in memory before the first write).
_NEW_REL: LiteralString = (
    "{"
    + ", ".join(
        f"{f}: row.{f}"
        for f in ("attributes", "provenance", "first_seen", "last_seen", *CREATED_FIELDS)
    )
    + "}"
)


def create_relationships(rel_type: str) -> LiteralString:
    """Create relationships of one type that the transaction found missing, with their
    creation history entry. CREATE, not MERGE: a MERGE locks both ends and looks for the
    relationship again; writers that create relationships take turns (see above)."""
    return f"""
UNWIND $rows AS row
MATCH (s) WHERE id(s) = row.s
MATCH (t) WHERE id(t) = row.t
CREATE (s)-[r:{quote(rel_type)} {_NEW_REL}]->(t)
"""


def upsert_relationships(rel_type: str) -> LiteralString:
    """Rewrite relationships of one type that existed. MERGE pins the plan: it always seeks
    both ends and expands between them from the end with fewer relationships (Expand(Into));
    a MATCH of the same pattern is planned by statistics, and has been planned as a scan of
    every relationship per row on a new database."""
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
RETURN s.id AS source, type(r) AS type, t.id AS target,
       r {.attributes, .provenance, .first_seen, .last_seen} AS r
"""

# The same with every property: a relationship about to be deleted hands over its creation entry.
READ_RELATIONSHIPS_WHOLE: LiteralString = """
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
RETURN c.id AS source, type(r) AS type, o.id AS target,
       r {.attributes, .provenance, .first_seen, .last_seen} AS r
"""

RELATIONSHIPS_IN: LiteralString = """
MATCH (c:CI {id: $id})<-[r]-(o:CI) USING INDEX SEEK c:CI(id)
WHERE size($types) = 0 OR type(r) IN $types
RETURN o.id AS source, type(r) AS type, c.id AS target,
       r {.attributes, .provenance, .first_seen, .last_seen} AS r
"""

# Keyset page over (source, type, target): the id index supplies the source order, so the
# server sorts only within a page (PartialTop), never the whole relationship set.
RELATIONSHIP_PAGE: LiteralString = """
MATCH (s:CI) USING INDEX SEEK s:CI(id) WHERE s.id >= $source
MATCH (s)-[r]->(t:CI)
WHERE s.id > $source OR type(r) > $type OR (type(r) = $type AND t.id > $target)
RETURN s.id AS source, type(r) AS type, t.id AS target,
       r {.attributes, .provenance, .first_seen, .last_seen} AS r
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
# on ``t``; ``t.id IN $ids`` can, and then costs a seek of every id per row. One record holds
# every row: streaming tens of thousands of small records cost the driver twice the time of
# decoding one list (depth 3 around an application of a 100k CMDB: ~1.5 s -> ~0.7 s).
RELATIONSHIPS_AMONG: LiteralString = """
UNWIND $ids AS cid
MATCH (s:CI {id: cid})-[r]->(t:CI) USING INDEX SEEK s:CI(id)
WHERE $among[t.id] AND (size($types) = 0 OR type(r) IN $types)
RETURN collect([s.id, type(r), t.id, r {.attributes, .provenance, .first_seen, .last_seen}])
       AS rows
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
       collect(CASE WHEN c.redundancy IS NOT NULL THEN [c.id, c.redundancy] END) AS redundancy,
       collect(CASE WHEN c.owner IS NOT NULL OR c.support_group IS NOT NULL
                    THEN [c.id, c.owner, c.support_group] END) AS teams
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


def created_history(clauses: list[LiteralString], *, by_ci: bool = False) -> LiteralString:
    """The creation entries kept on CIs (``created*``, see the module docstring) matching
    ``clauses`` (fixed fragments over ``c``), oldest first. ``by_ci``: only those of the CIs
    in ``$cis``."""
    terms: list[LiteralString] = ["c.created_seq IS NOT NULL", *clauses]
    if by_ci:
        match: LiteralString = "UNWIND $cis AS cid MATCH (c:CI {id: cid}) USING INDEX SEEK c:CI(id)"
    else:
        # The (created_at) index supplies the order, so the server stops after ``$limit``
        # entries (PartialTop) instead of sorting every CI; the IS NOT NULL term lets it
        # scan the index when no time bound is given.
        match = "MATCH (c:CI) USING INDEX c:CI(created_at)"
        terms.insert(0, "c.created_at IS NOT NULL")
    where = " AND ".join(terms)
    return f"""{match} WHERE {where}
RETURN c.id AS ci, c.created_at AS at, c.created_seq AS seq, c.created_run AS run_id,
       c.created AS body
ORDER BY at, seq LIMIT $limit"""


def related_history(clauses: list[LiteralString], *, by_ci: bool = False) -> LiteralString:
    """The creation entries kept on relationships (``created*``, see the module docstring)
    matching ``clauses`` (fixed fragments over ``r``), oldest first; an entry's CI is the
    relationship's source. ``by_ci``: only those of the CIs in ``$cis``."""
    where = " AND ".join(["r.created_seq IS NOT NULL", *clauses])
    match = (
        "UNWIND $cis AS cid MATCH (s:CI {id: cid})-[r]->(:CI) USING INDEX SEEK s:CI(id)"
        if by_ci
        else "MATCH (s:CI)-[r]->(:CI)"
    )
    return f"""{match} WHERE {where}
RETURN s.id AS ci, r.created_at AS at, r.created_seq AS seq, r.created_run AS run_id,
       r.created AS body
ORDER BY at, seq LIMIT $limit"""


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

# A keyset page of one source's records in (kind, key) order, in two seeks of the
# (source, kind, key) constraint's index that keep its order (no sort): the rest of the
# current kind, then the kinds after it. (One OR of the two is planned as a union and a
# sort of every record left.)
SOURCE_RECORDS_SAME_KIND: LiteralString = """
MATCH (r:SourceRecord) USING INDEX r:SourceRecord(source, kind, key)
WHERE r.source = $source AND r.kind = $kind AND r.key > $key
WITH r ORDER BY r.source, r.kind, r.key LIMIT $limit
RETURN r {.*} AS r
"""

SOURCE_RECORDS_NEXT_KINDS: LiteralString = """
MATCH (r:SourceRecord) USING INDEX r:SourceRecord(source, kind, key)
WHERE r.source = $source AND r.kind > $kind AND r.key IS NOT NULL
WITH r ORDER BY r.source, r.kind, r.key LIMIT $limit
RETURN r {.*} AS r
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
