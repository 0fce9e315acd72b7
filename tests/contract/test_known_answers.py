"""The known answers of real inventories, end to end on both stores: parse with the format's
importer, load through the import engine, ask impact analysis. Also: every format's real file
imported twice changes nothing the second time."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph.model import CiId
from graph.store import Store
from graph.sync import run_import
from impact.analysis import ImpactOptions, analyse_impact, resolve_failures
from importers import FORMATS
from importers.base import SourceFile, expand_paths
from importers.generic import load_mapping

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def load(store: Store, fmt: str, *paths: Path, source: str | None = None, **kw):
    parser, suffixes = FORMATS[fmt]
    files = expand_paths([str(p) for p in paths], suffixes)
    mapping = kw.pop("mapping", None)
    inventory = parser(files) if mapping is None else parser(files, mapping)  # type: ignore[call-arg]
    return run_import(store, inventory, source=source or fmt, format=fmt, **kw)


def affected_names(store: Store, *refs: str, cls: str | None = None) -> set[str]:
    report = analyse_impact(store, resolve_failures(store, refs), ImpactOptions(first=10_000))
    data = report.as_json()
    return {a["name"] for a in data["affected"] if cls is None or a["class"] == cls}


def test_online_boutique_redis_cart(store):
    load(store, "kubernetes", FIXTURES / "online-boutique/release/kubernetes-manifests.yaml")
    hit = affected_names(store, "k8s:default/Deployment/redis-cart", cls="workload")
    assert hit == {"cartservice", "checkoutservice", "frontend", "loadgenerator"}


def test_online_boutique_upgrade_is_eleven_image_changes_and_one_dependency(store):
    first = load(
        store, "kubernetes", FIXTURES / "online-boutique/v0.9.0-release/kubernetes-manifests.yaml"
    )
    assert first.cis.created > 0 and first.error_count == 0
    second = load(
        store, "kubernetes", FIXTURES / "online-boutique/release/kubernetes-manifests.yaml"
    )
    changed = {u.item: {c.field for c in u.changes} for u in second.updated}
    assert len(changed) == 11
    assert all(item.startswith("k8s:default/Deployment/") for item in changed)
    assert "k8s:default/Deployment/redis-cart" not in changed
    assert all(fields and all("image" in f for f in fields) for fields in changed.values())
    assert second.created_relationships == (
        "k8s:default/Deployment/frontend -[DEPENDS_ON]-> "
        "k8s:default/Service/shoppingassistantservice",
    )
    # the history says the same, with the run id
    history = store.history(run_id=second.run_id, limit=10_000)
    assert {c.ci for c in history if c.kind == "updated"} == set(changed)


def test_sock_shop_with_dependencies_from_code(store, tmp_path):
    load(store, "compose", FIXTURES / "sock-shop/docker-compose.yml", source="sock-shop")
    mapping_file = tmp_path / "map.yaml"
    mapping_file.write_text("defaults:\n  type: DEPENDS_ON\n", encoding="utf-8")
    report = load(
        store,
        "csv",
        FIXTURES / "sock-shop/ground-truth.csv",
        source="sock-shop-code",
        mapping=load_mapping(SourceFile(name=str(mapping_file), path=mapping_file)),
    )
    assert report.error_count == 0
    hit = affected_names(store, "compose:sock-shop/user-db")
    assert {"user", "orders", "front-end"} <= hit
    assert hit.isdisjoint({"catalogue", "carts", "payment", "shipping", "queue-master", "rabbitmq"})


def test_backstage_artists_db(store):
    load(store, "backstage", FIXTURES / "backstage-catalog-examples")
    report = analyse_impact(
        store,
        resolve_failures(store, ["backstage:resource:default/artists-db"]),
        ImpactOptions(first=1000),
    ).as_json()
    names = {(a["class"], a["name"]) for a in report["affected"]}
    assert {"artist-lookup", "www-artist"} <= {n for c, n in names if c == "application"}
    assert "artist-engagement-portal" in {n for _, n in names}
    assert "team-a" in {t["name"] for t in report["teams"]}


REAL_FILES = [
    ("kubernetes", "online-boutique/release/kubernetes-manifests.yaml"),
    ("kubernetes", "istio-bookinfo"),
    ("kubernetes", "sock-shop/complete-demo.yaml"),
    ("compose", "sock-shop/docker-compose.yml"),
    ("backstage", "backstage-catalog-examples"),
    ("terraform", "terraform-state"),
    ("servicenow", "servicenow/table-api"),
    ("servicenow", "servicenow/csv-export"),
    ("netbox", "netbox/rest-api"),
    ("netbox", "netbox/demo-v3.6-dumpdata-excerpt.json"),
    ("yaml", "generic/inventory.yaml"),
]


@pytest.mark.parametrize(("fmt", "path"), REAL_FILES, ids=[p for _, p in REAL_FILES])
def test_importing_a_real_file_twice_changes_nothing(store, fmt, path):
    target = FIXTURES / path
    if fmt == "terraform":  # one state per run: a directory holds unrelated fixtures
        target = sorted(target.rglob("*.tfstate"))[0]
    first = load(store, fmt, target)
    assert first.error_count == 0
    assert first.cis.created > 0
    history = len(store.history(limit=100_000))
    dry = load(store, fmt, target, dry_run=True)
    second = load(store, fmt, target)
    for report in (dry, second):
        assert report.cis.created == report.cis.updated == 0
        assert report.relationships.created == report.relationships.updated == 0
        # placeholders (CIs only referred to) are created once and are not the source's items
        assert report.cis.unchanged == first.cis.created - first.placeholder_count
    assert len(store.history(limit=100_000)) == history


def test_dry_run_shows_the_diff_and_writes_nothing(store):
    report = load(
        store,
        "kubernetes",
        FIXTURES / "online-boutique/release/kubernetes-manifests.yaml",
        dry_run=True,
    )
    assert report.dry_run and report.cis.created > 20
    assert store.count_cis() == 0
    assert store.history() == []
    assert CiId("k8s:default/Deployment/frontend") in report.created
