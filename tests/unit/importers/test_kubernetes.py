"""importers.kubernetes on the real manifests in tests/fixtures and on small hand-written ones."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import pytest

from graph.errors import ValidationError
from importers.base import Inventory, SourceFile, expand_paths
from importers.kubernetes import SUFFIXES, HostRef, host_references, k8s_id, parse_kubernetes

OB_SERVICES = [
    "adservice",
    "cartservice",
    "checkoutservice",
    "currencyservice",
    "emailservice",
    "frontend",
    "loadgenerator",
    "paymentservice",
    "productcatalogservice",
    "recommendationservice",
    "redis-cart",
    "shippingservice",
]


def parse(*paths: Path | str) -> Inventory:
    return parse_kubernetes(expand_paths(list(paths), SUFFIXES))


def deployment(name: str, ns: str = "default") -> str:
    return k8s_id("Deployment", name, ns)


def service(name: str, ns: str = "default") -> str:
    return k8s_id("Service", name, ns)


def edges(inventory: Inventory, rel_type: str = "DEPENDS_ON") -> set[tuple[str, str]]:
    return {(r.source_ref, r.target_ref) for r in inventory.relationships if r.type == rel_type}


def cis(inventory: Inventory) -> dict[str, dict[str, object]]:
    return {p.ci.id: p.ci.tracked() for p in inventory.cis}


@pytest.fixture
def boutique(fixtures: Path) -> Inventory:
    return parse(fixtures / "online-boutique/release/kubernetes-manifests.yaml")


# -- Online Boutique ---------------------------------------------------------------------------


def test_boutique_objects_and_identity(boutique: Inventory):
    ids = set(cis(boutique))
    assert {deployment(n) for n in OB_SERVICES} <= ids
    assert {service(n) for n in OB_SERVICES if n != "loadgenerator"} <= ids
    assert service("frontend-external") in ids
    assert "k8s:Namespace/default" in ids
    assert len(ids) == 11 + 1 + 11 + 1 + 1  # deployments, redis, services, external, namespace
    frontend = next(p for p in boutique.cis if p.ci.id == deployment("frontend"))
    assert frontend.ci.name == "frontend"
    assert frontend.ci.ci_class == "workload"
    assert frontend.location.endswith("release/kubernetes-manifests.yaml:21")
    assert frontend.ci.attributes["images"] == [
        "us-central1-docker.pkg.dev/online-boutique-ci/microservices-demo/frontend:v0.10.6"
    ]
    redis = next(p for p in boutique.cis if p.ci.id == service("redis-cart"))
    assert redis.ci.ci_class == "kubernetes_service"
    assert redis.ci.attributes == {
        "kind": "Service",
        "namespace": "default",
        "type": "ClusterIP",
        "selector": ["app=redis-cart"],
        "ports": ["6379/TCP"],
    }
    assert any("ServiceAccount 'frontend' and 10 more skipped" in w for w in boutique.warnings)


def test_boutique_redis_cart_down_affects_exactly_the_known_answer(boutique, affected):
    hit = affected(boutique, [deployment("redis-cart")])
    hit_deployments = {i.split("/")[-1] for i in hit if "/Deployment/" in i}
    assert hit_deployments == {"cartservice", "checkoutservice", "frontend", "loadgenerator"}
    for name in set(OB_SERVICES) - hit_deployments - {"redis-cart"}:
        assert deployment(name) not in hit
        assert service(name) not in hit


def test_boutique_env_dependencies_match_ground_truth(boutique, fixtures):
    with (fixtures / "online-boutique/ground-truth.csv").open() as f:
        expected = {(deployment(r["source"]), service(r["target"])) for r in csv.DictReader(f)}
    from_env = {
        (r.source_ref, r.target_ref)
        for r in boutique.relationships
        if any(str(v).startswith("env ") for v in r.attributes["via"])
    }
    assert from_env == expected


def test_boutique_dangling_reference_is_emitted_with_its_line(boutique):
    [rel] = [
        r for r in boutique.relationships if r.target_ref == service("shoppingassistantservice")
    ]
    assert rel.source_ref == deployment("frontend")
    assert rel.type == "DEPENDS_ON"
    assert rel.location.endswith("kubernetes-manifests.yaml:89")
    assert rel.attributes == {"via": ["env SHOPPING_ASSISTANT_SERVICE_ADDR"]}
    assert service("shoppingassistantservice") not in cis(boutique)


def test_boutique_services_depend_on_their_workloads_and_the_namespace_contains_all(boutique):
    assert (service("frontend"), deployment("frontend")) in edges(boutique)
    assert (service("frontend-external"), deployment("frontend")) in edges(boutique)
    contained = {t for s, t in edges(boutique, "CONTAINS") if s == "k8s:Namespace/default"}
    assert contained == set(cis(boutique)) - {"k8s:Namespace/default"}


def test_boutique_upgrade_is_eleven_image_changes_and_one_new_dependency(fixtures):
    old = parse(fixtures / "online-boutique/v0.9.0-release/kubernetes-manifests.yaml")
    new = parse(fixtures / "online-boutique/release/kubernetes-manifests.yaml")
    before, after = cis(old), cis(new)
    assert set(before) == set(after)
    changed = {ci for ci in after if after[ci] != before[ci]}
    assert changed == {deployment(n) for n in OB_SERVICES if n != "redis-cart"}
    for ci in changed:
        diff = {k for k in after[ci] if after[ci][k] != before[ci][k]}
        assert diff == {"attributes"}
        attrs_before, attrs_after = before[ci]["attributes"], after[ci]["attributes"]
        assert isinstance(attrs_before, dict) and isinstance(attrs_after, dict)
        assert {k for k in attrs_after if attrs_after[k] != attrs_before.get(k)} == {"images"}
    old_rels = {(r.source_ref, r.type, r.target_ref) for r in old.relationships}
    new_rels = {(r.source_ref, r.type, r.target_ref) for r in new.relationships}
    assert new_rels - old_rels == {
        (deployment("frontend"), "DEPENDS_ON", service("shoppingassistantservice"))
    }
    assert old_rels - new_rels == set()


def test_parsing_twice_gives_the_same_inventory(fixtures):
    path = fixtures / "online-boutique/release/kubernetes-manifests.yaml"
    first, second = parse(path), parse(path)
    assert first.cis == second.cis
    assert first.relationships == second.relationships
    assert first.warnings == second.warnings


# -- Bookinfo and Sock Shop --------------------------------------------------------------------


def test_bookinfo_reviews_is_backed_by_three_deployments(fixtures, affected):
    inventory = parse(fixtures / "istio-bookinfo/platform/kube")
    backing = {t for s, t in edges(inventory) if s == service("reviews")}
    assert backing == {deployment(f"reviews-v{i}") for i in (1, 2, 3)}
    # A Service needs its workloads: one version down is enough to mark it affected here
    # (the engine's redundancy groups soften that; the edges are what the manifests say).
    assert service("reviews") in affected(inventory, [deployment("reviews-v2")])


def test_bookinfo_selector_edges_match_ground_truth(fixtures):
    inventory = parse(fixtures / "istio-bookinfo/platform/kube")
    here = {p.name for p in (fixtures / "istio-bookinfo/platform/kube").iterdir()}
    with (fixtures / "istio-bookinfo/ground-truth-backing.csv").open() as f:
        expected = {
            (service(r["source"]), deployment(r["target"]))
            for r in csv.DictReader(f)
            if r["evidence"].split()[0].removeprefix("platform/kube/") in here
        }
    selector = {
        (r.source_ref, r.target_ref)
        for r in inventory.relationships
        if r.attributes.get("via") == ["selector"]
    }
    assert selector == expected
    assert (deployment("ratings-v2-mysql"), service("mysqldb")) in edges(inventory)


def test_bookinfo_secret_data_is_never_read(fixtures, dumped):
    path = fixtures / "istio-bookinfo/platform/kube/bookinfo-mysql.yaml"
    secret_value = "cGFzc3dvcmQ="
    assert secret_value in path.read_text()  # the canary is really in the file
    inventory = parse(fixtures / "istio-bookinfo/platform/kube")
    text = dumped(inventory)
    for canary in (secret_value, base64.b64decode(secret_value).decode(), "rootpasswd"):
        assert canary not in text
    assert not any("/Secret/" in p.ci.id for p in inventory.cis)
    assert any("Secret 'mysql-credentials' skipped" in w for w in inventory.warnings)


def test_sock_shop_shows_only_user_to_user_db_between_its_services(fixtures):
    inventory = parse(fixtures / "sock-shop/complete-demo.yaml")
    ns = "sock-shop"
    calls = {
        (r.source_ref, r.target_ref)
        for r in inventory.relationships
        if r.type == "DEPENDS_ON" and r.attributes.get("via") != ["selector"]
    }
    defined = set(cis(inventory))
    assert {c for c in calls if c[1] in defined} == {
        (deployment("user", ns), service("user-db", ns))
    }
    # The one other reference names a Service outside the file (tracing), by cluster DNS name.
    assert calls - {(deployment("user", ns), service("user-db", ns))} == {
        (deployment("shipping", ns), service("zipkin", "jaeger"))
    }
    assert "k8s:Namespace/sock-shop" in defined


# -- Hand-written manifests --------------------------------------------------------------------


def test_secrets_in_lists_and_env_never_reach_the_inventory(source, dumped):
    manifest = """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata: {name: s1}
  stringData: {password: CANARY-stringdata}
  data: {token: Q0FOQVJZLWRhdGE=}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: app}
  spec:
    template:
      spec:
        containers:
        - name: c
          image: app:1
          env:
          - {name: DB_PASSWORD, value: "canaryhost:5432"}
          - {name: API_TOKEN, value: "http://canarytoken/"}
          - name: FROM_SECRET
            valueFrom: {secretKeyRef: {name: s1, key: password}}
          - {name: PLAIN, value: "CANARY-plain-value"}
"""
    inventory = parse_kubernetes([source("l.yaml", manifest)])
    text = dumped(inventory)
    for canary in ("CANARY", "Q0FOQVJZ", "canaryhost", "canarytoken", "password"):
        assert canary not in text
    assert [p.ci.id for p in inventory.cis] == [deployment("app"), "k8s:Namespace/default"]


def test_kubectl_json_lists_are_read_with_item_lines(source):
    data = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "db", "namespace": "shop", "uid": "u-1"},
                "spec": {"selector": {"app": "db"}, "ports": [{"port": 5432}]},
            },
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "db", "namespace": "shop", "resourceVersion": "99"},
                "spec": {
                    "replicas": 3,
                    "template": {
                        "metadata": {"labels": {"app": "db"}},
                        "spec": {"containers": [{"name": "pg", "image": "postgres:16"}]},
                    },
                },
            },
        ],
    }
    inventory = parse_kubernetes([source("live.json", json.dumps(data, indent=2))])
    located: dict[str, str] = {p.ci.id: p.location for p in inventory.cis}
    assert located[service("db", "shop")] == "live.json:5"
    assert located[k8s_id("StatefulSet", "db", "shop")].startswith("live.json:")
    assert located[k8s_id("StatefulSet", "db", "shop")] != "live.json:5"
    sts = next(p.ci for p in inventory.cis if p.ci.id == k8s_id("StatefulSet", "db", "shop"))
    assert sts.attributes == {
        "kind": "StatefulSet",
        "namespace": "shop",
        "images": ["postgres:16"],
        "replicas": 3,
    }  # no uid, no resourceVersion: a second export of the same cluster changes nothing
    assert (service("db", "shop"), k8s_id("StatefulSet", "db", "shop")) in edges(inventory)


def test_typed_lists_give_their_items_a_kind(source):
    text = "kind: ConfigMapList\napiVersion: v1\nitems:\n- metadata: {name: c}\n  data: {k: v}\n"
    inventory = parse_kubernetes([source("cm.yaml", text)])
    [ci] = [p.ci for p in inventory.cis if p.ci.ci_class == "config"]
    assert ci.id == k8s_id("ConfigMap", "c", "default")
    assert ci.attributes["keys"] == ["k"]


WORKLOADS = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data:
  ORDERS_URL: http://orders.shop.svc.cluster.local/api
  nginx.conf: |
    upstream up { server cache:6379; server external.example.com:80; }
  unused_host: "nosuchservice:80"
  SECRET_KEY: "cache:1"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other, namespace: shop}
data:
  A: db
  B: mail
---
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec: {selector: {app: orders}}
---
apiVersion: v1
kind: Service
metadata: {name: cache, namespace: shop}
spec: {selector: {app: cache}}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {type: ExternalName, externalName: db.example.com}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders, namespace: shop}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: orders, tier: back}}
    spec:
      containers:
      - name: app
        image: orders:2
        env:
        - {name: SELF, value: "http://orders/"}
        - name: DB
          valueFrom: {configMapKeyRef: {name: other, key: A}}
        envFrom:
        - configMapRef: {name: settings}
      volumes:
      - name: conf
        configMap: {name: missing-map}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: shop}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: report}}
        spec:
          initContainers: [{name: wait, image: "busybox:1"}]
          containers: [{name: run, image: "report:1"}]
          volumes:
          - name: p
            projected: {sources: [{configMap: {name: other}}]}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: report-123
  namespace: shop
  ownerReferences: [{kind: CronJob, name: report, controller: true}]
spec: {template: {spec: {containers: [{name: run, image: "report:1"}]}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  ingressClassName: nginx
  defaultBackend: {service: {name: orders, port: {number: 80}}}
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /cache
        backend: {service: {name: cache, port: {number: 6379}}}
---
apiVersion: networking.k8s.io/v1beta1
kind: Ingress
metadata: {name: legacy, namespace: shop}
spec:
  backend: {serviceName: orders, servicePort: 80}
"""


@pytest.fixture
def shop(source) -> Inventory:
    return parse_kubernetes([source("shop.yaml", WORKLOADS)])


def test_workloads_depend_on_the_configmaps_they_read_and_the_services_those_name(shop):
    orders = k8s_id("Deployment", "orders", "shop")
    report = k8s_id("CronJob", "report", "shop")
    depends = edges(shop)
    assert {t for s, t in depends if s == orders} == {
        k8s_id("ConfigMap", "settings", "shop"),
        k8s_id("ConfigMap", "other", "shop"),
        k8s_id("ConfigMap", "missing-map", "shop"),  # dangling: the engine warns
        service("cache", "shop"),  # nginx.conf in settings
        service("db", "shop"),  # key A of other, read through configMapKeyRef
    }  # not orders itself (SELF, and ORDERS_URL name its own Service), not B's "mail"
    assert {t for s, t in depends if s == report} == {
        k8s_id("ConfigMap", "other", "shop"),
        service("db", "shop"),
    }
    cache_rel = next(
        r
        for r in shop.relationships
        if (r.source_ref, r.target_ref) == (orders, service("cache", "shop"))
    )
    assert cache_rel.attributes == {"via": ["configmap settings key nginx.conf"]}


def test_services_ingresses_and_namespaces(shop):
    depends = edges(shop)
    assert (service("orders", "shop"), k8s_id("Deployment", "orders", "shop")) in depends
    assert {t for s, t in depends if s == k8s_id("Ingress", "web", "shop")} == {
        service("orders", "shop"),
        service("cache", "shop"),
    }
    assert {t for s, t in depends if s == k8s_id("Ingress", "legacy", "shop")} == {
        service("orders", "shop")
    }
    assert not {s for s, _ in depends if s == service("db", "shop")}  # ExternalName
    contains = edges(shop, "CONTAINS")
    assert all(s == "k8s:Namespace/shop" for s, _ in contains)
    assert len(contains) == len(shop.cis) - 1


def test_attributes_per_kind(shop):
    by_id = {p.ci.id: p.ci for p in shop.cis}
    assert by_id[k8s_id("CronJob", "report", "shop")].attributes == {
        "kind": "CronJob",
        "namespace": "shop",
        "images": ["busybox:1", "report:1"],
        "schedule": "0 3 * * *",
    }
    assert by_id[k8s_id("Ingress", "web", "shop")].attributes == {
        "kind": "Ingress",
        "namespace": "shop",
        "hosts": ["shop.example.com"],
        "ingress_class": "nginx",
    }
    assert by_id[k8s_id("Ingress", "web", "shop")].ci_class == "load_balancer"
    assert by_id[service("db", "shop")].attributes["external_name"] == "db.example.com"
    assert by_id[k8s_id("ConfigMap", "settings", "shop")].attributes["keys"] == [
        "ORDERS_URL",
        "SECRET_KEY",
        "nginx.conf",
        "unused_host",
    ]
    assert by_id["k8s:Namespace/shop"].attributes == {"kind": "Namespace", "declared": True}
    # A Job run by a CronJob is not a CI of its own.
    assert k8s_id("Job", "report-123", "shop") not in by_id
    assert any("controlled by another object" in w for w in shop.warnings)
    # No ConfigMap value is stored anywhere.
    assert "upstream" not in repr(shop)


# -- Bad input -------------------------------------------------------------------------------


def test_a_deployment_without_a_name_names_file_line_item_and_field(source):
    text = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  labels: {a: b}\nspec: {}\n"
    )
    with pytest.raises(ValidationError) as exc:
        parse_kubernetes([source("bad.yaml", text)])
    assert exc.value.location == "bad.yaml:8"
    assert exc.value.field == "metadata.name"
    assert exc.value.item == "Deployment (document 2)"


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("apiVersion: v1\nmetadata: {name: x}\n", "kind", "has a kind"),
        ("- just\n- a list\n", None, "is a mapping"),
        ("apiVersion: v1\nkind: List\nitems: {}\n", "items", "list of items"),
        ("kind: Service\nmetadata: {name: x, namespace: 3}\n", "metadata.namespace", "namespace"),
    ],
)
def test_bad_objects_fail_loudly(source, text, field, message):
    with pytest.raises(ValidationError, match=message) as exc:
        parse_kubernetes([source("bad.yaml", text)])
    assert exc.value.field == field
    assert exc.value.location is not None and exc.value.location.startswith("bad.yaml:")


def test_an_object_defined_twice_fails(source):
    text = "kind: Service\nmetadata: {name: x}\n"
    with pytest.raises(ValidationError, match=r"defined twice \(first at a.yaml:1\)") as exc:
        parse_kubernetes([source("a.yaml", text), source("b.yaml", text)])
    assert exc.value.location == "b.yaml:1"


def test_unknown_kinds_and_non_kubernetes_documents_are_warnings(source):
    text = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: b}\n---\n"
        "replicaCount: 3\n"
    )
    inventory = parse_kubernetes([source("mixed.yaml", text)])
    assert inventory.cis == []
    assert inventory.warnings == [
        "mixed.yaml:9: document 3 skipped: not a Kubernetes object",
        "mixed.yaml:1: VirtualService 'a' and 1 more skipped: kind VirtualService is not imported",
    ]


def test_two_releases_in_one_run_are_refused(fixtures):
    # The directory holds v0.9.0 and v0.10.6 of the same objects: one run cannot say which.
    with pytest.raises(ValidationError, match="defined twice"):
        parse(fixtures / "online-boutique")


# -- host_references ----------------------------------------------------------------------------


KNOWN = {("default", "redis-cart"), ("default", "orders"), ("shop", "cart")}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis-cart:6379", [("default", "redis-cart")]),
        ("http://orders/", [("default", "orders")]),
        ("https://user:pw@orders:8443/x?y=1", [("default", "orders")]),
        ("orders", [("default", "orders")]),
        ("newsvc:80", [("default", "newsvc")]),
        ("grpc://newsvc", [("default", "newsvc")]),
        ("newsvc", []),
        ("zipkin.jaeger.svc.cluster.local", [("jaeger", "zipkin")]),
        ("zipkin.jaeger.svc:9411", [("jaeger", "zipkin")]),
        ("cart.shop:80", [("shop", "cart")]),
        ("api.example.com:443", []),
        ("localhost:8080", []),
        ("127.0.0.1:6379", []),
        ("8080", []),
        ("true", []),
        ("-Xmx128m -Djava.security.egd=file:/dev/urandom", []),
        (
            "redis-cart:6379,orders:80 redis-cart:6379",
            [("default", "redis-cart"), ("default", "orders")],
        ),
        ("REDIS-CART:6379", [("default", "redis-cart")]),
        ("a.b.c.svc.cluster.local", []),
        ("orders/path", []),
    ],
)
def test_host_references(text, expected):
    found = host_references(
        text,
        "default",
        is_service=lambda ns, name: (ns, name) in KNOWN,
        known_namespaces={"default", "shop"},
    )
    assert found == [HostRef(ns, name) for ns, name in expected]


def test_host_references_without_dangling():
    found = host_references(
        "newsvc:80 orders:80 x.y.svc.cluster.local",
        "default",
        is_service=lambda ns, name: (ns, name) in KNOWN,
        allow_dangling=False,
    )
    assert found == [HostRef("default", "orders"), HostRef("y", "x")]


def test_stdin_files_work(source):
    inventory = parse_kubernetes(
        [SourceFile(name="<stdin>", data=b"kind: Namespace\nmetadata: {name: x}\n")]
    )
    assert [p.location for p in inventory.cis] == ["<stdin>:1"]
