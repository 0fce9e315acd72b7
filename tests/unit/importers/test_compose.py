"""importers.compose on Sock Shop's docker-compose.yml and on small hand-written files."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph.errors import ValidationError
from importers.base import Inventory, SourceFile, expand_paths
from importers.compose import SUFFIXES, compose_id, parse_compose

SOCK_SHOP = [
    "front-end",
    "edge-router",
    "catalogue",
    "catalogue-db",
    "carts",
    "carts-db",
    "orders",
    "orders-db",
    "shipping",
    "queue-master",
    "rabbitmq",
    "payment",
    "user",
    "user-db",
    "user-sim",
]


def edges(inventory: Inventory) -> set[tuple[str, str]]:
    assert all(r.type == "DEPENDS_ON" for r in inventory.relationships)
    return {(r.source_ref, r.target_ref) for r in inventory.relationships}


@pytest.fixture
def sock_shop(fixtures: Path) -> Inventory:
    return parse_compose(expand_paths([fixtures / "sock-shop"], SUFFIXES))


def test_sock_shop_services_and_identity(sock_shop):
    assert [p.ci.id for p in sock_shop.cis] == [compose_id("sock-shop", s) for s in SOCK_SHOP]
    user = next(p for p in sock_shop.cis if p.ci.name == "user")
    assert user.ci.ci_class == "workload"
    assert user.ci.attributes == {
        "kind": "compose_service",
        "project": "sock-shop",
        "image": "weaveworksdemos/user:0.4.4",
    }
    assert user.location.endswith("sock-shop/docker-compose.yml:145")
    assert sock_shop.warnings == []


def test_sock_shop_shows_only_user_to_user_db(sock_shop):
    assert edges(sock_shop) == {
        (compose_id("sock-shop", "user"), compose_id("sock-shop", "user-db"))
    }
    [rel] = sock_shop.relationships
    assert rel.attributes == {"via": ["env MONGO_HOST"]}
    assert rel.location.endswith("docker-compose.yml:155")


def test_sock_shop_env_values_are_not_stored(sock_shop, dumped):
    text = dumped(sock_shop)
    for value in ("MYSQL_ROOT_PASSWORD", "socksdb", "Xms64m", "27017"):
        assert value not in text


def test_parsing_twice_gives_the_same_inventory(fixtures):
    path = fixtures / "sock-shop/docker-compose.yml"
    first = parse_compose([SourceFile(name=str(path), path=path)])
    second = parse_compose([SourceFile(name=str(path), path=path)])
    assert first.cis == second.cis
    assert first.relationships == second.relationships


APP = """
name: Shop_App!
x-defaults: &defaults
  restart: always
  environment:
    FROM_ANCHOR: http://cache/
services:
  web:
    <<: *defaults
    image: web:1.10
    depends_on: [api, db]
    links: ["cache:redis", ghost]
    environment:
      - API_URL=http://api:8080/v1
      - DB_PASSWORD=cache:1234
      - FEATURE_FLAG
      - GREETING=hello web
  api:
    build: ./api
    deploy: {replicas: 3}
    profiles: [prod, dev]
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started, required: false}
    environment:
      DB_HOST: db
      TIMEOUT: 30
      EMPTY:
  worker:
    image: worker
    network_mode: "service:api"
    volumes_from: ["db:ro", "container:legacy"]
    <<: *defaults
  db: {image: "postgres:16"}
  cache:
"""


@pytest.fixture
def app(source) -> Inventory:
    return parse_compose([source("compose.yaml", APP)])


def test_every_dependency_form(app):
    def cid(name: str) -> str:
        return compose_id("shop_app", name)

    assert edges(app) == {
        (cid("web"), cid("api")),
        (cid("web"), cid("db")),
        (cid("web"), cid("cache")),
        (cid("web"), cid("ghost")),  # dangling: links names a service the file lacks
        (cid("api"), cid("db")),
        (cid("api"), cid("cache")),
        (cid("worker"), cid("api")),
        (cid("worker"), cid("db")),
        (cid("worker"), cid("cache")),  # the merged-in environment
    }
    via = {(r.source_ref, r.target_ref): r.attributes["via"] for r in app.relationships}
    assert via[(cid("web"), cid("api"))] == ["depends_on", "env API_URL"]
    assert via[(cid("web"), cid("cache"))] == ["links"]  # not DB_PASSWORD: never scanned
    assert via[(cid("api"), cid("db"))] == ["depends_on", "env DB_HOST"]
    assert via[(cid("worker"), cid("api"))] == ["network_mode"]
    assert via[(cid("worker"), cid("db"))] == ["volumes_from"]


def test_service_attributes(app):
    by_name = {p.ci.name: p.ci for p in app.cis}
    assert by_name["web"].attributes["image"] == "web:1.10"
    assert by_name["api"].attributes == {
        "kind": "compose_service",
        "project": "shop_app",
        "build": "./api",
        "replicas": 3,
        "profiles": ["dev", "prod"],
    }
    assert by_name["cache"].attributes == {"kind": "compose_service", "project": "shop_app"}
    assert "hello" not in repr(app)


def test_project_is_the_directory_name_unless_named(tmp_path):
    path = tmp_path / "My Project" / "docker-compose.yml"
    path.parent.mkdir()
    path.write_text("services:\n  a: {image: x}\n")
    [parsed] = parse_compose(expand_paths([tmp_path], SUFFIXES)).cis
    assert parsed.ci.id == "compose:myproject/a"


@pytest.mark.parametrize(
    ("text", "field", "message", "line"),
    [
        ("version: '1'\nweb: {image: x}\n", "services", "no services mapping", 0),
        ("services:\n  a: [x]\n", "services.a", "service is a mapping", 2),
        ("services:\n  a:\n    depends_on: b\n", "depends_on", "list of service names", 3),
        ("services:\n  a:\n    environment: 3\n", "environment", "mapping or a list", 3),
        ("services:\n  a:\n    environment: [{A: 1}]\n", "environment", "KEY=VALUE", 3),
        ("services:\n  a:\n    image: " + "x" * 5000 + "\n", "attributes", "4096", 2),
    ],
)
def test_bad_files_fail_loudly(source, text, field, message, line):
    with pytest.raises(ValidationError, match=message) as exc:
        parse_compose([source("bad.yaml", "name: p\n" + text)])
    assert exc.value.field == field
    assert exc.value.location == f"bad.yaml:{line + 1}"


@pytest.mark.parametrize(
    ("text", "message"), [("[1, 2]\n", "is a mapping"), ("a: 1\n---\nb: 2\n", "one YAML document")]
)
def test_a_compose_file_is_one_mapping(source, text, message):
    with pytest.raises(ValidationError, match=message) as exc:
        parse_compose([source("bad.yaml", text)])
    assert exc.value.location == "bad.yaml:1"


def test_stdin_needs_a_project_name():
    with pytest.raises(ValidationError, match="needs a top-level name") as exc:
        parse_compose([SourceFile(name="<stdin>", data=b"services:\n  a: {image: x}\n")])
    assert exc.value.field == "name"


def test_the_same_service_in_two_files_asks_for_docker_compose_config(source):
    text = "name: p\nservices:\n  a: {image: x}\n"
    with pytest.raises(ValidationError, match="docker compose config") as exc:
        parse_compose([source("compose.yaml", text), source("compose.override.yaml", text)])
    assert exc.value.location == "compose.override.yaml:3"
