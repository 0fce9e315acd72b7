"""Shared fixtures: the real Neo4j server, and stores of both kinds.

The Neo4j server is found in this order: ``NEO4J_URI`` (with ``NEO4J_USER`` /
``NEO4J_PASSWORD``); testcontainers' Neo4j module when a Docker engine answers; the server that
``scripts/neo4j.sh`` runs from Maven Central jars when java and mvn exist. Otherwise Neo4j
tests skip with one line saying why, except under ``CMDB_REQUIRE_NEO4J=1``, where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from graph.sqlite_store import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_NEO4J = os.environ.get("CMDB_REQUIRE_NEO4J") == "1"


@dataclass(frozen=True)
class Neo4jServer:
    uri: str
    user: str
    password: str
    how: str


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return (
            subprocess.run(
                ["docker", "info"], capture_output=True, timeout=10, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def _find_neo4j() -> tuple[Neo4jServer | None, str, object]:
    """The server, or None and the reason there is none. The third value keeps a container
    alive for the session."""
    if os.environ.get("NEO4J_URI"):
        return (
            Neo4jServer(
                os.environ["NEO4J_URI"],
                os.environ.get("NEO4J_USER", "neo4j"),
                os.environ.get("NEO4J_PASSWORD", "cmdb-dev-password"),
                "NEO4J_URI",
            ),
            "",
            None,
        )
    if _docker_answers():
        from testcontainers.neo4j import Neo4jContainer

        container = Neo4jContainer("neo4j:5.26-community", password="cmdb-dev-password")
        container.start()
        return (
            Neo4jServer(
                container.get_connection_url(), "neo4j", "cmdb-dev-password", "testcontainers"
            ),
            "",
            container,
        )
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        return None, f"no NEO4J_URI, no Docker engine, and {' and '.join(missing)} not found", None
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "neo4j.sh"), "start"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        return None, f"scripts/neo4j.sh start failed: {proc.stderr.strip()[-2000:]}", None
    uri = proc.stdout.strip().splitlines()[-1]
    password = os.environ.get("NEO4J_PASSWORD", "cmdb-dev-password")
    return Neo4jServer(uri, "neo4j", password, "scripts/neo4j.sh"), "", None


@pytest.fixture(scope="session")
def neo4j_server() -> Iterator[Neo4jServer]:
    server, reason, keep = _find_neo4j()
    if server is None:
        if REQUIRE_NEO4J:
            pytest.fail(f"CMDB_REQUIRE_NEO4J=1 but no Neo4j server: {reason}")
        pytest.skip(f"Neo4j tests skipped: {reason}")
    yield server
    if keep is not None:
        keep.stop()  # type: ignore[attr-defined]


def wipe_neo4j(server: Neo4jServer) -> None:
    """Community edition has one user database: tests share it, so each starts empty."""
    import neo4j

    with (
        neo4j.GraphDatabase.driver(server.uri, auth=(server.user, server.password)) as driver,
        driver.session() as session,
    ):
        # CALL { } IN TRANSACTIONS runs only in an auto-commit transaction (session.run)
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS").consume()


@pytest.fixture(params=["embedded", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    """Each contract test runs once on each store."""
    if request.param == "embedded":
        s = SqliteStore(tmp_path / "store")
    else:
        from graph.neo4j_store import Neo4jStore

        server = request.getfixturevalue("neo4j_server")
        wipe_neo4j(server)
        s = Neo4jStore(server.uri, user=server.user, password=server.password)
    yield s
    s.close()
