"""Shared helpers for the YAML-based importer tests (Backstage, Kubernetes, Compose)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from graph.model import DEFAULT_REGISTRY, Propagation
from importers.base import Inventory, SourceFile

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    """``tests/fixtures``: real inventories with their PROVENANCE.md."""
    return FIXTURES


@pytest.fixture
def source() -> Callable[[str, str], SourceFile]:
    """An in-memory input file: ``source("name.yaml", text)``."""

    def make(name: str, text: str) -> SourceFile:
        return SourceFile(name=name, data=text.encode("utf-8"))

    return make


def affected_by(inventory: Inventory, failed: Iterable[str]) -> set[str]:
    """Every CI id a failure of ``failed`` reaches, following each relationship type's
    propagation as impact analysis does (a plain BFS; no redundancy groups)."""
    reaches: dict[str, set[str]] = defaultdict(set)
    for rel in inventory.relationships:
        propagation = DEFAULT_REGISTRY.relationship_type(rel.type).propagation
        if propagation in (Propagation.TO_SOURCE, Propagation.BOTH):
            reaches[rel.target_ref].add(rel.source_ref)
        if propagation in (Propagation.TO_TARGET, Propagation.BOTH):
            reaches[rel.source_ref].add(rel.target_ref)
    seen = set(failed)
    todo = list(seen)
    while todo:
        for nxt in reaches[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen - set(failed)


@pytest.fixture
def affected() -> Callable[[Inventory, Iterable[str]], set[str]]:
    """``affected(inventory, [failed ids])``: the ids a failure reaches."""
    return affected_by


def dump(inventory: Inventory) -> str:
    """Everything an inventory carries, as text (to search for secrets that must not be there)."""
    parts = [p.ci.model_dump_json() + p.location for p in inventory.cis]
    parts += [repr(r) for r in inventory.relationships]
    parts += inventory.warnings
    parts += [c.model_dump_json() for c in inventory.changes]
    return "\n".join(parts)


@pytest.fixture
def dumped() -> Callable[[Inventory], str]:
    return dump
