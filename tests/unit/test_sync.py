"""The import engine on the embedded store: reconciliation, precedence, runs, absence and
retirement, the deletion guard, dry runs, dangling references, and the CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from graph import sync_plan
from graph.errors import ConfigurationError
from graph.model import ChangeKind, CiId, ImportRun, RunStatus, Status
from graph.sqlite_store import SqliteStore
from graph.sync import plan_import, run_import
from graph.sync_rules import ReconciliationRules, load_rules
from importers.generic import demo_csv_files, demo_inventory, iter_csv_chunks, parse_csv
from tests.unit.test_sync_helpers import T0, ci, full_state, inv, rel, state

DAY = timedelta(days=1)


@pytest.fixture(autouse=True, params=["in memory", "on disk", "spills"])
def planner_memory(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test on the three sides of ``IN_MEMORY_ENTRIES``: the run's state in dicts (the
    default, at this size), in the scratch database from the start (limit 0), and moving
    there mid-run (limit 3: while the source's records load, or when a chunk ends)."""
    limit = {"in memory": sync_plan.IN_MEMORY_ENTRIES, "on disk": 0, "spills": 3}
    monkeypatch.setattr(sync_plan, "IN_MEMORY_ENTRIES", limit[request.param])


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteStore(tmp_path / "store")
    yield s
    s.close()


def servers(n: int, prefix: str = "s") -> list:
    return [ci(f"{prefix}{i}", attributes={"serial_number": f"SN{prefix}{i}"}) for i in range(n)]


# -- idempotence and history ----------------------------------------------------------------------


def test_import_then_reimport_changes_nothing_and_records_nothing(store):
    data = inv(ci("a"), ci("b", "database"), rel("a", "b"))
    first = run_import(store, data, source="src", format="yaml", now=T0)
    assert first.status == RunStatus.SUCCEEDED
    assert (first.cis.created, first.relationships.created) == (2, 1)
    history = store.history(limit=1000)
    assert history and all(c.run_id == first.run_id and c.source == "src" for c in history)
    before = full_state(store)
    second = run_import(store, data, source="src", format="yaml", now=T0 + DAY)
    assert second.counts()["created"] == second.counts()["updated"] == 0
    assert second.counts()["unchanged"] == 3
    assert store.history(run_id=second.run_id) == []
    assert full_state(store) == before
    # without the digest shortcut the full merge reaches the same verdict
    third = run_import(
        store, data, source="src", format="yaml", now=T0 + 2 * DAY, skip_unchanged=False
    )
    assert third.counts()["unchanged"] == 3
    assert full_state(store) == before


def test_every_field_remembers_its_source_and_run(store):
    report = run_import(
        store,
        inv(ci("a", owner="ops", attributes={"rack": "r1"})),
        source="src",
        format="yaml",
        now=T0,
    )
    stored = store.get_ci(CiId("a"))
    assert stored.provenance["owner"].source == "src"
    assert stored.provenance["owner"].run_id == report.run_id
    assert stored.provenance["owner"].at == T0
    assert stored.provenance["attributes.rack"].source == "src"
    assert "environment" not in stored.provenance  # not said, not claimed


def test_runs_are_recorded(store):
    report = run_import(store, inv(ci("a")), source="src", format="csv", now=T0)
    run = store.get_run(report.run_id)
    assert run.status == RunStatus.SUCCEEDED and run.finished_at is not None
    assert run.counts["created"] == 1
    # a run left "running" (killed) is closed by the next one
    store.put_run(ImportRun(id="killed", source="src", format="csv", started_at=T0))
    run_import(store, inv(ci("a")), source="src", format="csv", now=T0 + DAY)
    assert store.get_run("killed").status == RunStatus.FAILED


# -- reconciliation -----------------------------------------------------------------------------


def test_same_server_from_two_sources_by_serial_number_is_one_ci(store):
    run_import(
        store,
        inv(ci("esx-01", attributes={"serial_number": "CZ1234", "cpu": 64})),
        source="discovery",
        format="yaml",
        now=T0,
    )
    report = run_import(
        store,
        inv(ci("asset-77", name="ESX 01", attributes={"serial_number": " cz1234 ", "rack": "R2"})),
        source="assets",
        format="csv",
        now=T0 + DAY,
    )
    assert store.count_cis() == 1
    assert report.cis.updated == 1 and report.cis.created == 0
    merged = store.get_ci(CiId("esx-01"))
    assert merged.attributes["rack"] == "R2" and merged.attributes["cpu"] == 64
    assert merged.provenance["attributes.rack"].source == "assets"
    assert merged.provenance["attributes.cpu"].source == "discovery"
    # the next run of "assets" finds it through its source record
    again = run_import(
        store,
        inv(ci("asset-77", name="ESX 01", attributes={"serial_number": "cz1234", "rack": "R3"})),
        source="assets",
        format="csv",
        now=T0 + 2 * DAY,
    )
    assert again.cis.updated == 1 and store.count_cis() == 1


def test_identification_order_fqdn_then_name_then_id(store):
    run_import(
        store,
        inv(
            ci("h1", attributes={"fqdn": "h1.example.com"}),
            ci("app", "application", name="Billing"),
            ci("db", "database"),
        ),
        source="a",
        format="yaml",
        now=T0,
    )
    run_import(
        store,
        inv(
            ci("x1", name="other-name", attributes={"fqdn": "H1.example.com"}),
            ci("x2", "application", name="Billing"),
            ci("db", "database", owner="dba"),
        ),
        source="b",
        format="yaml",
        now=T0,
    )
    assert store.count_cis() == 3
    assert store.get_ci(CiId("db")).owner == "dba"


def test_two_candidates_go_to_review_and_nothing_is_merged(store):
    run_import(
        store,
        inv(
            ci("n1", attributes={"fqdn": "dup.example.com"}),
            ci("n2", attributes={"fqdn": "dup.example.com"}),
        ),
        source="a",
        format="yaml",
        now=T0,
    )
    before = full_state(store)
    report = run_import(
        store,
        inv(ci("z", attributes={"fqdn": "dup.example.com", "x": 1})),
        source="b",
        format="yaml",
        now=T0,
    )
    assert report.conflict_count == 1
    conflict = report.conflicts[0]
    assert conflict.candidates == ("n1", "n2")
    assert "fqdn" in conflict.reason and conflict.location.startswith("test.yaml:")
    assert full_state(store) == before
    assert any(m.startswith("conflict: ") for m in store.get_run(report.run_id).messages)


def test_a_source_reporting_two_things_gets_two_cis(store):
    # Two services named "redis" in two namespaces: the same source, two keys, two CIs.
    report = run_import(
        store,
        inv(
            ci("ns1/redis", "kubernetes_service", name="redis"),
            ci("ns2/redis", "kubernetes_service", name="redis"),
        ),
        source="k8s",
        format="kubernetes",
        now=T0,
    )
    assert report.cis.created == 2 and report.conflict_count == 0
    again = run_import(
        store,
        inv(
            ci("ns1/redis", "kubernetes_service", name="redis", owner="x"),
            ci("ns2/redis", "kubernetes_service", name="redis", owner="y"),
        ),
        source="k8s",
        format="kubernetes",
        now=T0,
    )
    assert again.cis.updated == 2 and store.count_cis() == 2


def test_a_key_that_is_another_classes_id_gets_a_source_prefixed_id(store):
    run_import(store, inv(ci("redis", "application")), source="a", format="yaml", now=T0)
    report = run_import(store, inv(ci("redis", "database")), source="b", format="yaml", now=T0)
    assert report.created == ("b:redis",)
    assert store.get_ci(CiId("redis")).ci_class == "application"
    again = run_import(store, inv(ci("redis", "database")), source="b", format="yaml", now=T0)
    assert again.cis.unchanged == 1


# -- precedence -----------------------------------------------------------------------------------


def test_precedence_decides_which_source_wins_a_field(store):
    rules = ReconciliationRules(
        precedence={"owner": ("cmdb", "discovery"), "attributes.serial_number": ("assets",)}
    )
    kw = {"format": "yaml", "rules": rules, "now": T0}
    run_import(store, inv(ci("h", owner="infra", environment="prod")), source="cmdb", **kw)
    run_import(
        store,
        inv(ci("h", owner="someone", environment="test", attributes={"serial_number": "S1"})),
        source="discovery",
        **kw,
    )
    h = store.get_ci(CiId("h"))
    assert h.owner == "infra"  # cmdb ranks higher for owner
    assert h.environment == "test"  # nobody ranks: the last writer wins
    assert h.provenance["environment"].source == "discovery"
    run_import(store, inv(ci("h", attributes={"serial_number": "S2"})), source="assets", **kw)
    run_import(
        store,
        inv(ci("h", owner="someone", environment="test", attributes={"serial_number": "S3"})),
        source="discovery",
        **kw,
    )
    assert store.get_ci(CiId("h")).attributes["serial_number"] == "S2"


def test_a_field_the_source_withdraws_is_cleared_only_if_it_set_it(store):
    run_import(
        store,
        inv(ci("h", owner="infra", attributes={"a": 1, "b": 2})),
        source="one",
        format="yaml",
        now=T0,
    )
    run_import(
        store,
        inv(ci("h", description="from two", attributes={"c": 3})),
        source="two",
        format="yaml",
        now=T0,
    )
    report = run_import(
        store, inv(ci("h", attributes={"a": 1})), source="one", format="yaml", now=T0
    )
    h = store.get_ci(CiId("h"))
    assert h.owner is None and h.attributes == {"a": 1, "c": 3}
    assert h.description == "from two"
    fields = {c.field for c in report.updated[0].changes}
    assert fields == {"owner", "attributes.b"}


def test_rules_file(tmp_path: Path):
    path = tmp_path / "rules.toml"
    path.write_text(
        '[identification]\nserver = ["serial_number", "name"]\n'
        '[precedence]\nowner = ["servicenow"]\n"*" = ["netbox"]\n[options]\nsame_class = false\n'
    )
    rules = load_rules(path)
    assert rules.identifiers("server") == ("serial_number", "name")
    assert rules.identifiers("database")[0] == "serial_number"
    assert rules.ranking("owner") == ("servicenow",)
    assert rules.ranking("attributes.x") == ("netbox",)
    assert not rules.same_class
    path.write_text('[identification]\nserver = ["serial"]\n')
    with pytest.raises(ConfigurationError, match="serial"):
        load_rules(path)
    path.write_text("[identificaton]\n")
    with pytest.raises(ConfigurationError, match="identificaton"):
        load_rules(path)


# -- absence, retirement, the guard -------------------------------------------------------------


def test_absent_then_retired_after_the_grace_period_then_back(store):
    kw = {"source": "src", "format": "yaml"}
    run_import(store, inv(ci("a"), ci("b"), rel("a", "b")), now=T0, **kw)
    r1 = run_import(store, inv(ci("a")), now=T0 + DAY, allow_deletes=10, **kw)
    assert r1.absent == ("b",) and r1.cis.removed == 0
    assert r1.absent_relationships == ("a|DEPENDS_ON|b",)
    assert store.get_ci(CiId("b")).status == Status.OPERATIONAL
    assert store.get_relationship((CiId("a"), "DEPENDS_ON", CiId("b"))) is not None
    records = {r.key: r for r in store.source_records("src")}
    assert records["b"].absent_since == T0 + DAY
    r2 = run_import(store, inv(ci("a")), now=T0 + 5 * DAY, allow_deletes=10, **kw)
    assert r2.cis.removed == 0 and r2.cis.absent == 1
    assert store.source_records("src")[-1].absent_since == T0 + DAY  # not reset
    r3 = run_import(store, inv(ci("a")), now=T0 + 9 * DAY, allow_deletes=10, **kw)
    assert r3.retired == ("b",) and r3.relationships.removed == 1
    assert store.get_ci(CiId("b")).status == Status.RETIRED
    retired = [c for c in store.history(run_id=r3.run_id) if c.kind == ChangeKind.RETIRED]
    assert [c.ci for c in retired] == ["b"]
    assert store.get_relationship((CiId("a"), "DEPENDS_ON", CiId("b"))) is None
    r4 = run_import(store, inv(ci("a")), now=T0 + 10 * DAY, **kw)
    assert r4.counts()["retired"] == 0 and r4.cis.absent == 0  # gone, not absent again
    # it comes back: same CI, operational again
    r5 = run_import(store, inv(ci("a"), ci("b")), now=T0 + 11 * DAY, **kw)
    assert r5.cis.updated == 1
    assert store.get_ci(CiId("b")).status == Status.OPERATIONAL
    assert store.count_cis() == 2


def test_another_source_still_reporting_a_ci_keeps_it(store):
    run_import(store, inv(ci("a"), ci("b")), source="one", format="yaml", now=T0)
    run_import(store, inv(ci("b")), source="two", format="yaml", now=T0)
    report = run_import(
        store,
        inv(ci("a")),
        source="one",
        format="yaml",
        now=T0 + DAY,
        grace=timedelta(0),
        allow_deletes=5,
    )
    assert report.cis.absent == 1 and report.retired == ()
    assert store.get_ci(CiId("b")).status == Status.OPERATIONAL


def test_partial_and_failed_runs_retire_nothing(store):
    kw = {"source": "src", "format": "yaml", "grace": timedelta(0), "allow_deletes": 100}
    run_import(store, inv(ci("a"), ci("b"), ci("c")), now=T0, **kw)
    before = full_state(store)
    partial = run_import(store, inv(ci("a"), complete=False), now=T0 + DAY, **kw)
    assert partial.status == RunStatus.PARTIAL
    assert partial.absent == () and partial.retired == ()
    assert full_state(store) == before
    assert all(r.absent_since is None for r in store.source_records("src"))
    failed = run_import(
        store, inv(ci("a", owner="x"), ci("zz", "no_such_class")), now=T0 + DAY, **kw
    )
    assert failed.status == RunStatus.FAILED and failed.error_count == 1
    assert "no_such_class" in failed.errors[0] and "test.yaml:" in failed.errors[0]
    assert "field 'class'" in failed.errors[0]
    assert full_state(store) == before  # a bad item writes nothing, not even the good ones
    assert store.get_run(failed.run_id).status == RunStatus.FAILED


def test_the_deletion_guard_stops_a_run_that_removes_too_much(store):
    kw = {"source": "src", "format": "yaml", "grace": timedelta(0)}
    run_import(store, inv(*servers(20)), now=T0, **kw)
    before = full_state(store)
    truncated = inv(*servers(20)[:5], ci("new"))
    report = run_import(store, truncated, now=T0 + DAY, **kw)
    assert report.stopped and "--allow-deletes 15" in report.stopped
    assert report.status == RunStatus.FAILED and not report.ok
    assert full_state(store) == before  # nothing at all: not the new CI either
    assert all(r.absent_since is None for r in store.source_records("src"))
    # a ceiling, not a licence
    assert run_import(store, truncated, now=T0 + DAY, allow_deletes=14, **kw).stopped
    report = run_import(store, truncated, now=T0 + DAY, allow_deletes=15, **kw)
    assert report.ok and len(report.retired) == 15
    # within 10 %: no approval needed
    run_import(store, inv(*servers(20, "t")), source="t", format="yaml", now=T0)
    small = run_import(
        store,
        inv(*servers(20, "t")[:18]),
        source="t",
        format="yaml",
        now=T0 + DAY,
        grace=timedelta(0),
    )
    assert small.ok and len(small.retired) == 2


def test_the_guard_counts_against_500_items_too(store):
    run_import(store, inv(*servers(1000)), source="big", format="csv", now=T0)
    report = run_import(
        store,
        inv(*servers(1000)[:499]),
        source="big",
        format="csv",
        now=T0 + DAY,
        grace=timedelta(0),
    )
    assert report.stopped and "500" in report.stopped


# -- dry run -------------------------------------------------------------------------------------


def test_dry_run_writes_nothing_and_reports_exactly_the_run(store):
    run_import(
        store, inv(ci("a", owner="x"), ci("b"), rel("a", "b")), source="src", format="yaml", now=T0
    )
    before = full_state(store)
    runs_before = store.list_runs()
    changed = inv(ci("a", owner="y"), ci("c"), rel("a", "c"))
    kw = {
        "source": "src",
        "format": "yaml",
        "now": T0 + DAY,
        "grace": timedelta(0),
        "allow_deletes": 5,
    }
    dry = run_import(store, changed, dry_run=True, **kw)
    assert dry.dry_run and full_state(store) == before and store.list_runs() == runs_before
    plan = plan_import(store, changed, **kw)
    assert plan.report.counts() == dry.counts() and plan.writes
    assert full_state(store) == before
    real = run_import(store, changed, **kw)
    assert real.counts() == dry.counts()
    assert real.created == dry.created == ("c",)
    assert real.updated == dry.updated
    assert [(c.field, c.before, c.after) for c in real.updated[0].changes] == [("owner", "x", "y")]
    assert real.retired == dry.retired == ("b",)
    assert real.deleted_relationships == dry.deleted_relationships


# -- relationships and references -------------------------------------------------------------


def test_dangling_reference_becomes_a_placeholder_with_a_warning(store):
    report = run_import(
        store,
        inv(ci("app", "application"), rel("app", "ghost-db")),
        source="src",
        format="yaml",
        now=T0,
    )
    assert report.placeholders == ("ghost-db",)
    assert report.warning_count == 1 and "rels.csv:" in report.warnings[0]
    assert "ghost-db" in report.warnings[0]
    ghost = store.get_ci(CiId("ghost-db"))
    assert ghost.ci_class == "other" and ghost.attributes == {"placeholder": True}
    assert store.get_relationship((CiId("app"), "DEPENDS_ON", CiId("ghost-db"))) is not None
    # the same input again changes nothing
    again = run_import(
        store,
        inv(ci("app", "application"), rel("app", "ghost-db")),
        source="src",
        format="yaml",
        now=T0,
    )
    assert again.counts()["created"] == 0 and again.warning_count == 0
    # when the real CI comes, the placeholder becomes it
    run_import(
        store,
        inv(ci("app", "application"), ci("ghost-db", "database"), rel("app", "ghost-db")),
        source="src",
        format="yaml",
        now=T0,
    )
    real = store.get_ci(CiId("ghost-db"))
    assert real.ci_class == "database" and "placeholder" not in real.attributes


def test_no_placeholders_skips_with_a_warning(store):
    report = run_import(
        store,
        inv(ci("app", "application"), rel("app", "ghost")),
        source="src",
        format="yaml",
        now=T0,
        placeholders=False,
    )
    assert report.relationships.created == 0 and report.placeholder_count == 0
    assert "names no CI; skipped" in report.warnings[0]
    assert store.count_cis() == 1


def test_references_by_id_key_and_unique_name(store):
    run_import(
        store, inv(ci("db-1", "database", name="Orders DB")), source="a", format="yaml", now=T0
    )
    report = run_import(
        store,
        inv(
            ci("svc", "application", name="Shop"),
            rel("svc", "Orders DB"),
            rel("Shop", "db-1", "USES"),
        ),
        source="b",
        format="yaml",
        now=T0,
    )
    assert report.relationships.created == 2 and report.warning_count == 0
    run_import(
        store,
        inv(ci("x1", "database", name="Twin"), ci("x2", "database", name="Twin")),
        source="c",
        format="yaml",
        now=T0,
    )
    ambiguous = run_import(
        store,
        inv(ci("svc", "application", name="Shop"), rel("svc", "Twin")),
        source="b",
        format="yaml",
        now=T0,
    )
    assert ambiguous.conflict_count == 1
    assert ambiguous.conflicts[0].candidates == ("x1", "x2")


def test_relationship_attributes_update_and_self_loops(store):
    run_import(
        store, inv(ci("a"), ci("b"), rel("a", "b", port=1)), source="s", format="yaml", now=T0
    )
    report = run_import(
        store,
        inv(ci("a"), ci("b"), rel("a", "b", port=2), rel("a", "a")),
        source="s",
        format="yaml",
        now=T0,
    )
    assert report.relationships.updated == 1
    assert report.updated_relationships[0].changes[0].after == 2
    assert "both ends" in report.warnings[0]


def test_redundancy_members_follow_reconciliation(store):
    run_import(
        store,
        inv(ci("host-1", attributes={"serial_number": "S1"})),
        source="a",
        format="yaml",
        now=T0,
    )
    run_import(
        store,
        inv(
            ci("m1", attributes={"serial_number": "S1"}),
            ci("m2"),
            ci(
                "cluster",
                "hypervisor_cluster",
                redundancy=[{"name": "hosts", "members": ["m1", "m2"]}],
            ),
        ),
        source="b",
        format="yaml",
        now=T0,
    )
    assert store.get_ci(CiId("cluster")).redundancy[0].members == ("host-1", "m2")


# -- streaming, formats, demo ------------------------------------------------------------------


def test_streamed_chunks_reach_the_same_state_as_one_inventory(tmp_path: Path):
    rows = "".join(f"c{i},server,c{i},{i % 4 + 1}\n" for i in range(60))
    rels = "".join(f"c{i},c{(i * 7) % 60},DEPENDS_ON\n" for i in range(1, 60))
    rels += "c0,Ghost,DEPENDS_ON\nc1,c59,RUNS_ON\n"
    files_text = [
        ("c.csv", "id,class,name,criticality\n" + rows),
        ("r.csv", "source,target,type\n" + rels),
    ]
    from importers.base import SourceFile

    files = [SourceFile(name=n, data=t.encode()) for n, t in files_text]
    whole = SqliteStore(tmp_path / "whole")
    streamed = SqliteStore(tmp_path / "streamed")
    try:
        a = run_import(whole, parse_csv(files), source="s", format="csv", now=T0)
        b = run_import(
            streamed, iter_csv_chunks(files, chunk_rows=7), source="s", format="csv", now=T0
        )
        assert a.counts() == b.counts()
        assert state(whole) == state(streamed)
        again = run_import(
            streamed, iter_csv_chunks(files, chunk_rows=7), source="s", format="csv", now=T0
        )
        # 60 CIs and 56 relationships (5 self-loops skipped); the placeholder is no item
        assert again.counts()["unchanged"] == 60 + 56
    finally:
        whole.close()
        streamed.close()


def test_demo_as_csv_and_as_yaml_give_the_same_store(tmp_path: Path):
    from api.cli_import import load_demo

    from_yaml = SqliteStore(tmp_path / "yaml")
    from_csv = SqliteStore(tmp_path / "csv")
    try:
        report = load_demo(from_yaml)
        assert report.ok and report.cis.created == 37 and report.relationships.created == 54
        run_import(from_csv, parse_csv(demo_csv_files()), source="demo", format="csv")
        assert state(from_yaml) == state(from_csv)
        # either after the other changes nothing
        again = run_import(from_yaml, parse_csv(demo_csv_files()), source="demo", format="csv")
        assert again.counts()["unchanged"] == 91
        assert load_demo(from_csv).counts()["unchanged"] == 91
        assert demo_inventory().complete
    finally:
        from_yaml.close()
        from_csv.close()


# -- the CLI ---------------------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "generic"


def cmdb(capsys, *argv: str) -> tuple[int, str, str]:
    from api.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_import_json_summary_dry_run_and_runs(tmp_path: Path, capsys):
    where = ["--store", str(tmp_path / "cli")]
    files = [str(FIXTURES / "servers.csv"), str(FIXTURES / "servers-relationships.csv")]
    code, out, _ = cmdb(
        capsys, "import", "csv", *files, "--source", "sheet", "--dry-run", "--json", *where
    )
    assert code == 0
    dry = json.loads(out)
    assert dry["dry_run"] and dry["created"] == 5
    for key in (
        "created",
        "updated",
        "unchanged",
        "absent",
        "retired",
        "conflicts",
        "errors",
        "warnings",
    ):
        assert isinstance(dry[key], int), key
    code, out, _ = cmdb(capsys, "runs", "--json", *where)
    assert json.loads(out) == []
    code, out, _ = cmdb(capsys, "import", "csv", *files, "--source", "sheet", *where)
    assert code == 0 and "3 created" in out and "2 created" in out
    code, out, _ = cmdb(
        capsys,
        "import",
        "csv",
        str(FIXTURES),
        "--source",
        "sheet",
        "--json",
        "--mapping",
        str(FIXTURES / "asset-db.map.yaml"),
        *where,
    )
    # the directory holds asset-db.csv too: the mapping makes it a CI file of this source
    report = json.loads(out)
    assert code == 0 and report["created"] == 3 and report["unchanged"] == 5
    code, out, _ = cmdb(capsys, "runs", *where)
    assert out.count("sheet") == 2
    code, out, _ = cmdb(capsys, "review", *where)
    assert "empty" in out


def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path: Path, capsys):
    where = ["--store", str(tmp_path / "cli")]
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"id,class,name\na,server,a\nb,server,caf\xe9\n")
    code, _, err = cmdb(capsys, "import", "csv", str(bad), *where)
    assert code == 2 and f"{bad}:3" in err and "UTF-8" in err
    store = SqliteStore(tmp_path / "cli")
    try:
        assert store.count_cis() == 0
        assert store.list_runs()[0].status == RunStatus.FAILED
    finally:
        store.close()
    code, _, err = cmdb(capsys, "import", "csv", str(tmp_path / "missing.csv"), *where)
    assert code == 2 and "no such file" in err


def test_cli_threshold_and_conflicts_exit_1(tmp_path: Path, capsys):
    where = ["--store", str(tmp_path / "cli")]
    full = tmp_path / "full.csv"
    full.write_text("id,class,name\n" + "".join(f"h{i},server,h{i}\n" for i in range(30)))
    cut = tmp_path / "cut.csv"
    cut.write_text("id,class,name\nh0,server,h0\n")
    assert cmdb(capsys, "import", "csv", str(full), *where)[0] == 0
    code, out, _ = cmdb(capsys, "import", "csv", str(cut), "--grace", "0", *where)
    assert code == 1 and "STOPPED" in out and "--allow-deletes 29" in out
    code, out, _ = cmdb(
        capsys, "import", "csv", str(cut), "--grace", "0", "--allow-deletes", "29", "--json", *where
    )
    assert code == 0 and json.loads(out)["retired"] == 29
    dup = tmp_path / "dup.json"
    dup.write_text(
        json.dumps(
            {
                "cis": [
                    {
                        "id": "d1",
                        "class": "server",
                        "name": "d1",
                        "attributes": {"fqdn": "x.example"},
                    },
                    {
                        "id": "d2",
                        "class": "server",
                        "name": "d2",
                        "attributes": {"fqdn": "x.example"},
                    },
                ]
            }
        )
    )
    assert cmdb(capsys, "import", "json", str(dup), "--source", "one", *where)[0] == 0
    one = tmp_path / "one.json"
    one.write_text(
        json.dumps(
            {
                "cis": [
                    {"id": "q", "class": "server", "name": "q", "attributes": {"fqdn": "X.example"}}
                ]
            }
        )
    )
    code, out, _ = cmdb(capsys, "import", "json", str(one), "--source", "two", *where)
    assert code == 1 and "d1, d2" in out
    code, out, _ = cmdb(capsys, "review", "--json", *where)
    entries = json.loads(out)
    assert (
        len(entries) == 1 and entries[0]["source"] == "two" and "d1, d2" in entries[0]["conflict"]
    )


def test_cli_help_teaches(capsys):
    from api.cli import main

    with pytest.raises(SystemExit):
        main(["import", "--help"])
    out = capsys.readouterr().out
    for word in (
        "run",
        "--allow-deletes",
        "--dry-run",
        "examples:",
        "kubernetes",
        "csv",
        "--mapping",
        "--grace",
    ):
        assert word in out
