"""The Neo4j store's bulk paths and cheap reads: paged source records, the history index,
the one-round-trip generation read, and the driver's notifications turned off."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import neo4j
import pytest

from graph import neo4j_cypher as cypher
from graph import neo4j_store as store_module
from graph.model import CiId, ConfigurationItem, Relationship, SourceRecord, WriteContext
from graph.neo4j_store import Neo4jStore
from tests.integration.neo4j_store.test_neo4j_store import SCANS, plan_operators

pytestmark = pytest.mark.neo4j

T0 = datetime(2026, 2, 1, 8, 30, tzinfo=UTC)


def ci(id: str) -> ConfigurationItem:
    return ConfigurationItem.model_validate({"id": id, "class": "server", "name": id})


def record(source: str, kind: str, key: str) -> SourceRecord:
    return SourceRecord.model_validate(
        {"source": source, "kind": kind, "key": key, "ci": "a", "last_run": "r1", "last_seen": T0}
    )


def test_iter_source_records_pages_in_kind_key_order(store: Neo4jStore):
    store.upsert_cis([ci("a")], WriteContext(actor="test", at=T0))
    mine = [record("csv", "ci", f"k{i:02}") for i in range(7)] + [
        record("csv", "relationship", f"a|DEPENDS_ON|b{i}") for i in range(4)
    ]
    others = [record("csv2", "ci", "k00"), record("cs", "relationship", "zz")]
    store.put_source_records([*reversed(mine), *others])
    expected = sorted(mine, key=lambda r: (r.kind, r.key))
    assert store.source_records("csv") == expected
    for size in (1, 2, 3, 7, 11, 12, 1000):  # page ends inside a kind, at its end, at the end
        assert list(store.iter_source_records("csv", batch_size=size)) == expected, size
    assert list(store.iter_source_records("nobody")) == []


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(cypher.SOURCE_RECORDS_SAME_KIND, id="same_kind"),
        pytest.param(cypher.SOURCE_RECORDS_NEXT_KINDS, id="next_kinds"),
    ],
)
def test_source_record_pages_read_the_index_in_order(
    store: Neo4jStore, driver: neo4j.Driver, query: str
):
    ops = plan_operators(driver, query, source="x", kind="ci", key="k", limit=10)
    assert "NodeUniqueIndexSeek" in ops or "NodeUniqueIndexSeekByRange" in ops, ops
    assert not {"Sort", "Top", "PartialTop", "Eager"} & set(ops), ops
    assert not SCANS & set(ops), ops


@pytest.mark.parametrize(
    ("clauses", "params"),
    [
        pytest.param([], {}, id="no bounds"),
        pytest.param(["c.created_at >= $since"], {"since": "2026-01-01"}, id="since"),
        pytest.param(["c.created_run = $run_id"], {"run_id": "r"}, id="run"),
    ],
)
def test_history_of_all_cis_reads_creation_entries_in_time_order(
    store: Neo4jStore, driver: neo4j.Driver, clauses: list[str], params: dict[str, str]
):
    query = cypher.created_history(clauses)  # type: ignore[arg-type]
    ops = plan_operators(driver, query, limit=10, **params)
    assert "PartialTop" in ops and "Top" not in ops, ops
    assert "NodeByLabelScan" not in ops, ops


def test_generation_is_one_auto_commit_query(
    store: Neo4jStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = store.generation()
    assert before is not None

    def no_transactions(*args: object, **kwargs: object) -> None:
        raise AssertionError("generation() opened a managed transaction")

    monkeypatch.setattr(neo4j.Session, "execute_read", no_transactions)
    monkeypatch.setattr(neo4j.Session, "begin_transaction", no_transactions)
    assert store.generation() == before


def test_server_notifications_are_not_logged(
    store: Neo4jStore, caplog: pytest.LogCaptureFixture
) -> None:
    # On a new database every relationship type is unknown (01N51) and id() is deprecated:
    # both used to be logged as warnings for every statement of a write.
    caplog.set_level(logging.INFO, logger="neo4j")
    context = WriteContext(actor="test", at=T0)
    store.upsert_cis([ci("a"), ci("b")], context)
    store.upsert_relationships(
        [Relationship(source=CiId("a"), type="DEPENDS_ON", target=CiId("b"))], context
    )
    store.topology()
    assert not [r for r in caplog.records if r.name.startswith("neo4j.notifications")]


def test_statement_rows_print_their_length_only() -> None:
    rows = store_module._Rows([{"id": "a"}, {"id": "b"}])
    assert repr({"rows": rows}) == "{'rows': <2 rows>}"
    assert rows == [{"id": "a"}, {"id": "b"}]
    chunks = list(store_module._chunks(list(range(5)), 2))
    assert [repr(c) for c in chunks] == ["<2 rows>", "<2 rows>", "<1 rows>"]
