"""Small builders shared by the import engine tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from graph.model import ConfigurationItem
from graph.store import Store
from importers.base import Inventory, ParsedCi, ParsedRelationship

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def ci(id: str, cls: str = "server", name: str | None = None, **fields: Any) -> ParsedCi:
    raw = {"id": id, "class": cls, "name": name or id, **fields}
    return ParsedCi(ConfigurationItem.model_validate(raw), f"test.yaml:{abs(hash(id)) % 1000}")


def rel(source: str, target: str, type: str = "DEPENDS_ON", **attributes: Any):
    return ParsedRelationship(source, type, target, f"rels.csv:{len(source)}", dict(attributes))


def inv(*items: ParsedCi | ParsedRelationship, complete: bool = True) -> Inventory:
    out = Inventory(complete=complete)
    for item in items:
        if isinstance(item, ParsedCi):
            out.cis.append(item)
        else:
            out.relationships.append(item)
    return out


def state(store: Store, *, provenance_sources: bool = True) -> dict[str, Any]:
    """The store's CIs and relationships, without times and run ids (comparable across runs)."""
    cis = {}
    after = None
    while True:
        page = store.list_cis(first=1000, after=after)
        for item in page.items:
            entry = item.tracked()
            if provenance_sources:
                entry["provenance"] = {k: p.source for k, p in sorted(item.provenance.items())}
            cis[item.id] = entry
        if page.next_cursor is None:
            break
        after = page.next_cursor
    rels = {r.key: dict(r.attributes) for r in store.iter_relationships()}
    return {"cis": cis, "relationships": rels}


def full_state(store: Store) -> dict[str, Any]:
    """Everything, times included: for "nothing was written" checks."""
    cis = []
    after = None
    while True:
        page = store.list_cis(first=1000, after=after)
        cis += [c.model_dump(mode="json") for c in page.items]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    return {
        "cis": cis,
        "relationships": [r.model_dump(mode="json") for r in store.iter_relationships()],
        "history": [c.model_dump(mode="json") for c in store.history(limit=100_000)],
    }
