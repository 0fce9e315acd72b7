"""Our own inventory formats: CSV, JSON and YAML (``cmdb import csv|json|yaml``).

CSV: two kinds of file, told apart by their header.

- A **CI file** has the columns ``id``, ``class`` and ``name``, and optionally ``status``,
  ``environment``, ``criticality`` (1-4), ``owner``, ``support_group``, ``description``,
  ``tags`` (separated by ``;``) and ``redundancy`` (JSON, as in YAML). Any other column is an
  attribute, a string unless its header says ``name:int``, ``name:float``, ``name:bool`` or
  ``name:list`` (``;``-separated strings).
- A **relationship file** has the columns ``source``, ``target`` and ``type``; ``source`` and
  ``target`` are CI ids or unique names; other columns are relationship attributes.

An empty cell says nothing (the field is left as other sources set it). Files are UTF-8 (a BOM
is accepted); anything else is an error naming the line.

JSON and YAML: one mapping ``{"cis": [...], "relationships": [...]}`` per file (YAML: per
document), CIs with the fields of a configuration item and relationships with ``source``,
``type``, ``target`` and ``attributes``, like ``importers/data/demo.yaml``.

A **mapping file** (``--mapping map.yaml``) adapts someone else's columns::

    columns: {hostname: name, ci_type: class, cpus: "cpu:int"}   # their name: ours
    classes: {Linux Server: server}                              # their class: ours
    types: {"Depends on": DEPENDS_ON}                            # their relationship type
    defaults: {environment: prod}                                # for empty / missing cells
    ignore: [internal_id]                                        # columns to drop

Big CSV files stream: :func:`iter_csv_chunks` reads a chunk of rows at a time, and the engine
consumes the chunks (``graph.sync.run_import``). See ``docs/import-formats.md``.
"""

from __future__ import annotations

import array
import codecs
import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson
import pydantic

from graph.errors import ValidationError
from graph.model import AttributeValue, CiId, ConfigurationItem, Relationship
from importers.base import Inventory, ParsedCi, ParsedRelationship, SourceFile
from importers.json_source import JsonDocument, load_json
from importers.safe_yaml import key_line, line_of, load_documents

CSV_SUFFIXES: Final = (".csv",)
JSON_SUFFIXES: Final = (".json",)
YAML_SUFFIXES: Final = (".yaml", ".yml")

CI_REQUIRED: Final = ("id", "class", "name")
REL_REQUIRED: Final = ("source", "target", "type")
CI_FIELDS: Final = (
    *CI_REQUIRED,
    "status",
    "environment",
    "criticality",
    "owner",
    "support_group",
    "description",
    "tags",
    "redundancy",
)
ENGINE_FIELDS: Final = ("provenance", "first_seen", "last_seen")
LIST_SEPARATOR: Final = ";"
CHUNK_ROWS: Final = 5_000

_TYPES: Final[dict[str, Callable[[str], AttributeValue]]] = {}


def _to_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise ValueError(f"{text!r} is not true/false")


def _to_list(text: str) -> list[Any]:
    return [part.strip() for part in text.split(LIST_SEPARATOR) if part.strip()]


_TYPES.update({"str": str, "int": int, "float": float, "bool": _to_bool, "list": _to_list})


# --------------------------------------------------------------------------------------------
# The mapping file


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """Renames and value maps applied to every item before it is read (see module doc)."""

    columns: Mapping[str, str] = field(default_factory=dict)
    classes: Mapping[str, str] = field(default_factory=dict)
    types: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)
    ignore: frozenset[str] = frozenset()

    def rename(self, column: str) -> str:
        return self.columns.get(column, column)


NO_MAPPING: Final = ColumnMapping()


def load_mapping(file: SourceFile) -> ColumnMapping:
    """A mapping file (YAML), checked: every section is a mapping of strings."""
    documents = [doc for doc, _ in load_documents(file) if doc is not None]
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise ValidationError(
            "a mapping file is one YAML mapping with columns/classes/types/defaults/ignore",
            location=file.name,
        )
    doc = documents[0]
    unknown = set(doc) - {"columns", "classes", "types", "defaults", "ignore"}
    if unknown:
        first = sorted(unknown, key=str)[0]
        raise ValidationError(
            f"unknown section {first!r}; use columns, classes, types, defaults, ignore",
            location=f"{file.name}:{key_line(doc, first, 1)}",
        )
    sections: dict[str, dict[str, str]] = {}
    for name in ("columns", "classes", "types", "defaults"):
        raw = doc.get(name, {})
        where = f"{file.name}:{key_line(doc, name, 1)}"
        if not isinstance(raw, dict):
            raise ValidationError(f"{name} is a mapping of name: value", location=where)
        sections[name] = {}
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise ValidationError(
                    f"{name}: the value for {key!r} must be text",
                    location=f"{file.name}:{key_line(raw, str(key), 1)}",
                )
            sections[name][str(key)] = str(value)
    ignore = doc.get("ignore", [])
    if not isinstance(ignore, list) or not all(isinstance(i, str) for i in ignore):
        raise ValidationError(
            "ignore is a list of column names", location=f"{file.name}:{key_line(doc, 'ignore', 1)}"
        )
    return ColumnMapping(
        columns=sections["columns"],
        classes=sections["classes"],
        types=sections["types"],
        defaults=sections["defaults"],
        ignore=frozenset(ignore),
    )


# --------------------------------------------------------------------------------------------
# Building items (shared by the three formats)


def _field_of(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a field path: ``redundancy[0].members``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "item"


def _pydantic_error(
    exc: pydantic.ValidationError, item: str | None, where: Callable[[str], str]
) -> ValidationError:
    error = exc.errors()[0]
    field_path = _field_of(error["loc"])
    top = str(error["loc"][0]) if error["loc"] else ""
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown field (a typo?)"
    return ValidationError(message, item=item, field=field_path, location=where(top))


def _build_ci(
    raw: dict[str, Any], mapping: ColumnMapping, where: Callable[[str], str]
) -> ConfigurationItem:
    item = str(raw.get("id")) if raw.get("id") is not None else None
    for name in ENGINE_FIELDS:
        if name in raw:
            raise ValidationError(
                "set by the import engine, not by the input",
                item=item,
                field=name,
                location=where(name),
            )
    for name in CI_REQUIRED:
        if raw.get(name) in (None, ""):
            raise ValidationError("required", item=item, field=name, location=where(name))
    if isinstance(raw.get("class"), str):
        raw["class"] = mapping.classes.get(raw["class"], raw["class"])
    try:
        return ConfigurationItem.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise _pydantic_error(exc, item, where) from None


def _apply_mapping(
    raw: Mapping[str, Any], mapping: ColumnMapping, *, defaults: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in mapping.ignore:
            continue
        out[mapping.rename(str(key))] = value
    if defaults:  # defaults are CI fields
        for key, value in mapping.defaults.items():
            if out.get(key) in (None, ""):
                out[key] = value
    return out


# --------------------------------------------------------------------------------------------
# CSV


@dataclass(frozen=True, slots=True)
class _Column:
    name: str  # after mapping
    kind: str  # str, int, float, bool, list


@dataclass(frozen=True, slots=True)
class CsvSummary:
    """What a validation pass over CSV files found (nothing is kept but counts)."""

    cis: int
    relationships: int
    files: int

    @property
    def items(self) -> int:
        return self.cis + self.relationships


def _lines(file: SourceFile) -> Iterator[str]:
    """The file's lines as text; invalid UTF-8 is an error naming the line."""
    with file.open() as handle:
        for number, raw in enumerate(handle, 1):
            data = (
                raw[len(codecs.BOM_UTF8) :]
                if number == 1 and raw.startswith(codecs.BOM_UTF8)
                else raw
            )
            if b"\x00" in data:
                raise ValidationError(
                    "NUL byte in the line: a binary file, or text that is not UTF-8 (UTF-16?)",
                    location=f"{file.name}:{number}",
                )
            try:
                yield data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValidationError(
                    f"invalid UTF-8 (byte 0x{data[exc.start]:02x} at column {exc.start + 1}); "
                    "save the file as UTF-8",
                    location=f"{file.name}:{number}",
                ) from None


class _CsvFile:
    """One CSV file: its kind (from the header) and its rows with their line numbers."""

    def __init__(self, file: SourceFile, mapping: ColumnMapping) -> None:
        self.file = file
        self.mapping = mapping
        header, _ = next(self._records(), ([], 0))
        if not header:
            raise ValidationError("empty file: no header line", location=f"{file.name}:1")
        self.width = len(header)
        self.columns = self.header(header)
        names = {c.name for c in self.columns if c.kind != "ignore"}
        defaults = {self._split(k)[0]: v for k, v in mapping.defaults.items()}
        # Defaults fill empty cells and may supply missing columns: CI fields for a CI file,
        # and `type` for a relationship file that has only source and target (a list of
        # dependencies read from code, say).
        is_rel = {"source", "target"} <= names and ("type" in names or "type" in defaults)
        self.defaults = {"type": defaults["type"]} if is_rel and "type" in defaults else {}
        if not is_rel:
            self.defaults = {k: v for k, v in defaults.items() if k != "type"}
        names.update(self.defaults)
        is_ci = all(c in names for c in CI_REQUIRED)
        if is_ci == is_rel:
            raise ValidationError(
                "cannot tell the kind of file from its header: a CI file has the columns "
                f"{', '.join(CI_REQUIRED)}; a relationship file has {', '.join(REL_REQUIRED)}"
                + (" (this one has both)" if is_ci else f" (found: {', '.join(sorted(names))})"),
                location=f"{file.name}:1",
            )
        self.kind = "ci" if is_ci else "relationship"

    @staticmethod
    def _split(name: str) -> tuple[str, str]:
        base, sep, kind = name.rpartition(":")
        if sep and kind in _TYPES and base:
            return base, kind
        return name, "str"

    def header(self, header: list[str]) -> list[_Column]:
        columns: list[_Column] = []
        seen: set[str] = set()
        for position, cell in enumerate(header, 1):
            raw = cell.strip()
            if not raw:
                raise ValidationError(
                    f"column {position} has no name", location=f"{self.file.name}:1"
                )
            if raw in self.mapping.ignore:
                columns.append(_Column("", "ignore"))
                continue
            name, kind = self._split(self.mapping.rename(raw))
            if name in seen:
                raise ValidationError(
                    f"column {name!r} appears twice", location=f"{self.file.name}:1"
                )
            seen.add(name)
            columns.append(_Column(name, kind))
        return columns

    def _records(self) -> Iterator[tuple[list[str], int]]:
        """Records with the physical line each starts on."""
        reader = csv.reader(_lines(self.file), strict=True)
        start = 1
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ValidationError(
                    f"malformed CSV: {exc}", location=f"{self.file.name}:{reader.line_num}"
                ) from None
            if record:
                yield record, start
            start = reader.line_num + 1

    def rows(self) -> Iterator[tuple[dict[str, str], int]]:
        """Each data row as {column: non-empty cell}, with defaults, and its line."""
        records = self._records()
        next(records, None)  # the header
        names = [None if c.kind == "ignore" else c.name for c in self.columns]
        for record, line in records:
            if len(record) != self.width:
                raise ValidationError(
                    f"{len(record)} cells where the header has {self.width} columns",
                    location=f"{self.file.name}:{line}",
                )
            row = {
                name: value
                for name, cell in zip(names, record, strict=True)
                if name is not None and (value := cell.strip())
            }
            for name, value in self.defaults.items():
                row.setdefault(name, value)
            yield row, line

    def kinds(self) -> dict[str, str]:
        kinds = {c.name: c.kind for c in self.columns if c.kind != "ignore"}
        for name in self.mapping.defaults if self.kind == "ci" else ():
            base, kind = self._split(name)
            kinds.setdefault(base, kind)
        return kinds


def _typed(value: str, kind: str) -> AttributeValue:
    return _TYPES[kind](value)


def _csv_ci(
    row: dict[str, str], kinds: dict[str, str], location: str, mapping: ColumnMapping
) -> ConfigurationItem:
    item = row.get("id")
    raw: dict[str, Any] = {}
    attributes: dict[str, AttributeValue] = {}
    for name, value in row.items():
        try:
            if name == "criticality":
                raw[name] = int(value)
            elif name == "tags":
                raw[name] = _to_list(value)
            elif name == "redundancy":
                raw[name] = orjson.loads(value)
            elif name in CI_FIELDS or name in ENGINE_FIELDS:
                raw[name] = value
            else:
                attributes[name] = _typed(value, kinds.get(name, "str"))
        except (ValueError, orjson.JSONDecodeError) as exc:
            what = {
                "criticality": "a whole number from 1 (highest) to 4",
                "redundancy": 'JSON, like [{"name": "web", "members": ["a", "b"]}]',
            }.get(name, f"a {kinds.get(name, 'str')} value")
            raise ValidationError(
                f"{value[:60]!r} is not {what} ({exc})", item=item, field=name, location=location
            ) from None
    if attributes:
        raw["attributes"] = attributes
    return _build_ci(raw, mapping, lambda _field: location)


def _csv_relationship(
    row: dict[str, str], kinds: dict[str, str], location: str, mapping: ColumnMapping
) -> ParsedRelationship:
    for name in REL_REQUIRED:
        if not row.get(name):
            raise ValidationError("required", field=name, location=location)
    attributes: dict[str, AttributeValue] = {}
    for name, value in row.items():
        if name in REL_REQUIRED:
            continue
        try:
            attributes[name] = _typed(value, kinds.get(name, "str"))
        except ValueError as exc:
            raise ValidationError(
                f"{value[:60]!r} is not a {kinds.get(name)} value ({exc})",
                item=f"{row['source']} -[{row['type']}]-> {row['target']}",
                field=name,
                location=location,
            ) from None
    return _relationship(
        row["source"], row["type"], row["target"], attributes, location=location, mapping=mapping
    )


def _relationship(
    source: object,
    type_: object,
    target: object,
    attributes: object,
    *,
    location: str,
    mapping: ColumnMapping,
) -> ParsedRelationship:
    item = f"{source} -[{type_}]-> {target}"
    for name, value in (("source", source), ("type", type_), ("target", target)):
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(
                "required: a CI id or name" if name != "type" else "required: a type",
                item=item,
                field=name,
                location=location,
            )
    assert isinstance(type_, str) and isinstance(source, str) and isinstance(target, str)
    if not isinstance(attributes, dict):
        raise ValidationError(
            "attributes are a mapping of name to value",
            item=item,
            field="attributes",
            location=location,
        )
    try:
        # Validates ids, the type's shape and the attributes exactly as the store will.
        rel = Relationship(
            source=CiId(source),
            type=mapping.types.get(type_, type_),
            target=CiId(target),
            attributes=attributes,
        )
    except pydantic.ValidationError as exc:
        raise _pydantic_error(exc, item, lambda _f: location) from None
    return ParsedRelationship(
        source_ref=rel.source,
        type=rel.type,
        target_ref=rel.target,
        location=location,
        attributes=rel.attributes,
    )


def iter_csv_chunks(
    files: Sequence[SourceFile],
    *,
    mapping: ColumnMapping = NO_MAPPING,
    chunk_rows: int = CHUNK_ROWS,
    check_duplicates: bool = True,
) -> Iterator[Inventory]:
    """The CSV files as inventory chunks of at most ``chunk_rows`` items, CI files first, in
    bounded memory. Raises ValidationError (file:line, item, field) on the first bad row."""
    opened = [_CsvFile(f, mapping) for f in files]
    ordered = [f for f in opened if f.kind == "ci"] + [f for f in opened if f.kind != "ci"]
    seen: dict[str, str] = {}
    chunk = Inventory()
    size = 0
    for csv_file in ordered:
        kinds = csv_file.kinds()
        for row, line in csv_file.rows():
            location = f"{csv_file.file.name}:{line}"
            if csv_file.kind == "ci":
                ci = _csv_ci(row, kinds, location, mapping)
                if check_duplicates:
                    _check_unique(seen, ci.id, location)
                chunk.cis.append(ParsedCi(ci, location))
            else:
                chunk.relationships.append(_csv_relationship(row, kinds, location, mapping))
            size += 1
            if size >= chunk_rows:
                yield chunk
                chunk, size = Inventory(), 0
    if size or not opened:
        yield chunk


def _check_unique(seen: dict[str, str], ci_id: str, location: str) -> None:
    first = seen.setdefault(ci_id, location)
    if first != location:
        raise ValidationError(
            f"this id was already used at {first}", item=ci_id, field="id", location=location
        )


def check_csv(files: Sequence[SourceFile], *, mapping: ColumnMapping = NO_MAPPING) -> CsvSummary:
    """Read every row of the CSV files, building and discarding each item: the validation
    pass of a streamed import (nothing is written before the whole input is known good).

    A CI id used twice is an error too. To find one in bounded memory this pass keeps only a
    hash of each id (8 bytes, not a dict of id and location: ~200 bytes); only when two
    hashes agree does a second pass look at the ids behind them."""
    cis = rels = 0
    hashes = array.array("q")
    for chunk in iter_csv_chunks(files, mapping=mapping, check_duplicates=False):
        cis += len(chunk.cis)
        rels += len(chunk.relationships)
        hashes.extend(hash(parsed.ci.id) for parsed in chunk.cis)
    ordered = np.sort(np.frombuffer(hashes, dtype=np.int64))
    del hashes
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    del ordered
    if len(twice):
        _find_duplicate(files, mapping, {int(h) for h in twice})
    return CsvSummary(cis, rels, len(files))


def _find_duplicate(files: Sequence[SourceFile], mapping: ColumnMapping, hashes: set[int]) -> None:
    """Raise for the first id used twice among the ids with these hashes (the others differ)."""
    seen: dict[str, str] = {}
    for chunk in iter_csv_chunks(files, mapping=mapping, check_duplicates=False):
        for parsed in chunk.cis:
            if hash(parsed.ci.id) in hashes:
                _check_unique(seen, parsed.ci.id, parsed.location)


def parse_csv(files: Sequence[SourceFile], mapping: ColumnMapping = NO_MAPPING) -> Inventory:
    """CSV CI and relationship files to one Inventory (see :func:`iter_csv_chunks`)."""
    inventory = Inventory()
    for chunk in iter_csv_chunks(files, mapping=mapping):
        inventory.extend(chunk)
    return inventory


# --------------------------------------------------------------------------------------------
# JSON and YAML


Where = Callable[[str, int, str | None], str]
"""``file:line`` of a section (index -1), of an item, or of one of an item's keys."""


@dataclass(slots=True)
class _Reader:
    mapping: ColumnMapping
    inventory: Inventory = field(default_factory=Inventory)
    seen: dict[str, str] = field(default_factory=dict)

    def document(self, doc: object, location: str, where: Where) -> None:
        if doc is None:
            return
        if not isinstance(doc, dict):
            raise ValidationError(
                'expected a mapping {"cis": [...], "relationships": [...]}', location=location
            )
        unknown = set(doc) - {"cis", "relationships"}
        if unknown:
            first = sorted(unknown, key=str)[0]
            raise ValidationError(
                f"unknown top-level key {first!r}; use cis and relationships",
                location=where(str(first), -1, None),
            )
        for section in ("cis", "relationships"):
            items = doc.get(section, [])
            if items is None:
                continue
            if not isinstance(items, list):
                raise ValidationError(f"{section} is a list", location=where(section, -1, None))
            for index, raw in enumerate(items):
                if not isinstance(raw, dict):
                    raise ValidationError(
                        "each item is a mapping of field: value",
                        item=f"{section}[{index}]",
                        location=where(section, index, None),
                    )
                if section == "cis":
                    self.ci(raw, section, index, where)
                else:
                    self.relationship(raw, section, index, where)

    def ci(self, raw: dict[Any, Any], section: str, index: int, where: Where) -> None:
        location = where(section, index, None)
        fields = _apply_mapping(raw, self.mapping, defaults=True)

        def field_line(name: str) -> str:
            return where(section, index, _original_key(raw, name, self.mapping))

        ci = _build_ci(fields, self.mapping, field_line)
        _check_unique(self.seen, ci.id, location)
        self.inventory.cis.append(ParsedCi(ci, location))

    def relationship(self, raw: dict[Any, Any], section: str, index: int, where: Where) -> None:
        fields = _apply_mapping(raw, self.mapping, defaults=False)
        extra = set(fields) - {"source", "type", "target", "attributes"}
        if extra:
            bad = sorted(extra)[0]
            raise ValidationError(
                "unknown field; a relationship has source, type, target, attributes",
                item=f"{fields.get('source')} -[{fields.get('type')}]-> {fields.get('target')}",
                field=bad,
                location=where(section, index, _original_key(raw, bad, self.mapping)),
            )
        self.inventory.relationships.append(
            _relationship(
                fields.get("source"),
                fields.get("type"),
                fields.get("target"),
                fields.get("attributes", {}),
                location=where(section, index, None),
                mapping=self.mapping,
            )
        )


def _original_key(raw: Mapping[str, Any], name: str, mapping: ColumnMapping) -> str:
    for key in raw:
        if mapping.rename(str(key)) == name:
            return str(key)
    return name


def parse_yaml(files: Sequence[SourceFile], mapping: ColumnMapping = NO_MAPPING) -> Inventory:
    """YAML files (``cis`` and ``relationships``, one mapping per document), loaded safely
    with size and alias caps (``importers.safe_yaml``)."""
    reader = _Reader(mapping)
    for file in files:
        for doc, line in load_documents(file):
            reader.document(doc, f"{file.name}:{line}", _yaml_where(file.name, doc, line))
    return reader.inventory


def _yaml_where(name: str, doc: Any, line: int) -> Where:
    def where(section: str, index: int, key: str | None) -> str:
        node = doc.get(section) if isinstance(doc, dict) else None
        if index < 0 or not isinstance(node, list):
            return f"{name}:{key_line(doc, section, line)}"
        item_line = line_of(node[index], key_line(doc, section, line))
        return f"{name}:{key_line(node[index], key, item_line) if key else item_line}"

    return where


def parse_json(files: Sequence[SourceFile], mapping: ColumnMapping = NO_MAPPING) -> Inventory:
    """JSON files, each ``{"cis": [...], "relationships": [...]}``."""
    reader = _Reader(mapping)
    for file in files:
        doc = load_json(file, depth=3)
        reader.document(doc.value, f"{file.name}:1", _json_where(doc))
    return reader.inventory


def _json_where(doc: JsonDocument) -> Where:
    def where(section: str, index: int, key: str | None) -> str:
        path: tuple[str | int, ...] = (section,) if index < 0 else (section, index)
        return doc.where(path if key is None else (*path, key))

    return where


# --------------------------------------------------------------------------------------------
# Writing our CSV (the demo's CSV twin, benchmark inputs): the inverse of the parser


def format_csv(
    cis: Sequence[ConfigurationItem], relationships: Sequence[Relationship]
) -> tuple[str, str]:
    """A CI file and a relationship file that parse back to these items. Not an export for
    spreadsheets: cells are written as they are, without formula neutralising."""
    ci_columns = ["id", "class", "name"] + [
        f for f in CI_FIELDS[3:] if any(_ci_cell(ci, f) for ci in cis)
    ]
    attr_columns = attribute_kinds(a for ci in cis for a in ci.attributes.items())
    rel_columns = attribute_kinds(a for r in relationships for a in r.attributes.items())
    ci_out, rel_out = io.StringIO(), io.StringIO()
    writer = csv.writer(ci_out, lineterminator="\n")
    writer.writerow(ci_columns + [column_header(n, k) for n, k in attr_columns.items()])
    for ci in cis:
        writer.writerow(
            [_ci_cell(ci, c) for c in ci_columns]
            + [_cell(ci.attributes.get(n)) for n in attr_columns]
        )
    writer = csv.writer(rel_out, lineterminator="\n")
    writer.writerow([*REL_REQUIRED, *(column_header(n, k) for n, k in rel_columns.items())])
    for rel in relationships:
        writer.writerow(
            [rel.source, rel.target, rel.type] + [_cell(rel.attributes.get(n)) for n in rel_columns]
        )
    return ci_out.getvalue(), rel_out.getvalue()


def _ci_cell(ci: ConfigurationItem, column: str) -> str:
    if column == "class":
        return ci.ci_class
    if column == "redundancy":
        groups = [g.model_dump(mode="json", exclude_none=True) for g in ci.redundancy]
        return orjson.dumps(groups).decode() if groups else ""
    value = getattr(ci, column)
    if column == "tags":
        return LIST_SEPARATOR.join(value)
    if column == "status":
        return "" if value == "operational" else str(value)
    return "" if value is None else str(value)


def attribute_kinds(pairs: Iterable[tuple[str, AttributeValue]]) -> dict[str, str]:
    """The CSV kind of each attribute (``str``, ``int``, ``bool``, ``float``, ``list``) from its
    values, in first-seen order; an attribute with two kinds cannot be one column."""
    kinds: dict[str, str] = {}
    for name, value in pairs:
        kind = (
            "bool"
            if isinstance(value, bool)
            else "int"
            if isinstance(value, int)
            else "float"
            if isinstance(value, float)
            else "list"
            if isinstance(value, list)
            else "str"
        )
        if kinds.setdefault(name, kind) != kind:
            raise ValidationError(
                f"attribute {name!r} is both {kinds[name]} and {kind}: one CSV column has one type",
                field=name,
            )
    return kinds


def column_header(name: str, kind: str) -> str:
    """The CSV column of an attribute of this kind: ``name`` for text, else ``name:kind``."""
    return name if kind == "str" else f"{name}:{kind}"


def _cell(value: AttributeValue) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return LIST_SEPARATOR.join("" if v is None else str(v) for v in value)
    return str(value)


# --------------------------------------------------------------------------------------------
# The demo topology, shipped in our formats

DEMO_YAML: Final = "data/demo.yaml"
DEMO_CSV: Final = ("data/demo/cis.csv", "data/demo/relationships.csv")


def _packaged(path: str) -> SourceFile:
    data = resources.files("importers").joinpath(path).read_bytes()
    return SourceFile(name=f"importers/{path}", data=data)


def demo_inventory() -> Inventory:
    """The demo shop (``importers/data/demo.yaml``), parsed."""
    return parse_yaml([_packaged(DEMO_YAML)])


def demo_csv_files() -> list[SourceFile]:
    """The same demo as CSV (``importers/data/demo/``)."""
    return [_packaged(p) for p in DEMO_CSV]


def demo_path() -> Path:
    return Path(str(resources.files("importers").joinpath(DEMO_YAML)))


# --------------------------------------------------------------------------------------------
# Synthetic inventories (benchmarks, crash tests)

_SYNTHETIC_CLASSES: Final = ("server", "virtual_machine", "application", "database")


def write_synthetic_csv(
    directory: Path, cis: int, relationships: int, *, seed: int = 0
) -> tuple[Path, Path]:
    """Write ``cis.csv`` and ``relationships.csv`` with a reproducible synthetic inventory:
    CIs ``h<n>`` of four classes with serial numbers / FQDNs and a few attributes, and
    relationships between them (no self-loops, no repeats). Streams: any size fits."""
    directory.mkdir(parents=True, exist_ok=True)
    ci_path, rel_path = directory / "cis.csv", directory / "relationships.csv"
    with ci_path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            [
                "id",
                "class",
                "name",
                "environment",
                "criticality",
                "owner",
                "serial_number",
                "fqdn",
                "rack",
                "cpu:int",
                "os",
            ]
        )
        for i in range(cis):
            cls = _SYNTHETIC_CLASSES[(i * 7 + seed) % len(_SYNTHETIC_CLASSES)]
            writer.writerow(
                [
                    f"h{i}",
                    cls,
                    f"h{i}",
                    ("prod", "test", "dev")[i % 3],
                    str(i % 4 + 1),
                    f"team-{i % 50}",
                    f"SN{seed}-{i:08d}" if cls == "server" else "",
                    f"h{i}.example.net" if cls == "virtual_machine" else "",
                    f"r{i % 400}",
                    str(2 ** (i % 6)),
                    "Debian 12" if cls != "application" else "",
                ]
            )
    with rel_path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["source", "target", "type"])
        written = 0
        step = 0
        while written < relationships and cis > 1:
            source = step % cis
            offset = 1 + (step // cis) + ((source * 2654435761 + seed) % max(cis - 1, 1))
            target = (source + offset) % cis
            step += 1
            if target == source:
                continue
            writer.writerow([f"h{source}", f"h{target}", "DEPENDS_ON"])
            written += 1
    return ci_path, rel_path
