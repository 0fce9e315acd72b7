"""The orchestration on the real embedded store: known answers on real topologies, people,
teams, maintenance, change correlation, priority, incidents, common causes, pagination."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from graph.errors import NotFoundError, ValidationError
from graph.model import (
    ChangeKind,
    CiId,
    ConfigurationItem,
    ExternalChange,
    Incident,
    MaintenanceWindow,
    Relationship,
    Status,
    WriteContext,
)
from graph.sqlite_store import SqliteStore
from impact.analysis import (
    ImpactOptions,
    affected_page,
    analyse_impact,
    common_causes,
    incident_causes,
    open_incident,
    refresh_incident,
    resolve_failures,
    users_page,
)
from impact.propagation import ImpactState

from .conftest import group

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DOWN = ImpactState.DOWN


def ci(ci_id: str, cls: str = "application", **fields) -> ConfigurationItem:
    return ConfigurationItem.model_validate({"id": ci_id, "class": cls, "name": ci_id, **fields})


def rel(source: str, type_: str, target: str) -> Relationship:
    return Relationship(source=CiId(source), type=type_, target=CiId(target))


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteStore(tmp_path / "store")
    yield s
    s.close()


def load_ground_truth(store: SqliteStore, folder: str) -> set[str]:
    with (FIXTURES / folder / "ground-truth.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    names = {r["source"] for r in rows} | {r["target"] for r in rows}
    ctx = WriteContext(at=T0 - timedelta(days=30))
    store.upsert_cis([ci(n) for n in sorted(names)], ctx)
    store.upsert_relationships([rel(r["source"], "DEPENDS_ON", r["target"]) for r in rows], ctx)
    return names


def affected_ids(store, *refs: str) -> set[str]:
    report = analyse_impact(store, resolve_failures(store, refs), ImpactOptions(first=1000))
    return {a.id for a in report.affected.items}


def test_online_boutique_redis_cart(store) -> None:
    load_ground_truth(store, "online-boutique")
    assert affected_ids(store, "redis-cart") == {
        "cartservice",
        "checkoutservice",
        "frontend",
        "loadgenerator",
    }


def test_sock_shop_user_db(store) -> None:
    load_ground_truth(store, "sock-shop")
    got = affected_ids(store, "user-db")
    assert {"user", "orders", "front-end"} <= got
    spared = {"catalogue", "carts", "payment", "shipping", "queue-master", "rabbitmq"}
    assert not got & spared


@pytest.fixture
def shop(store):
    """A shop on two VMs (redundant), its database, users directly and through a group."""
    ctx = WriteContext(at=T0 - timedelta(days=10))
    store.upsert_cis(
        [
            ci("host-1", "server", owner="team-infra"),
            ci("vm-1", "virtual_machine", support_group="team-infra"),
            ci("vm-2", "virtual_machine", support_group="team-infra"),
            ci("db", "database", support_group="team-dba"),
            ci("web", redundancy=[group("vms", "vm-1", "vm-2", down=1, degraded=2)]),
            ci("shop", "business_service", criticality=1),
            ci("reports", "business_service", criticality=3),
            ci("team-shop", "group"),
            ci("store-staff", "group"),
            ci("ann", "user"),
            ci("bob", "user"),
            ci("cy", "user"),
        ],
        ctx,
    )
    store.upsert_relationships(
        [
            rel("vm-1", "HOSTED_ON", "host-1"),
            rel("db", "RUNS_ON", "vm-1"),
            rel("web", "RUNS_ON", "vm-1"),
            rel("web", "RUNS_ON", "vm-2"),
            rel("web", "DEPENDS_ON", "db"),
            rel("shop", "DEPENDS_ON", "web"),
            rel("reports", "DEPENDS_ON", "db"),
            rel("team-shop", "OWNS", "shop"),
            rel("store-staff", "USES", "shop"),
            rel("ann", "MEMBER_OF", "store-staff"),
            rel("bob", "MEMBER_OF", "store-staff"),
            rel("bob", "USES", "shop"),
            rel("cy", "USES", "reports"),
        ],
        ctx,
    )
    return store


def test_report_on_a_failed_host(shop) -> None:
    report = analyse_impact(shop, {CiId("host-1"): DOWN}, ImpactOptions(at=T0))
    states = {a.id: (a.state.value, a.distance) for a in report.affected.items}
    assert states == {
        "vm-1": ("down", 1),
        "db": ("down", 2),
        "web": ("down", 3),  # through db, not the redundant VMs
        "shop": ("down", 4),
        "reports": ("down", 3),
    }
    assert [s.id for s in report.services.items] == ["shop", "reports"]  # by criticality
    assert report.users.total == 3
    assert {u.id for u in report.users.items} == {"ann", "bob", "cy"}
    assert {u.id: u.via for u in report.users.items}["ann"] == "store-staff"
    assert report.user_groups == ("store-staff",)
    assert {t.name for t in report.teams} >= {"team-infra", "team-dba", "team-shop"}
    assert report.priority.label == "P1"
    web = next(a for a in report.affected.items if a.id == "web")
    assert [s.id for s in web.path] == ["web", "db", "vm-1", "host-1"]
    assert web.reason == "down: depends on db (down)"
    data = report.as_json()
    assert {"affected", "services", "users", "teams", "changes", "priority"} <= set(data)
    assert set(data["affected"][0]) >= {
        "id",
        "name",
        "class",
        "state",
        "distance",
        "path",
        "reason",
    }
    assert data["users"]["count"] == 3


def test_redundancy_rule_and_what_if(shop) -> None:
    report = analyse_impact(shop, {CiId("vm-2"): DOWN}, ImpactOptions(what_if=True))
    web = next(a for a in report.affected.items if a.id == "web")
    assert web.state is ImpactState.DEGRADED
    assert web.rule == "group 'vms': 1 of 2 members fully up, needs 2: degraded"
    assert report.changes == ()
    assert all(a.planned for a in report.affected.items)


def test_current_status_counts_in_quorums(shop) -> None:
    vm1 = shop.get_ci(CiId("vm-1"))
    shop.upsert_cis([vm1.model_copy(update={"status": Status.DOWN})], WriteContext())
    report = analyse_impact(shop, {CiId("vm-2"): DOWN})
    assert {a.id: a.state for a in report.affected.items}["web"] is ImpactState.DOWN
    alone = analyse_impact(shop, {CiId("vm-2"): DOWN}, ImpactOptions(use_current_status=False))
    assert {a.id: a.state for a in alone.affected.items}["web"] is ImpactState.DEGRADED


def test_maintenance_window_marks_planned(shop) -> None:
    shop.put_maintenance_window(
        MaintenanceWindow(
            id="mw1", ci=CiId("host-1"), start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=1)
        )
    )
    report = analyse_impact(shop, {CiId("host-1"): DOWN}, ImpactOptions(at=T0))
    assert all(a.planned for a in report.affected.items)
    assert report.priority.urgency == 3


def test_changes_ranked_with_reasons(shop) -> None:
    shop.record_external_changes(
        [
            ExternalChange(
                id="dep-1",
                ci=CiId("vm-1"),
                kind=ChangeKind.DEPLOYMENT,
                at=T0 - timedelta(minutes=20),
                summary="kernel 6.8",
            ),
            ExternalChange(
                id="chg-2",
                ci=CiId("host-1"),
                kind=ChangeKind.CHANGE_REQUEST,
                at=T0 - timedelta(hours=30),
                summary="firmware",
                planned_start=T0 - timedelta(hours=31),
                planned_end=T0 - timedelta(hours=29),
            ),
            ExternalChange(
                id="old",
                ci=CiId("vm-1"),
                kind=ChangeKind.DEPLOYMENT,
                at=T0 - timedelta(days=5),
                summary="too old",
            ),
            ExternalChange(
                id="elsewhere",
                ci=CiId("shop"),
                kind=ChangeKind.DEPLOYMENT,
                at=T0 - timedelta(minutes=5),
                summary="downstream, not a cause",
            ),
        ],
        WriteContext(),
    )
    report = analyse_impact(shop, {CiId("web"): DOWN}, ImpactOptions(at=T0))
    ids = [c.id for c in report.changes]
    assert ids[:2] == ["dep-1", "chg-2"]
    assert "old" not in ids and "elsewhere" not in ids
    first = report.changes[0]
    assert first.reason.startswith("deployment on vm-1 (1 hop upstream")
    assert "unplanned" in first.reason and "planned" in report.changes[1].reason


def test_pages(shop) -> None:
    report = analyse_impact(shop, {CiId("host-1"): DOWN}, ImpactOptions(first=2))
    assert len(report.affected.items) == 2 and report.affected.next_cursor
    rest = affected_page(shop, report, first=10, after=report.affected.next_cursor)
    seen = [a.id for a in report.affected.items] + [a.id for a in rest.items]
    assert len(seen) == len(set(seen)) == report.counts.affected
    assert rest.next_cursor is None
    users = users_page(shop, report, first=1, after=report.users.next_cursor)
    assert users.total == 3 and len(users.items) == 1
    with pytest.raises(ValidationError):
        affected_page(shop, report, after="stale:3")


def test_incident_keeps_its_answer_until_refreshed(shop) -> None:
    incident = Incident(id="INC-1", title="shop slow", opened_at=T0, affected=(CiId("vm-2"),))
    stored = open_incident(shop, incident)
    assert shop.get_incident("INC-1").impact["counts"]["degraded"] >= 1
    shop.upsert_relationships([rel("reports", "DEPENDS_ON", "web")], WriteContext())
    assert shop.get_incident("INC-1").impact == stored.impact
    refreshed = refresh_incident(shop, "INC-1")
    assert refreshed.impact != stored.impact
    with pytest.raises(NotFoundError):
        refresh_incident(shop, "nope")


def test_common_cause_and_major_incident(shop) -> None:
    causes = common_causes(shop, {"web": [CiId("web")], "reports": [CiId("reports")]})
    assert causes.causes[0].id == "db"
    assert causes.causes[0].explains == ("web", "reports")
    for n, affected in enumerate(("shop", "reports", "cy")):
        shop.put_incident(
            Incident(id=f"INC-{n}", title=affected, opened_at=T0, affected=(CiId(affected),))
        )
    report = incident_causes(shop)
    assert report.major_incident is not None
    # db is upstream of all three (shop through web); reports only of two
    assert report.major_incident.id == "db"
    assert set(report.major_incident.explains) == {"INC-0", "INC-1", "INC-2"}
    assert [c.id for c in report.causes][:2] == ["db", "vm-1"]


def test_bad_input(shop) -> None:
    with pytest.raises(NotFoundError):
        resolve_failures(shop, ["no-such-ci"])
    with pytest.raises(ValidationError):
        resolve_failures(shop, [])
    with pytest.raises(ValidationError):
        analyse_impact(shop, {CiId("web"): DOWN}, ImpactOptions(first=0))


def test_teams_to_notify_are_complete_beyond_the_cis_read(store, monkeypatch) -> None:
    """Every team named by a failed or affected CI is counted, not only those of the CIs the
    report reads (here 2 of them): the topology carries each CI's teams."""
    ctx = WriteContext(actor="t", at=T0)
    apps = [
        ci(
            f"app-{i}",
            owner="team-ops" if i == 7 else ("team-a", "team-b")[i % 2],
            support_group="team-ops",
        )
        for i in range(8)
    ]
    store.upsert_cis(
        [
            ci("h", "server", owner="team-infra", support_group="team-ops"),
            *apps,
            ci("grp-a", "group", name="team-a"),  # a team CI of the same name as a field
        ],
        ctx,
    )
    store.upsert_relationships(
        [*(rel(a.id, "RUNS_ON", "h") for a in apps), rel("grp-a", "OWNS", "app-0")], ctx
    )
    monkeypatch.setattr("impact.analysis._READ_CAP", 2)
    report = analyse_impact(store, {CiId("h"): DOWN}, ImpactOptions(at=T0))
    assert report.counts.affected == 8 and report.teams_complete
    got = {t.name: (t.id, t.roles, t.cis, t.examples) for t in report.teams}
    assert got == {
        # h and every app support it, and app-7 is also its own: nine CIs, counted once each
        "team-ops": (None, ("owner", "support"), 9, ("h", "app-0", "app-1", "app-2", "app-3")),
        # the team CI's OWNS and the owner fields name one team: app-0 counts once
        "team-a": ("grp-a", ("owner",), 4, ("app-0", "app-2", "app-4", "app-6")),
        "team-b": (None, ("owner",), 3, ("app-1", "app-3", "app-5")),
        "team-infra": (None, ("owner",), 1, ("h",)),
    }
    assert [t.name for t in report.teams][:2] == ["team-ops", "team-a"]  # most CIs first
    # at most _TEAMS_CAP teams are listed, those answering for most CIs; the answer says so
    monkeypatch.setattr("impact.analysis._TEAMS_CAP", 2)
    capped = analyse_impact(store, {CiId("h"): DOWN}, ImpactOptions(at=T0))
    assert [t.name for t in capped.teams] == ["team-ops", "team-a"]
    assert not capped.teams_complete
