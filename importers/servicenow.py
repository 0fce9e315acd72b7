"""ServiceNow CMDB exports (``cmdb_ci*`` tables and ``cmdb_rel_ci``) to an Inventory.

Input: Table API JSON (``{"result": [...]}``, reference fields as ``{"link", "value"}``,
plain sys_ids with ``sysparm_exclude_reference_link``, or ``{"display_value", "value"}`` with
``sysparm_display_value=all``), the list view's CSV export, or one JSON object holding several
tables by name. The table is the file's name (``cmdb_ci_linux_server.csv``) or the key it sits
under; ``cmdb_rel_type`` exports resolve relationship type sys_ids to names.

Identity is the sys_id (``servicenow:<sys_id>``); the class comes from ``sys_class_name``.
A ``cmdb_rel_ci`` row "parent <type> child" becomes one registry relationship, its direction
taken from the type's parent descriptor. See ``docs/importers/servicenow.md``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from graph.errors import ValidationError
from graph.model import AttributeValue, CiId, ConfigurationItem, Limits, Status
from importers.base import Inventory, ParsedCi, ParsedRelationship, SourceFile
from importers.json_source import load_json
from importers.redact import is_secret_name

SUFFIXES: tuple[str, ...] = (".json", ".csv")
SOURCE = "servicenow"

_SYS_ID = re.compile(r"^[0-9a-fA-F]{32}$")

# --------------------------------------------------------------------------------------------
# Relationship types: "Parent descriptor::Child descriptor" -> (registry type, parent is source)


@dataclass(frozen=True, slots=True)
class RelMapping:
    type: str
    parent_is_source: bool  # False: the child is the source of the registry relationship


_P, _C = True, False
REL_TYPES: dict[str, RelMapping] = {
    "depends on::used by": RelMapping("DEPENDS_ON", _P),
    "used by::depends on": RelMapping("DEPENDS_ON", _C),
    "runs on::runs": RelMapping("RUNS_ON", _P),
    "runs::runs on": RelMapping("RUNS_ON", _C),
    "hosted on::hosts": RelMapping("HOSTED_ON", _P),
    "hosts::hosted on": RelMapping("HOSTED_ON", _C),
    "virtualized by::virtualizes": RelMapping("HOSTED_ON", _P),
    "virtualizes::virtualized by": RelMapping("HOSTED_ON", _C),
    "contains::contained by": RelMapping("CONTAINS", _P),
    "contained by::contains": RelMapping("CONTAINS", _C),
    # A member failing degrades the whole: the member is PART_OF the cluster / group.
    "members::member of": RelMapping("PART_OF", _C),
    "member of::members": RelMapping("PART_OF", _P),
    "cluster of::cluster": RelMapping("PART_OF", _C),
    "cluster::cluster of": RelMapping("PART_OF", _P),
    # Either way round, the connector (the child) is upstream of the parent.
    "connects to::connected by": RelMapping("CONNECTS_TO", _P),
    "connected by::connects": RelMapping("CONNECTS_TO", _P),
    "uses::used by": RelMapping("USES", _P),
    "located in::houses": RelMapping("LOCATED_IN", _P),
    "houses::located in": RelMapping("LOCATED_IN", _C),
    "powered by::powers": RelMapping("POWERED_BY", _P),
    "powers::powered by": RelMapping("POWERED_BY", _C),
    "provides::provided by": RelMapping("PROVIDES", _P),
    "provided by::provides": RelMapping("PROVIDES", _C),
    "defines resources for::gets resources from": RelMapping("DEPENDS_ON", _C),
    "gets resources from::defines resources for": RelMapping("DEPENDS_ON", _P),
    "owns::owned by": RelMapping("OWNS", _P),
    "owned by::owns": RelMapping("OWNS", _C),
}


def rel_mapping(type_name: str) -> RelMapping | None:
    """The registry relationship for a ServiceNow type name, or None when it has none."""
    return REL_TYPES.get(re.sub(r"\s+", " ", type_name.strip().lower()))


# --------------------------------------------------------------------------------------------
# Classes

_CLASS_RULES: tuple[tuple[str, str], ...] = (
    (r"^cmn_location$", "site"),
    (r"^cmdb_ci_datacenter$", "site"),
    (r"^cmdb_ci_rack$", "rack"),
    (r"^cmdb_ci_service_(auto|discovered|technical|calculated|by_tags)$", "technical_service"),
    (r"^cmdb_ci_service(_business)?$", "business_service"),
    (r"^cmdb_ci_business_app$", "application"),
    (r"^cmdb_ci_api", "api"),
    (r"^cmdb_ci_kubernetes_cluster$", "kubernetes_cluster"),
    (r"^cmdb_ci_kubernetes_pod$", "pod"),
    (r"^cmdb_ci_kubernetes_namespace$", "namespace"),
    (r"^cmdb_ci_(docker|oslv)_container", "container"),
    (r"^cmdb_ci_db_.*cluster|^cmdb_ci_.*(sql|db|database).*cluster", "database_cluster"),
    (r"^cmdb_ci_db_|^cmdb_ci_database", "database"),
    (r"cluster", "hypervisor_cluster"),
    (r"^cmdb_ci_appl|^cmdb_ci_app_server", "application"),
    (r"^cmdb_ci_(vm|vmware|.*_vm)_instance$|^cmdb_ci_vm_", "virtual_machine"),
    (r"^cmdb_ci_lb", "load_balancer"),
    (
        r"^cmdb_ci_(netgear|ip_switch|ip_router|ip_firewall|firewall|router|switch)",
        "network_device",
    ),
    (r"^cmdb_ci_network_adapter$", "network_interface"),
    (r"^cmdb_ci_(pdu|ups)", "power_device"),
    (r"^cmdb_ci_(storage|san|nas|disk)", "storage"),
    (r"^cmdb_ci_(queue|mq)", "message_queue"),
    (r"^cmdb_ci_(.*_)?server$|^cmdb_ci_computer$", "server"),
    (r"^cmdb_ci_cloud|^cmdb_ci_aws|^cmdb_ci_azure|^cmdb_ci_gcp", "cloud_resource"),
)


def ci_class_for(sys_class_name: str) -> str:
    """The CI class for a ServiceNow class (table) name; ``other`` when none fits."""
    for pattern, ci_class in _CLASS_RULES:
        if re.search(pattern, sys_class_name):
            return ci_class
    return "other"


# install_status / operational_status codes and labels (out of the box).
_RETIRED = {"7", "retired", "8", "stolen"}
_MAINTENANCE = {"3", "in maintenance", "repair in progress"}
_DOWN = {"non-operational", "2"}  # operational_status 2 only; install_status 2 is "On Order"


def _status(record: Mapping[str, Any]) -> Status:
    install = str(_scalar(record.get("install_status")) or "").strip().lower()
    operational = str(_scalar(record.get("operational_status")) or "").strip().lower()
    if install in _RETIRED or operational in {"6", "retired"}:
        return Status.RETIRED
    if install in _MAINTENANCE or operational in _MAINTENANCE:
        return Status.MAINTENANCE
    if operational in _DOWN:
        return Status.DOWN
    return Status.OPERATIONAL


# --------------------------------------------------------------------------------------------
# Field values


def _scalar(value: Any) -> str | None:
    """A field as text: a reference's ``display_value`` (else its ``value``), or the string."""
    if isinstance(value, dict):
        shown = value.get("display_value")
        value = shown if shown not in (None, "") else value.get("value")
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _reference(value: Any) -> str | None:
    """A reference field's sys_id, or its text when the export only has a display value."""
    if isinstance(value, dict):
        raw = value.get("value")
        if isinstance(raw, str) and raw.strip():
            return raw.strip()
        return _scalar(value)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def ci_ref(value: str) -> str:
    """A CI reference: ``servicenow:<sys_id>`` for a sys_id, else the name as exported."""
    return f"{SOURCE}:{value.lower()}" if _SYS_ID.match(value) else value


_KEPT_FIELDS: tuple[str, ...] = (
    "serial_number",
    "fqdn",
    "ip_address",
    "host_name",
    "dns_domain",
    "mac_address",
    "os",
    "os_version",
    "model_id",
    "manufacturer",
    "asset_tag",
    "version",
    "category",
    "subcategory",
    "company",
    "department",
)


# --------------------------------------------------------------------------------------------
# Reading files into tables


@dataclass(frozen=True, slots=True)
class _Row:
    table: str
    fields: Mapping[str, Any]
    location: str
    item: str  # "cmdb_rel_ci result[3]" or "cmdb_ci_server.csv line 7"


def _table_of(name: str) -> str | None:
    stem = PurePath(name).name.split(".")[0].lower()
    if stem.startswith(("cmdb_ci", "cmdb_rel_ci", "cmdb_rel_type", "cmn_location")):
        return stem
    return None


def _rows(source: SourceFile) -> Iterator[_Row]:
    if source.name.lower().endswith(".csv"):
        yield from _csv_rows(source)
    else:
        yield from _json_rows(source)


def _csv_rows(source: SourceFile) -> Iterator[_Row]:
    table = _table_of(source.name)
    if table is None:
        raise ValidationError(
            "cannot tell the table of a CSV export from its name; name it after the table "
            "(cmdb_ci_linux_server.csv, cmdb_rel_ci.csv)",
            location=source.name,
        )
    reader = csv.DictReader(io.StringIO(source.read_text(), newline=""), strict=True)
    start = 2
    try:
        for record in reader:
            if None in record:
                raise ValidationError(
                    f"{len(record[None])} more cells than the header has columns",
                    location=f"{source.name}:{start}",
                )
            yield _Row(table, record, f"{source.name}:{start}", f"{table} line {start}")
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ValidationError(
            f"malformed CSV: {exc}", location=f"{source.name}:{reader.line_num}"
        ) from None


def _json_rows(source: SourceFile) -> Iterator[_Row]:
    doc = load_json(source, depth=3)
    value = doc.value
    file_table = _table_of(source.name)
    if isinstance(value, dict) and not ({"result", "records"} & value.keys()):
        # One object holding several tables by name.
        for table, body in value.items():
            yield from _json_table(doc, str(table).lower(), body, (str(table),))
        return
    if file_table is None:
        raise ValidationError(
            "cannot tell the table of this export: name the file after the table "
            "(cmdb_ci_server.json) or key the records by table name",
            location=doc.where(()),
        )
    yield from _json_table(doc, file_table, value, ())


def _json_table(doc: Any, table: str, body: Any, path: tuple[str, ...]) -> Iterator[_Row]:
    records = body
    key = ""
    if isinstance(body, dict):
        key = "result" if "result" in body else "records"
        records = body.get(key)
        path = (*path, key)
    if not isinstance(records, list):
        raise ValidationError(
            'expected a list of records (the Table API\'s {"result": [...]})',
            location=doc.where(path),
            item=table,
        )
    for index, record in enumerate(records):
        where = doc.where((*path, index))
        item = f"{table} {key or 'records'}[{index}]"
        if not isinstance(record, dict):
            raise ValidationError("a record is an object", location=where, item=item)
        yield _Row(table, record, where, item)


# --------------------------------------------------------------------------------------------
# Entry point


def parse_servicenow(files: Sequence[SourceFile]) -> Inventory:
    """ServiceNow CMDB table exports (JSON or CSV) to CIs keyed by sys_id and registry
    relationships from ``cmdb_rel_ci``."""
    rows: list[_Row] = []
    for source in files:
        rows.extend(_rows(source))
    rel_type_names: dict[str, str] = {}
    for row in rows:
        if row.table == "cmdb_rel_type":
            sys_id = _reference(row.fields.get("sys_id"))
            name = _scalar(row.fields.get("name"))
            if sys_id and name:
                rel_type_names[sys_id.lower()] = name

    inventory = Inventory()
    chosen: dict[CiId, tuple[_Row, ConfigurationItem]] = {}
    for row in rows:
        if row.table.startswith("cmdb_ci") or row.table == "cmn_location":
            ci = _ci(row)
            previous = chosen.get(ci.id)
            # A parent-table export (cmdb_ci) repeats the rows of its child tables: keep the
            # row from the CI's own class table, else the first.
            if previous is None or (
                previous[0].table != ci.attributes.get("sys_class_name")
                and row.table == ci.attributes.get("sys_class_name")
            ):
                chosen[ci.id] = (row, ci)
            location = _reference(row.fields.get("location"))
            if location and _SYS_ID.match(location) and ci.ci_class not in ("site",):
                inventory.relationships.append(
                    ParsedRelationship(
                        ci.id, "LOCATED_IN", ci_ref(location), row.location, {"via": "location"}
                    )
                )
        elif row.table == "cmdb_rel_ci":
            relationship = _relationship(row, rel_type_names, inventory)
            if relationship is not None:
                inventory.relationships.append(relationship)
    inventory.cis.extend(ParsedCi(ci, row.location) for row, ci in chosen.values())
    inventory.relationships = _unique(inventory.relationships)
    return inventory


def _unique(relationships: list[ParsedRelationship]) -> list[ParsedRelationship]:
    seen: set[tuple[str, str, str]] = set()
    out: list[ParsedRelationship] = []
    for rel in relationships:
        key = (rel.source_ref, rel.type, rel.target_ref)
        if key not in seen:
            seen.add(key)
            out.append(rel)
    return out


def _ci(row: _Row) -> ConfigurationItem:
    fields = row.fields
    sys_id = _reference(fields.get("sys_id"))
    if not sys_id or not _SYS_ID.match(sys_id):
        raise ValidationError(
            f"sys_id {sys_id!r} is not a 32-character hex sys_id"
            + ("" if sys_id else " (export the sys_id column)"),
            location=row.location,
            item=row.item,
            field="sys_id",
        )
    sys_id = sys_id.lower()
    sys_class = (_reference(fields.get("sys_class_name")) or row.table).strip()
    if not re.fullmatch(r"[a-z0-9_]+", sys_class):
        # A display-value export shows "Linux Server" instead of the table name.
        sys_class = row.table
    name = _scalar(fields.get("name")) or _scalar(fields.get("u_name")) or sys_id
    attributes: dict[str, AttributeValue] = {"sys_id": sys_id, "sys_class_name": sys_class}
    for key in _KEPT_FIELDS:
        value = _scalar(fields.get(key))
        if value is not None and not is_secret_name(key):
            attributes[key] = value[: Limits.MAX_TEXT_LENGTH]
    for key in ("install_status", "operational_status"):
        value = _scalar(fields.get(key))
        if value is not None:
            attributes[key] = value
    environment = _scalar(fields.get("environment")) or _scalar(fields.get("used_for"))
    criticality = _criticality(_scalar(fields.get("busines_criticality")))
    try:
        return ConfigurationItem(
            id=CiId(f"{SOURCE}:{sys_id}"),
            ci_class=ci_class_for(sys_class),
            name=name[: Limits.MAX_NAME_LENGTH],
            status=_status(fields),
            environment=environment[:128] if environment else None,
            criticality=criticality,
            owner=_person(fields.get("owned_by")),
            support_group=_person(fields.get("support_group")),
            description=(_scalar(fields.get("short_description")) or None),
            attributes=attributes,
        )
    except ValueError as exc:
        raise ValidationError(
            f"cannot build a CI: {exc}", location=row.location, item=row.item
        ) from None


def _person(value: Any) -> str | None:
    """A user or group reference as a name; a bare sys_id says nothing to a reader."""
    text = _scalar(value)
    if text is None or _SYS_ID.match(text):
        return None
    return text[: Limits.MAX_NAME_LENGTH]


def _criticality(value: str | None) -> int | None:
    match = re.match(r"^\s*([1-4])\b", value or "")
    return int(match.group(1)) if match else None


def _relationship(
    row: _Row, rel_type_names: Mapping[str, str], inventory: Inventory
) -> ParsedRelationship | None:
    fields = row.fields
    parent = _reference(fields.get("parent.sys_id") or fields.get("parent"))
    child = _reference(fields.get("child.sys_id") or fields.get("child"))
    for name, value in (("parent", parent), ("child", child)):
        if not value:
            raise ValidationError(
                f"a relationship without a {name}", location=row.location, item=row.item, field=name
            )
    assert parent is not None and child is not None  # checked just above
    raw_type = fields.get("type.name") or fields.get("type")
    type_name = _scalar(raw_type) if isinstance(raw_type, dict) else _reference(raw_type)
    if type_name and _SYS_ID.match(type_name):
        type_name = rel_type_names.get(type_name.lower(), type_name)
    if not type_name:
        raise ValidationError(
            "a relationship without a type", location=row.location, item=row.item, field="type"
        )
    mapping = rel_mapping(type_name)
    if mapping is None:
        hint = (
            " (a cmdb_rel_type sys_id: add the cmdb_rel_type export to the run)"
            if _SYS_ID.match(type_name)
            else ""
        )
        inventory.warnings.append(
            f"{row.location}: item {row.item!r} field 'type': relationship type "
            f"{type_name!r}{hint} has no registry mapping; skipped"
        )
        return None
    source, target = (parent, child) if mapping.parent_is_source else (child, parent)
    return ParsedRelationship(
        source_ref=ci_ref(source),
        type=mapping.type,
        target_ref=ci_ref(target),
        location=row.location,
        attributes={"servicenow_type": type_name},
    )
