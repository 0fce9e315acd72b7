"""Terraform state (``terraform.tfstate``, format versions 4 and 3) to an Inventory.

Identity is the state's lineage plus the resource instance address, so the same address in
two unrelated states never merges: ``terraform:<lineage>/module.app.aws_instance.web[0]``.
Each instance DEPENDS_ON every instance of the resources its ``dependencies`` (or the older
``depends_on``) name. Only a short allowlist of non-secret scalar attributes is kept; values
named in ``sensitive_attributes`` or with a secret-looking name are never read into the
Inventory. See ``docs/importers/terraform.md``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graph.errors import ValidationError
from graph.model import AttributeValue, CiId, ConfigurationItem, Limits, Status
from importers.base import Inventory, ParsedCi, ParsedRelationship, SourceFile
from importers.json_source import JsonDocument, JsonPath, load_json
from importers.redact import SECRET_VALUE, is_secret_name

SUFFIXES: tuple[str, ...] = (".tfstate",)
SOURCE = "terraform"

# --------------------------------------------------------------------------------------------
# What is kept of a resource's attributes

# Scalars worth showing on a CI. Everything else in the state (and it holds everything,
# including initial passwords and private keys) is never read into the Inventory.
KEPT_ATTRIBUTES: tuple[str, ...] = (
    "id",
    "arn",
    "name",
    "region",
    "location",
    "availability_zone",
    "zone",
    "instance_type",
    "machine_type",
    "engine",
    "engine_version",
    "private_ip",
    "public_ip",
    "dns_name",
    "fqdn",
    "endpoint",
)


def _safe_scalar(value: Any) -> AttributeValue | None:
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str) and value and not SECRET_VALUE.search(value):
        return value[: Limits.MAX_TEXT_LENGTH]
    return None


# --------------------------------------------------------------------------------------------
# Addresses

_IDENT = r"[A-Za-z_][A-Za-z0-9_-]*"
_KEY = r"\[(?:[0-9]+|\"(?:[^\"\\]|\\.)*\")\]"
_MODULE_STEP = re.compile(rf"module\.({_IDENT})({_KEY})?")
_MODULE_PATH = re.compile(rf"^(?:module\.{_IDENT}(?:{_KEY})?)(?:\.module\.{_IDENT}(?:{_KEY})?)*$")
# A resource reference as ``dependencies`` / ``depends_on`` write it (no instance key in v4;
# v3 may add ``.N`` or ``.*``).
_RESOURCE_REF = re.compile(
    rf"^(?P<module>(?:module\.{_IDENT}(?:{_KEY})?\.)*)"
    rf"(?P<data>data\.)?(?P<type>{_IDENT})\.(?P<name>{_IDENT})"
    r"(?:\.(?P<v3index>[0-9]+|\*)|(?P<key>" + _KEY + r"))?$"
)
_NON_RESOURCE = re.compile(r"^(?:var|local|path|terraform|count|each|self)\.")


def _check_module(module: str, where: str, item: str) -> str:
    if module and not _MODULE_PATH.match(module):
        raise ValidationError(
            f"invalid module address {module!r}", location=where, item=item, field="module"
        )
    return module


def _check_ident(value: Any, what: str, where: str, item: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(_IDENT, value):
        raise ValidationError(
            f"invalid resource {what} {value!r}: Terraform names start with a letter or _ "
            "and contain only letters, digits, _ and -",
            location=where,
            item=item,
            field=what,
        )
    return value


def _index_suffix(key: Any) -> str:
    if key is None:
        return ""
    if isinstance(key, bool) or not isinstance(key, int | str):
        raise TypeError(key)
    return f"[{key}]" if isinstance(key, int) else f"[{json.dumps(key)}]"


@dataclass(frozen=True, slots=True)
class _ResourceKey:
    module: str  # "" for the root module, else "module.a.module.b[0]"
    mode: str  # "managed" | "data"
    type: str
    name: str

    @property
    def address(self) -> str:
        local = f"{'data.' if self.mode == 'data' else ''}{self.type}.{self.name}"
        return f"{self.module}.{local}" if self.module else local


@dataclass(slots=True)
class _Instance:
    resource: _ResourceKey
    index_key: int | str | None
    provider: str
    attributes: dict[str, AttributeValue]
    tags: tuple[str, ...]
    dependencies: list[tuple[str, str]]  # (raw address, field it came from)
    location: str
    status: Status = Status.OPERATIONAL

    @property
    def address(self) -> str:
        return self.resource.address + _index_suffix(self.index_key)


# --------------------------------------------------------------------------------------------
# Classes

_CLASS_BY_TYPE: dict[str, str] = {
    "aws_instance": "virtual_machine",
    "aws_spot_instance_request": "virtual_machine",
    "google_compute_instance": "virtual_machine",
    "azurerm_linux_virtual_machine": "virtual_machine",
    "azurerm_windows_virtual_machine": "virtual_machine",
    "azurerm_virtual_machine": "virtual_machine",
    "vsphere_virtual_machine": "virtual_machine",
    "aws_db_instance": "database",
    "aws_dynamodb_table": "database",
    "google_sql_database_instance": "database",
    "azurerm_mssql_database": "database",
    "azurerm_postgresql_flexible_server": "database",
    "aws_rds_cluster": "database_cluster",
    "aws_elasticache_cluster": "database_cluster",
    "aws_lb": "load_balancer",
    "aws_alb": "load_balancer",
    "aws_elb": "load_balancer",
    "azurerm_lb": "load_balancer",
    "google_compute_forwarding_rule": "load_balancer",
    "aws_eks_cluster": "kubernetes_cluster",
    "google_container_cluster": "kubernetes_cluster",
    "azurerm_kubernetes_cluster": "kubernetes_cluster",
    "aws_sqs_queue": "message_queue",
    "aws_mq_broker": "message_queue",
    "google_pubsub_topic": "message_queue",
    "aws_s3_bucket": "storage",
    "aws_ebs_volume": "storage",
    "aws_efs_file_system": "storage",
    "google_storage_bucket": "storage",
    "azurerm_storage_account": "storage",
}


def ci_class_for(resource_type: str, mode: str) -> str:
    """The CI class of a resource type; data sources are always ``cloud_resource``."""
    if mode == "data":
        return "cloud_resource"
    return _CLASS_BY_TYPE.get(resource_type, "cloud_resource")


# --------------------------------------------------------------------------------------------
# Entry point


def parse_terraform_state(files: Sequence[SourceFile]) -> Inventory:
    """Terraform state files (format 4, or 3 from Terraform 0.11 and earlier) to CIs that
    DEPENDS_ON what their ``dependencies`` name."""
    inventory = Inventory()
    seen: dict[CiId, str] = {}
    for source in files:
        _parse_state(source, inventory, seen)
    return inventory


def _parse_state(source: SourceFile, inventory: Inventory, seen: dict[CiId, str]) -> None:
    doc = load_json(source, depth=4)
    state = doc.value
    where = doc.where(())
    if not isinstance(state, dict):
        raise ValidationError("a Terraform state is a JSON object", location=where)
    version = state.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValidationError(
            "no state format version: is this a Terraform state file?",
            location=doc.where(("version",)),
            field="version",
        )
    lineage = state.get("lineage")
    prefix = f"{SOURCE}:{lineage}/" if isinstance(lineage, str) and lineage else f"{SOURCE}:"
    if version == 4:
        _check_terraform_version(doc, inventory)
        instances = _read_v4(doc, inventory)
    elif version == 3:
        instances = _read_v3(doc, inventory)
    elif version > 4:
        raise ValidationError(
            f"state format version {version} is newer than this importer reads (3 and 4); "
            "convert it with `terraform show -json` is not a substitute: upgrade the importer",
            location=doc.where(("version",)),
            field="version",
        )
    else:
        raise ValidationError(
            f"state format version {version} predates Terraform 0.7; run `terraform refresh` "
            "with a Terraform of 0.12 or later to upgrade it to format 4",
            location=doc.where(("version",)),
            field="version",
        )

    by_resource: dict[_ResourceKey, list[CiId]] = {}
    for inst in instances:
        ci_id = CiId(prefix + inst.address)
        if ci_id in seen:
            raise ValidationError(
                f"resource instance {inst.address!r} appears twice (first at {seen[ci_id]}); "
                "import one snapshot of a state per run",
                location=inst.location,
                item=inst.address,
            )
        seen[ci_id] = inst.location
        by_resource.setdefault(inst.resource, []).append(ci_id)
        attributes: dict[str, AttributeValue] = {
            "address": inst.address,
            "type": inst.resource.type,
            "mode": inst.resource.mode,
            "provider": inst.provider,
            "module": inst.resource.module or None,
        }
        if inst.index_key is not None:
            attributes["index_key"] = inst.index_key
        if isinstance(lineage, str):
            attributes["lineage"] = lineage
        attributes.update(inst.attributes)
        try:
            ci = ConfigurationItem(
                id=ci_id,
                ci_class=ci_class_for(inst.resource.type, inst.resource.mode),
                name=inst.address[: Limits.MAX_NAME_LENGTH],
                status=inst.status,
                attributes=attributes,
                tags=inst.tags,
            )
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise ValidationError(
                f"cannot build a CI: {exc}", location=inst.location, item=inst.address
            ) from None
        inventory.cis.append(ParsedCi(ci, inst.location))

    for inst in instances:
        source_id = prefix + inst.address
        targets: set[str] = set()
        for raw, field_name in inst.dependencies:
            for target in _resolve_dependency(
                raw, field_name, inst, by_resource=by_resource, prefix=prefix, inventory=inventory
            ):
                if target != source_id and target not in targets:
                    targets.add(target)
                    inventory.relationships.append(
                        ParsedRelationship(
                            source_ref=source_id,
                            type="DEPENDS_ON",
                            target_ref=target,
                            location=inst.location,
                            attributes={"via": field_name},
                        )
                    )


def _check_terraform_version(doc: JsonDocument, inventory: Inventory) -> None:
    raw = doc.value.get("terraform_version")
    match = re.match(r"^(\d+)\.(\d+)", raw) if isinstance(raw, str) else None
    if match and int(match.group(1)) > 1:
        inventory.warnings.append(
            f"{doc.where(('terraform_version',))}: written by Terraform {raw}, newer than any "
            "release this importer was checked against (up to 1.x); read as state format 4, "
            "check the result"
        )


# --------------------------------------------------------------------------------------------
# Format 4 (Terraform 0.12 and later)


def _read_v4(doc: JsonDocument, inventory: Inventory) -> list[_Instance]:
    resources = doc.value.get("resources", [])
    if not isinstance(resources, list):
        raise ValidationError(
            "`resources` must be a list", location=doc.where(("resources",)), field="resources"
        )
    instances: list[_Instance] = []
    for r_index, resource in enumerate(resources):
        path: JsonPath = ("resources", r_index)
        where = doc.where(path)
        item = f"resources[{r_index}]"
        if not isinstance(resource, dict):
            raise ValidationError("a resource is an object", location=where, item=item)
        mode = resource.get("mode", "managed")
        if mode not in ("managed", "data"):
            raise ValidationError(
                f"unknown resource mode {mode!r}", location=where, item=item, field="mode"
            )
        module = resource.get("module", "")
        if not isinstance(module, str):
            raise ValidationError("`module` is a string", location=where, item=item)
        key = _ResourceKey(
            module=_check_module(module, where, item),
            mode=mode,
            type=_check_ident(resource.get("type"), "type", where, item),
            name=_check_ident(resource.get("name"), "name", where, item),
        )
        item = key.address
        provider = resource.get("provider", "")
        raw_instances = resource.get("instances", [])
        if not isinstance(raw_instances, list):
            raise ValidationError(
                "`instances` must be a list", location=where, item=item, field="instances"
            )
        for i_index, raw in enumerate(raw_instances):
            i_where = doc.where((*path, "instances", i_index))
            if not isinstance(raw, dict):
                raise ValidationError("an instance is an object", location=i_where, item=item)
            index_key = raw.get("index_key")
            if index_key is not None and (
                isinstance(index_key, bool) or not isinstance(index_key, int | str)
            ):
                raise ValidationError(
                    f"instance key {index_key!r} is neither a number nor a string",
                    location=i_where,
                    item=item,
                    field="index_key",
                )
            address = key.address + _index_suffix(index_key)
            if raw.get("deposed"):
                inventory.warnings.append(
                    f"{i_where}: item {address!r}: skipped deposed object {raw['deposed']!r} "
                    "(an old instance waiting to be destroyed)"
                )
                continue
            attributes, tags = _kept_attributes(raw, address, i_where)
            deps: list[tuple[str, str]] = []
            for field_name in ("dependencies", "depends_on"):
                listed = raw.get(field_name, [])
                if not isinstance(listed, list) or not all(isinstance(d, str) for d in listed):
                    raise ValidationError(
                        f"`{field_name}` must be a list of addresses",
                        location=i_where,
                        item=address,
                        field=field_name,
                    )
                deps.extend((d, field_name) for d in listed)
            instances.append(
                _Instance(
                    resource=key,
                    index_key=index_key,
                    provider=provider if isinstance(provider, str) else "",
                    attributes=attributes,
                    tags=tags,
                    dependencies=deps,
                    location=i_where,
                    status=(
                        Status.DEGRADED if raw.get("status") == "tainted" else Status.OPERATIONAL
                    ),
                )
            )
    return instances


def _sensitive_names(raw: Mapping[str, Any]) -> set[str]:
    """Top-level attribute names that ``sensitive_attributes`` marks (any path under them)."""
    names: set[str] = set()
    for path in raw.get("sensitive_attributes") or []:
        steps = path if isinstance(path, list) else [path]
        first = steps[0] if steps else None
        if isinstance(first, dict) and first.get("type") == "get_attr":
            names.add(str(first.get("value")))
        elif isinstance(first, str):  # forgiving: a bare name or a dotted path
            names.add(first.split(".")[0])
    return names


def _kept_attributes(
    raw: Mapping[str, Any], address: str, where: str
) -> tuple[dict[str, AttributeValue], tuple[str, ...]]:
    sensitive = _sensitive_names(raw)
    attrs = raw.get("attributes")
    if attrs is None and isinstance(raw.get("attributes_flat"), dict):
        # Legacy flat form ("tags.Name": "web"): rebuild the few nested names we keep.
        attrs = {}
        for flat_key, value in raw["attributes_flat"].items():
            head, _, rest = str(flat_key).partition(".")
            if rest and head == "tags" and rest != "%":
                attrs.setdefault("tags", {})[rest] = value
            elif not rest:
                attrs[head] = value
    if attrs is None:
        attrs = {}
    if not isinstance(attrs, dict):
        raise ValidationError(
            "`attributes` must be an object", location=where, item=address, field="attributes"
        )
    return _pick(attrs, sensitive)


def _pick(
    attrs: Mapping[str, Any], sensitive: set[str]
) -> tuple[dict[str, AttributeValue], tuple[str, ...]]:
    kept: dict[str, AttributeValue] = {}
    for name in KEPT_ATTRIBUTES:
        if name in sensitive or is_secret_name(name) or name not in attrs:
            continue
        value = _safe_scalar(attrs[name])
        if value is not None:
            kept["resource_id" if name == "id" else name] = value
    tags: list[str] = []
    raw_tags = attrs.get("tags")
    if "tags" not in sensitive and isinstance(raw_tags, dict):
        for tag_key, tag_value in sorted(raw_tags.items()):
            text = _safe_scalar(tag_value)
            if is_secret_name(str(tag_key)) or not isinstance(text, str):
                continue
            tag = f"{tag_key}={text}"
            if len(tag) <= 128 and len(tags) < Limits.MAX_TAGS:
                tags.append(tag)
    return kept, tuple(tags)


# --------------------------------------------------------------------------------------------
# Format 3 (Terraform 0.11 and earlier)

_V3_KEY = re.compile(
    rf"^(?P<data>data\.)?(?P<type>{_IDENT})\.(?P<name>[^.]+)(?:\.(?P<index>[0-9]+))?$"
)


def _read_v3(doc: JsonDocument, inventory: Inventory) -> list[_Instance]:
    modules = doc.value.get("modules", [])
    if not isinstance(modules, list):
        raise ValidationError(
            "`modules` must be a list", location=doc.where(("modules",)), field="modules"
        )
    instances: list[_Instance] = []
    for m_index, module in enumerate(modules):
        m_path: JsonPath = ("modules", m_index)
        m_where = doc.where(m_path)
        if not isinstance(module, dict):
            raise ValidationError("a module is an object", location=m_where)
        steps = module.get("path", ["root"])
        if (
            not isinstance(steps, list)
            or not steps
            or steps[0] != "root"
            or not all(isinstance(s, str) for s in steps)
        ):
            raise ValidationError(
                f"module path {steps!r} does not start at root", location=m_where, field="path"
            )
        module_address = ".".join(f"module.{step}" for step in steps[1:])
        _check_module(module_address, m_where, module_address)
        resources = module.get("resources", {})
        if not isinstance(resources, dict):
            raise ValidationError(
                "`resources` must be an object", location=m_where, field="resources"
            )
        for res_key, resource in resources.items():
            where = doc.where((*m_path, "resources", res_key))
            item = f"{module_address}.{res_key}" if module_address else res_key
            match = _V3_KEY.match(res_key)
            if not match or not isinstance(resource, dict):
                raise ValidationError(
                    "invalid resource key (expected TYPE.NAME or TYPE.NAME.INDEX)",
                    location=where,
                    item=item,
                )
            key = _ResourceKey(
                module=module_address,
                mode="data" if match["data"] else "managed",
                type=match["type"],
                name=_check_ident(match["name"], "name", where, item),
            )
            index_key = int(match["index"]) if match["index"] is not None else None
            address = key.address + _index_suffix(index_key)
            primary = resource.get("primary") or {}
            if not isinstance(primary, dict):
                raise ValidationError(
                    "`primary` is an object", location=where, item=address, field="primary"
                )
            flat = primary.get("attributes") or {}
            attrs: dict[str, Any] = {}
            for flat_key, value in flat.items() if isinstance(flat, dict) else ():
                head, _, rest = str(flat_key).partition(".")
                if rest and head == "tags" and rest != "%":
                    attrs.setdefault("tags", {})[rest] = value
                elif not rest:
                    attrs[head] = value
            kept, tags = _pick(attrs, set())
            if resource.get("deposed"):
                inventory.warnings.append(
                    f"{where}: item {address!r}: skipped {len(resource['deposed'])} deposed "
                    "object(s) (old instances waiting to be destroyed)"
                )
            depends = resource.get("depends_on", [])
            if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
                raise ValidationError(
                    "`depends_on` must be a list of addresses",
                    location=where,
                    item=address,
                    field="depends_on",
                )
            # v3 addresses are relative to the module that holds the resource.
            prefix = f"{module_address}." if module_address else ""
            instances.append(
                _Instance(
                    resource=key,
                    index_key=index_key,
                    provider=str(resource.get("provider", "")),
                    attributes=kept,
                    tags=tags,
                    dependencies=[(prefix + d, "depends_on") for d in depends],
                    location=where,
                    status=Status.DEGRADED if primary.get("tainted") else Status.OPERATIONAL,
                )
            )
    return instances


# --------------------------------------------------------------------------------------------
# Dependencies


def _resolve_dependency(
    raw: str,
    field_name: str,
    inst: _Instance,
    *,
    by_resource: Mapping[_ResourceKey, list[CiId]],
    prefix: str,
    inventory: Inventory,
) -> list[str]:
    """CI ids an address in ``dependencies``/``depends_on`` stands for: every instance of the
    named resource; the bare address when the state does not hold it (a dangling reference the
    engine keeps as a placeholder). Variables and other non-resources are ignored; an invalid
    address is reported and skipped, as Terraform itself drops it."""
    if _NON_RESOURCE.match(raw):
        return []
    match = _RESOURCE_REF.match(raw)
    if not match:
        if _MODULE_PATH.match(raw):
            inventory.warnings.append(
                f"{inst.location}: item {inst.address!r} field {field_name!r}: dependency on "
                f"a whole module {raw!r} is not expanded to its resources; skipped"
            )
        else:
            inventory.warnings.append(
                f"{inst.location}: item {inst.address!r} field {field_name!r}: invalid resource "
                f"address {raw!r}; skipped"
            )
        return []
    module = match["module"].rstrip(".")
    key = _ResourceKey(module, "data" if match["data"] else "managed", match["type"], match["name"])
    v3index = match["v3index"]
    instance_key = match["key"]
    found = by_resource.get(key)
    if found and instance_key is None and v3index in (None, "*"):
        return list(found)
    if v3index not in (None, "*"):
        wanted = prefix + key.address + f"[{v3index}]"
    elif instance_key is not None:
        wanted = prefix + key.address + instance_key
    else:
        wanted = prefix + key.address
    if found and wanted in found:
        return [wanted]
    if found and instance_key is None and v3index is not None:
        return list(found)
    inventory.warnings.append(
        f"{inst.location}: item {inst.address!r} field {field_name!r}: {raw!r} is not in this "
        "state; kept as a reference to a CI it does not define"
    )
    return [wanted]
