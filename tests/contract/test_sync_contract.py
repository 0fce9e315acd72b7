"""The import engine behaves the same on both stores (the ``store`` fixture of conftest.py).

Until the Neo4j store implements the import-engine methods (identifier index, source records,
runs), run ``pytest tests/contract/test_sync_contract.py -k embedded``.
"""

from __future__ import annotations

from datetime import timedelta

from graph.model import ChangeKind, CiId, RunStatus, Status
from graph.sync import plan_import, run_import
from tests.unit.test_sync_helpers import T0, ci, full_state, inv, rel, state

DAY = timedelta(days=1)


def test_import_is_idempotent_and_stamped_with_the_run(store):
    data = inv(
        ci("web", "application", owner="shop"),
        ci("vm", "virtual_machine"),
        rel("web", "vm", "RUNS_ON", port=443),
    )
    first = run_import(store, data, source="s", format="yaml", now=T0)
    assert first.counts()["created"] == 3
    assert {c.run_id for c in store.history(limit=100)} == {first.run_id}
    before = full_state(store)
    second = run_import(store, data, source="s", format="yaml", now=T0 + DAY)
    assert second.counts()["unchanged"] == 3
    assert store.history(run_id=second.run_id) == []
    assert full_state(store) == before
    assert store.get_run(second.run_id).status == RunStatus.SUCCEEDED


def test_two_sources_one_server_and_a_conflict(store):
    run_import(
        store,
        inv(
            ci("esx", attributes={"serial_number": "CZ1", "cpu": 8}),
            ci("d1", attributes={"fqdn": "d.example"}),
            ci("d2", attributes={"fqdn": "d.example"}),
        ),
        source="a",
        format="yaml",
        now=T0,
    )
    report = run_import(
        store,
        inv(
            ci("x-esx", name="ESX", attributes={"serial_number": "cz1", "rack": "r9"}),
            ci("x-d", attributes={"fqdn": "D.example"}),
        ),
        source="b",
        format="yaml",
        now=T0,
    )
    assert report.cis.updated == 1 and report.conflict_count == 1
    assert report.conflicts[0].candidates == ("d1", "d2")
    assert store.count_cis() == 3
    esx = store.get_ci(CiId("esx"))
    assert esx.attributes["rack"] == "r9"
    assert esx.provenance["attributes.rack"].source == "b"


def test_absent_retired_after_grace_and_guarded(store):
    kw = {"source": "s", "format": "yaml"}
    run_import(store, inv(*[ci(f"h{i}") for i in range(10)], rel("h0", "h1")), now=T0, **kw)
    report = run_import(store, inv(ci("h0"), ci("h2")), now=T0 + DAY, **kw)
    assert report.cis.absent == 8 and report.retired == ()
    guarded = run_import(store, inv(ci("h0"), ci("h2")), now=T0 + 9 * DAY, **kw)
    assert guarded.stopped and store.get_ci(CiId("h1")).status == Status.OPERATIONAL
    done = run_import(store, inv(ci("h0"), ci("h2")), now=T0 + 9 * DAY, allow_deletes=9, **kw)
    assert len(done.retired) == 8 and done.relationships.removed == 1
    assert store.get_ci(CiId("h1")).status == Status.RETIRED
    kinds = {c.kind for c in store.history(run_id=done.run_id, limit=100)}
    assert kinds == {ChangeKind.RETIRED, ChangeKind.UNRELATED}


def test_dry_run_and_placeholders(store):
    run_import(store, inv(ci("a")), source="s", format="yaml", now=T0)
    before = full_state(store)
    data = inv(ci("a", owner="o"), rel("a", "nobody"))
    plan = plan_import(store, data, source="s", format="yaml", now=T0)
    dry = run_import(store, data, source="s", format="yaml", now=T0, dry_run=True)
    assert full_state(store) == before
    assert plan.report.counts() == dry.counts()
    real = run_import(store, data, source="s", format="yaml", now=T0)
    assert real.counts() == dry.counts() and real.placeholders == ("nobody",)
    assert store.get_ci(CiId("nobody")).ci_class == "other"
    assert state(store)["relationships"] == {(CiId("a"), "DEPENDS_ON", CiId("nobody")): {}}
