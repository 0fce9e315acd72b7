"""Choosing a store from a URL: the one place that knows both implementations."""

from __future__ import annotations

import os
from pathlib import Path

from graph.errors import ConfigurationError
from graph.model import DEFAULT_REGISTRY, Registry
from graph.store import Store

DEFAULT_STORE = ".cmdb"
NEO4J_SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")


def store_url(explicit: str | None = None) -> str:
    """``--store``, else ``CMDB_STORE``, else the embedded store in ``./.cmdb``."""
    return explicit or os.environ.get("CMDB_STORE") or DEFAULT_STORE


def load_registry() -> Registry:
    """The default registry, extended by the TOML file named in ``CMDB_REGISTRY`` if set."""
    path = os.environ.get("CMDB_REGISTRY")
    return Registry.from_toml(path) if path else DEFAULT_REGISTRY


def open_store(url: str | None = None, *, registry: Registry | None = None) -> Store:
    """A Neo4j store for ``neo4j://`` / ``bolt://`` URLs, else an embedded store in that
    directory. User, password and database come from the URL or ``NEO4J_USER``,
    ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``."""
    target = store_url(url)
    registry = registry or load_registry()
    if target.startswith(NEO4J_SCHEMES):
        from graph.neo4j_store import Neo4jStore  # the driver loads only when needed

        neo4j_store: Store = Neo4jStore.from_url(target, registry=registry)
        return neo4j_store
    if "://" in target:
        raise ConfigurationError(
            f"unsupported store URL scheme in {target.split('://')[0]!r}: use neo4j://, "
            "bolt:// (Neo4j) or a directory path (embedded store)"
        )
    from graph.sqlite_store import SqliteStore

    return SqliteStore(Path(target), registry=registry)
