"""The Neo4j store's own tests (this folder): one server, one driver, and a store on a wiped
database per test. Only here: elsewhere ``store`` is the two-store fixture of
``tests/conftest.py``."""

from __future__ import annotations

import os
from collections.abc import Iterator

import neo4j
import pytest

from graph.neo4j_store import Neo4jStore
from tests.conftest import Neo4jServer

PASSWORD_DEFAULT = "cmdb-dev-password"
USER = os.environ.get("NEO4J_USER", "neo4j")
PASSWORD = os.environ.get("NEO4J_PASSWORD", PASSWORD_DEFAULT)


@pytest.fixture(scope="module")
def uri(neo4j_server: Neo4jServer) -> str:
    """The shared server of ``tests/conftest.py`` (found, started, or failed there)."""
    return neo4j_server.uri


@pytest.fixture(scope="module")
def driver(uri: str) -> Iterator[neo4j.Driver]:
    with neo4j.GraphDatabase.driver(uri, auth=(USER, PASSWORD)) as d:
        yield d


def wipe(driver: neo4j.Driver) -> None:
    with driver.session() as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS").consume()


@pytest.fixture
def store(uri: str, driver: neo4j.Driver) -> Iterator[Neo4jStore]:
    wipe(driver)
    s = Neo4jStore(uri, user=USER, password=PASSWORD)
    yield s
    s.close()
