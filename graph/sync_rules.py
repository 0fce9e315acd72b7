"""Reconciliation rules of the import engine: how an incoming item is identified with a CI
(per class), and which source wins which field (per field).

Both are plain frozen values with defaults that need no configuration; ``load_rules`` reads
them from a TOML file (``cmdb import --rules FILE``)::

    # identification: per class, the identifiers tried in order ("default" for the others)
    [identification]
    default = ["serial_number", "asset_tag", "fqdn", "name", "id"]
    application = ["name", "id"]

    # precedence: per field, the sources that win it, highest first. A field is a tracked
    # field (owner, environment, ...), an attribute ("attributes.serial_number"), "attributes"
    # (every attribute not named) or "*" (every field not named). A source not listed ranks
    # below every listed one; between equals the last writer wins.
    [precedence]
    owner = ["servicenow", "backstage"]
    "attributes.serial_number" = ["netbox"]

    [options]
    same_class = true   # identifiers match only CIs of the incoming item's class

Identifiers are ``serial_number``, ``asset_tag``, ``fqdn``, ``mac_address`` (attributes,
compared normalised), ``name`` (same name and class) and ``id`` (a CI whose id equals the
source's key for the item).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from graph.errors import ConfigurationError
from graph.model import IDENTIFIER_ATTRIBUTES, AttributeValue, ConfigurationItem, Provenance

NAME: Final = "name"
ID: Final = "id"
IDENTIFIERS: Final = (*IDENTIFIER_ATTRIBUTES, NAME, ID)
DEFAULT_IDENTIFICATION: Final = ("serial_number", "asset_tag", "fqdn", NAME, ID)
ANY_CLASS: Final = "default"
ANY_FIELD: Final = "*"
ATTRIBUTES: Final = "attributes"

# The tracked fields merged one by one (attributes are merged per attribute).
MERGED_FIELDS: Final = tuple(f for f in ConfigurationItem.TRACKED_FIELDS if f != ATTRIBUTES)
_EMPTY: Final[tuple[object, ...]] = (None, (), {}, [], "")


def _frozen(mapping: Mapping[str, tuple[str, ...]]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class ReconciliationRules:
    """Identification per class and precedence per field. See the module docstring."""

    identification: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: _frozen({ANY_CLASS: DEFAULT_IDENTIFICATION})
    )
    precedence: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _frozen({}))
    same_class: bool = True

    def __post_init__(self) -> None:
        for ci_class, entries in self.identification.items():
            for entry in entries:
                if entry not in IDENTIFIERS:
                    raise ConfigurationError(
                        f"identification rule for {ci_class!r} names {entry!r}; use "
                        f"{', '.join(IDENTIFIERS)}"
                    )

    def identifiers(self, ci_class: str) -> tuple[str, ...]:
        """The identifiers tried, in order, for an item of ``ci_class``."""
        found = self.identification.get(ci_class)
        if found is None:
            found = self.identification.get(ANY_CLASS, DEFAULT_IDENTIFICATION)
        return found

    def ranking(self, field_key: str) -> tuple[str, ...]:
        """The sources that win ``field_key``, highest first (empty: last writer wins)."""
        found = self.precedence.get(field_key)
        if found is None and field_key.startswith(ATTRIBUTES + "."):
            found = self.precedence.get(ATTRIBUTES)
        if found is None:
            found = self.precedence.get(ANY_FIELD, ())
        return found

    def may_write(self, field_key: str, writer: str, holder: str | None) -> bool:
        """May ``writer`` replace a value that ``holder`` set? Yes unless ``holder`` ranks
        strictly higher for this field."""
        if holder is None or holder == writer:
            return True
        ranking = self.ranking(field_key)
        if not ranking:
            return True
        last = len(ranking)
        writer_rank = ranking.index(writer) if writer in ranking else last
        holder_rank = ranking.index(holder) if holder in ranking else last
        return writer_rank <= holder_rank


DEFAULT_RULES: Final = ReconciliationRules()


def load_rules(path: str | Path) -> ReconciliationRules:
    """Rules from a TOML file (see the module docstring); raises ConfigurationError."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read the rules file {path}: {exc}") from exc
    unknown = set(data) - {"identification", "precedence", "options"}
    if unknown:
        raise ConfigurationError(
            f"{path}: unknown section(s) {', '.join(sorted(unknown))}; "
            "use [identification], [precedence] and [options]"
        )
    identification = _lists(data.get("identification", {}), path, "identification")
    identification.setdefault(ANY_CLASS, DEFAULT_IDENTIFICATION)
    precedence = _lists(data.get("precedence", {}), path, "precedence")
    options = data.get("options", {})
    same_class = options.get("same_class", True) if isinstance(options, dict) else None
    if not isinstance(same_class, bool):
        raise ConfigurationError(f"{path}: [options] same_class is true or false")
    return ReconciliationRules(_frozen(identification), _frozen(precedence), same_class)


def _lists(table: Any, path: str | Path, section: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [{section}] is a table of name = [list of names]")
    out: dict[str, tuple[str, ...]] = {}
    for key, value in table.items():
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigurationError(
                f'{path}: [{section}] {key} must be a list of strings, like ["a", "b"]'
            )
        out[key] = tuple(value)
    return out


# --------------------------------------------------------------------------------------------
# Merging what a source says into a CI


def said(ci: ConfigurationItem, name: str) -> bool:
    """Did the source say this field? Only fields it set to a non-empty value count: importers
    that pass ``owner=None`` have no opinion on the owner."""
    return name in ci.model_fields_set and getattr(ci, name) not in _EMPTY


_DEFAULTS: Final[dict[str, Any]] = {
    name: ConfigurationItem.model_fields[name].get_default(call_default_factory=True)
    for name in MERGED_FIELDS
}


def merge_ci(
    old: ConfigurationItem | None,
    new: ConfigurationItem,
    *,
    source: str,
    stamp: Provenance,
    rules: ReconciliationRules,
) -> ConfigurationItem:
    """The CI after ``source`` reported ``new`` (its id already the reconciled CI's).

    For each field: a value the source says replaces the stored one when the source may write
    it (``rules.may_write``), and the field's provenance becomes ``stamp``; a value equal to the
    stored one changes nothing. A field the source set before and no longer says is cleared.
    Attributes merge one by one the same way (provenance ``attributes.<name>``).
    """
    if old is None:
        provenance = {name: stamp for name in MERGED_FIELDS if said(new, name)}
        provenance.update({f"{ATTRIBUTES}.{key}": stamp for key in new.attributes})
        return new.model_copy(update={"provenance": provenance})
    update: dict[str, Any] = {}
    provenance = dict(old.provenance)
    for name in MERGED_FIELDS:
        holder = provenance.get(name)
        if said(new, name):
            value = getattr(new, name)
            if value == getattr(old, name):
                if holder is None:
                    provenance[name] = stamp  # claim a field nobody vouched for
                continue
            if rules.may_write(name, source, holder.source if holder else None):
                update[name] = value
                provenance[name] = stamp
        elif holder is not None and holder.source == source:
            update[name] = _DEFAULTS[name]  # the source withdrew what it said
            del provenance[name]
    attributes, changed = merge_attributes(
        old.attributes, new.attributes, provenance, source=source, stamp=stamp, rules=rules
    )
    if changed:
        update[ATTRIBUTES] = attributes
    if provenance != old.provenance:
        update["provenance"] = provenance
    if not update:
        return old
    return old.model_copy(update=update)


def merge_attributes(
    old: Mapping[str, AttributeValue],
    new: Mapping[str, AttributeValue],
    provenance: dict[str, Provenance],
    *,
    source: str,
    stamp: Provenance,
    rules: ReconciliationRules,
) -> tuple[dict[str, AttributeValue], bool]:
    """``old`` attributes with ``new`` merged in; updates ``provenance`` in place."""
    merged = dict(old)
    changed = False
    for key, value in new.items():
        prov_key = f"{ATTRIBUTES}.{key}"
        holder = provenance.get(prov_key)
        if key in merged and merged[key] == value:
            if holder is None:
                provenance[prov_key] = stamp
            continue
        if rules.may_write(prov_key, source, holder.source if holder else None):
            merged[key] = value
            provenance[prov_key] = stamp
            changed = True
    for key in list(merged):
        prov_key = f"{ATTRIBUTES}.{key}"
        holder = provenance.get(prov_key)
        if key not in new and holder is not None and holder.source == source:
            del merged[key]
            del provenance[prov_key]
            changed = True
    return merged, changed
