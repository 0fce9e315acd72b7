"""NetBox (REST API pages or ``manage.py dumpdata`` JSON) to an Inventory.

Identity is the NetBox object, ``netbox:<app>.<model>:<pk>`` (``netbox:dcim.device:12``),
never its name: names repeat across sites and may be empty.

Sites, locations, racks, devices, power panels and feeds, circuits, clusters and virtual
machines become CIs. Ports (interfaces, front/rear ports, power ports and outlets, circuit
terminations) do not: a cable between two ports becomes one relationship between the objects
that own them, pointing at the side whose failure hurts the other (a server CONNECTS_TO its
switch, a router CONNECTS_TO its circuit, a device is POWERED_BY its PDU). See
``docs/importers/netbox.md``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from graph.errors import ValidationError
from graph.model import AttributeValue, CiId, ConfigurationItem, Limits, Status
from importers.base import Inventory, ParsedCi, ParsedRelationship, SourceFile
from importers.json_source import load_json

SUFFIXES: tuple[str, ...] = (".json",)
SOURCE = "netbox"

# REST endpoint ("dcim/power-ports") -> model label ("dcim.powerport")
ENDPOINTS: dict[str, str] = {
    "dcim/sites": "dcim.site",
    "dcim/locations": "dcim.location",
    "dcim/racks": "dcim.rack",
    "dcim/devices": "dcim.device",
    "dcim/device-roles": "dcim.devicerole",
    "dcim/interfaces": "dcim.interface",
    "dcim/front-ports": "dcim.frontport",
    "dcim/rear-ports": "dcim.rearport",
    "dcim/console-ports": "dcim.consoleport",
    "dcim/console-server-ports": "dcim.consoleserverport",
    "dcim/power-ports": "dcim.powerport",
    "dcim/power-outlets": "dcim.poweroutlet",
    "dcim/power-panels": "dcim.powerpanel",
    "dcim/power-feeds": "dcim.powerfeed",
    "dcim/cables": "dcim.cable",
    "dcim/cable-terminations": "dcim.cabletermination",
    "circuits/circuits": "circuits.circuit",
    "circuits/circuit-terminations": "circuits.circuittermination",
    "virtualization/clusters": "virtualization.cluster",
    "virtualization/virtual-machines": "virtualization.virtualmachine",
}
_BY_PLURAL = {endpoint.split("/")[1]: model for endpoint, model in ENDPOINTS.items()}
_URL = re.compile(r"/api/([a-z-]+)/([a-z-]+)/\d+/?$")

# Models that become CIs: model -> class (devices are classed by their role, below).
CI_MODELS: dict[str, str] = {
    "dcim.site": "site",
    "dcim.location": "site",
    "dcim.rack": "rack",
    "dcim.device": "server",
    "dcim.powerpanel": "power_device",
    "dcim.powerfeed": "power_device",
    "circuits.circuit": "circuit",
    "virtualization.cluster": "hypervisor_cluster",
    "virtualization.virtualmachine": "virtual_machine",
}
# Cabled ports: model -> (kind, field naming the CI that owns the port, owner model).
PORTS: dict[str, tuple[str, str, str]] = {
    "dcim.interface": ("data", "device", "dcim.device"),
    "dcim.frontport": ("data", "device", "dcim.device"),
    "dcim.rearport": ("data", "device", "dcim.device"),
    "circuits.circuittermination": ("data", "circuit", "circuits.circuit"),
    "dcim.powerport": ("power_in", "device", "dcim.device"),
    "dcim.poweroutlet": ("power_out", "device", "dcim.device"),
    "dcim.powerfeed": ("power_out", "", "dcim.powerfeed"),
    "dcim.consoleport": ("console", "device", "dcim.device"),
    "dcim.consoleserverport": ("console", "device", "dcim.device"),
}
_READ_ONLY = {"dcim.devicerole", "dcim.cable", "dcim.cabletermination"}

# Device roles by how far upstream they sit: a cable points from the lower to the higher tier.
_TIERS: tuple[tuple[str, int], ...] = (
    (r"router|firewall|edge|gateway|border|wan", 6),
    (r"core|spine", 5),
    (r"distribution|aggregation", 4),
    (r"access[- ]?point|wireless|\bap\b", 2),
    (r"patch|panel", 1),
    (r"switch|leaf|access|tor|console|oob|network", 3),
)
_CIRCUIT_TIER = 7
_POWER_ROLE = re.compile(r"pdu|power|ups")


def device_tier(role: str) -> int:
    """0 for end hosts; higher for devices further upstream (patch panel 1 ... router 6)."""
    for pattern, tier in _TIERS:
        if re.search(pattern, role):
            return tier
    return 0


# --------------------------------------------------------------------------------------------
# Records


@dataclass(slots=True)
class _Record:
    model: str
    pk: int
    fields: Mapping[str, Any]
    location: str
    item: str

    @property
    def ci_id(self) -> CiId:
        return ci_id(self.model, self.pk)


def ci_id(model: str, pk: int) -> CiId:
    return CiId(f"{SOURCE}:{model}:{pk}")


def _fk(value: Any) -> int | None:
    """A foreign key as REST nests it (``{"id": 3, ...}``) or dumpdata writes it (``3``)."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _choice(value: Any) -> str | None:
    """A choice field: REST ``{"value": "active", "label": "Active"}``, dumpdata ``"active"``."""
    if isinstance(value, dict):
        value = value.get("value")
    return value if isinstance(value, str) and value else None


def _text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("name") or value.get("display") or value.get("address")
    if isinstance(value, str) and value.strip():
        return value.strip()[: Limits.MAX_TEXT_LENGTH]
    return None


def _content_type(value: Any) -> str | None:
    """``"dcim.interface"``, ``["dcim", "interface"]`` (natural key) -> ``"dcim.interface"``."""
    if isinstance(value, str) and "." in value:
        return value
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return f"{value[0]}.{value[1]}"
    return None


@dataclass(slots=True)
class _Run:
    records: dict[str, dict[int, _Record]] = field(default_factory=lambda: defaultdict(dict))
    # cable pk -> end ("A"/"B") -> ports (model, pk)
    cable_ends: dict[int, dict[str, set[tuple[str, int]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )
    # ports seen only inside a REST cable: (model, pk) -> (owner model, owner pk, name)
    port_owners: dict[tuple[str, int], tuple[str, int, str]] = field(default_factory=dict)
    page_counts: dict[str, int] = field(default_factory=dict)
    ignored: dict[str, int] = field(default_factory=lambda: defaultdict(int))


# --------------------------------------------------------------------------------------------
# Reading files


def _records(source: SourceFile, run: _Run, inventory: Inventory) -> Iterator[_Record]:
    doc = load_json(source, depth=2)
    value = doc.value
    if isinstance(value, dict) and isinstance(value.get("results"), list):
        items: list[Any] = value["results"]
        base: tuple[str | int, ...] = ("results",)
        count = value.get("count")
        if value.get("next"):
            inventory.warnings.append(
                f"{doc.where(('next',))}: this is one page of a paged list (next: "
                f"{value['next']}); fetch every page, or the run is marked incomplete"
            )
    elif isinstance(value, list):
        items, base, count = value, (), None
    else:
        raise ValidationError(
            'expected a NetBox REST list ({"count": ..., "results": [...]}) or a dumpdata '
            "export (a list of {model, pk, fields})",
            location=doc.where(()),
        )
    file_model = _model_from_name(source.name)
    models_here: set[str] = set()
    for index, raw in enumerate(items):
        path = (*base, index)
        where = doc.where(path)
        item = f"{'results' if base else ''}[{index}]"
        if not isinstance(raw, dict):
            raise ValidationError("a record is an object", location=where, item=item)
        if "model" in raw and "fields" in raw:
            model = raw["model"]
            pk = raw.get("pk")
            fields = raw["fields"]
            if not isinstance(fields, dict) or not isinstance(model, str):
                raise ValidationError(
                    "a dumpdata record has a model name and a fields object",
                    location=where,
                    item=item,
                )
        else:
            model = _model_from_url(raw.get("url")) or file_model
            pk = raw.get("id")
            fields = raw
            if model is None:
                raise ValidationError(
                    "cannot tell which NetBox object this is: it has no `url` and the file is "
                    "not named after its endpoint (devices.json, power-ports.json...)",
                    location=where,
                    item=item,
                    field="url",
                )
        if model not in CI_MODELS and model not in PORTS and model not in _READ_ONLY:
            run.ignored[model] += 1
            continue
        if isinstance(pk, bool) or not isinstance(pk, int):
            raise ValidationError(
                f"primary key {pk!r} is not an integer", location=where, item=item, field="pk"
            )
        models_here.add(model)
        yield _Record(model, pk, fields, where, f"{model}:{pk}")
    if isinstance(count, int) and len(models_here) == 1:
        model = next(iter(models_here))
        run.page_counts[model] = max(run.page_counts.get(model, 0), count)


def _model_from_url(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    match = _URL.search(url)
    return ENDPOINTS.get(f"{match.group(1)}/{match.group(2)}") if match else None


def _model_from_name(name: str) -> str | None:
    stem = PurePath(name).name.split(".")[0].lower().replace("_", "-")
    found = [plural for plural in _BY_PLURAL if re.search(rf"(^|-){plural}($|-)", stem)]
    return _BY_PLURAL[max(found, key=len)] if found else None


# --------------------------------------------------------------------------------------------
# Entry point


def parse_netbox(files: Sequence[SourceFile]) -> Inventory:
    """NetBox REST pages and/or dumpdata exports to CIs keyed by NetBox object and
    relationships for placement, cabling, power and virtualization."""
    inventory = Inventory()
    run = _Run()
    for source in files:
        for record in _records(source, run, inventory):
            # The same object on two pages or in two exports: the later one wins.
            run.records[record.model][record.pk] = record
    if run.ignored:
        shown = ", ".join(f"{m} ({n})" for m, n in sorted(run.ignored.items())[:12])
        inventory.warnings.append(
            f"ignored {sum(run.ignored.values())} records of models this importer does not "
            f"map: {shown}{', ...' if len(run.ignored) > 12 else ''}"
        )
    for model, count in sorted(run.page_counts.items()):
        got = len(run.records.get(model, {}))
        if got < count:
            inventory.complete = False
            inventory.warnings.append(
                f"only {got} of {count} {model} objects were given (missing pages); the run "
                "is incomplete, so nothing will be marked absent"
            )

    relationships: dict[tuple[str, str, str], ParsedRelationship] = {}

    def relate(
        source: str, rel_type: str, target: str, where: str, attrs: dict[str, AttributeValue]
    ) -> None:
        key = (source, rel_type, target)
        if rel_type == "PEERS_WITH" and (target, rel_type, source) in relationships:
            key = (target, rel_type, source)
        existing = relationships.get(key)
        if existing is None:
            relationships[key] = ParsedRelationship(key[0], rel_type, key[2], where, dict(attrs))
            return
        for name, value in attrs.items():  # parallel cables: one relationship, every cable
            merged = existing.attributes.get(name)
            values = merged if isinstance(merged, list) else [merged]
            extra = value if isinstance(value, list) else [value]
            combined = [*values, *(v for v in extra if v not in values)]
            existing.attributes[name] = combined[: Limits.MAX_LIST_ITEMS]

    for model in CI_MODELS:
        for record in run.records.get(model, {}).values():
            inventory.cis.append(ParsedCi(_ci(record, run), record.location))
            for rel_type, target in _placement(record):
                relate(record.ci_id, rel_type, target, record.location, {})
    _collect_cable_ends(run, inventory)
    _cables(run, inventory, relate)
    inventory.relationships.extend(relationships.values())
    return inventory


# --------------------------------------------------------------------------------------------
# CIs


def _role(record: _Record, run: _Run) -> str:
    raw = record.fields.get("role") or record.fields.get("device_role")
    if isinstance(raw, dict):
        return f"{raw.get('slug', '')} {raw.get('name', '')}".lower()
    pk = _fk(raw)
    role = run.records.get("dcim.devicerole", {}).get(pk) if pk is not None else None
    if role is not None:
        return f"{role.fields.get('slug', '')} {role.fields.get('name', '')}".lower()
    return ""


def _device_class(role: str) -> str:
    if _POWER_ROLE.search(role):
        return "power_device"
    return "network_device" if device_tier(role) > 0 else "server"


_STATUS = {
    "offline": Status.DOWN,
    "failed": Status.DOWN,
    "decommissioning": Status.RETIRED,
    "retired": Status.RETIRED,
    "deprovisioning": Status.RETIRED,
}


def _ci(record: _Record, run: _Run) -> ConfigurationItem:
    f = record.fields
    ci_class = CI_MODELS[record.model]
    attributes: dict[str, AttributeValue] = {"netbox_model": record.model, "netbox_id": record.pk}
    if record.model == "dcim.device":
        role = _role(record, run)
        ci_class = _device_class(role)
        attributes["role"] = _text(f.get("role") or f.get("device_role")) or role.strip() or None
        attributes["device_type"] = _text(f.get("device_type"))
        attributes["serial_number"] = _text(f.get("serial"))
        attributes["asset_tag"] = _text(f.get("asset_tag"))
        attributes["platform"] = _text(f.get("platform"))
    if record.model == "virtualization.cluster":
        kind = (_text(f.get("type")) or "").lower()
        if "kubernetes" in kind or "k8s" in kind:
            ci_class = "kubernetes_cluster"
        attributes["cluster_type"] = _text(f.get("type"))
    if record.model == "circuits.circuit":
        attributes["provider"] = _text(f.get("provider"))
        attributes["circuit_type"] = _text(f.get("type"))
    if record.model in ("dcim.device", "virtualization.virtualmachine"):
        address = _text(f.get("primary_ip4") or f.get("primary_ip"))
        attributes["ip_address"] = address.split("/")[0] if address else None
    attributes["tenant"] = _text(f.get("tenant"))
    if record.model == "dcim.site":
        attributes["facility"] = _text(f.get("facility"))
    if record.model == "dcim.powerfeed":
        for name in ("type", "supply", "phase", "voltage", "amperage"):
            value = f.get(name)
            number = isinstance(value, int) and not isinstance(value, bool)
            attributes[f"feed_{name}"] = value if number else _choice(value)
    status_value = _choice(f.get("status"))
    if status_value:
        attributes["netbox_status"] = status_value
    name = (
        _text(f.get("name"))
        or _text(f.get("cid"))
        or _text(f.get("display"))
        or f"{record.model.split('.')[1]} {record.pk}"
    )
    try:
        return ConfigurationItem(
            id=record.ci_id,
            ci_class=ci_class,
            name=name[: Limits.MAX_NAME_LENGTH],
            status=_STATUS.get(status_value or "", Status.OPERATIONAL),
            description=_text(f.get("description")),
            attributes={k: v for k, v in attributes.items() if v is not None},
        )
    except ValueError as exc:
        raise ValidationError(
            f"cannot build a CI: {exc}", location=record.location, item=record.item
        ) from None


def _placement(record: _Record) -> Iterator[tuple[str, str]]:
    """Where a CI sits and what it runs on, from its own foreign keys."""
    f = record.fields
    site, location, rack = _fk(f.get("site")), _fk(f.get("location")), _fk(f.get("rack"))
    if record.model in ("dcim.location", "dcim.rack", "dcim.device", "dcim.powerpanel"):
        if site is not None:
            yield "LOCATED_IN", ci_id("dcim.site", site)
        if rack is not None and record.model == "dcim.device":
            yield "LOCATED_IN", ci_id("dcim.rack", rack)
        elif location is not None:
            yield "LOCATED_IN", ci_id("dcim.location", location)
    if record.model == "dcim.device":
        cluster = _fk(f.get("cluster"))
        if cluster is not None:
            yield "PART_OF", ci_id("virtualization.cluster", cluster)
    if record.model == "dcim.powerfeed":
        panel = _fk(f.get("power_panel"))
        if panel is not None:
            yield "POWERED_BY", ci_id("dcim.powerpanel", panel)
    if record.model == "virtualization.cluster" and site is not None:
        yield "LOCATED_IN", ci_id("dcim.site", site)
    if record.model == "virtualization.virtualmachine":
        cluster, device = _fk(f.get("cluster")), _fk(f.get("device"))
        if cluster is not None:
            yield "HOSTED_ON", ci_id("virtualization.cluster", cluster)
        if device is not None:  # pinned to one host: that host going down takes it down
            yield "HOSTED_ON", ci_id("dcim.device", device)


# --------------------------------------------------------------------------------------------
# Cables


def _collect_cable_ends(run: _Run, inventory: Inventory) -> None:
    """Every (cable, end) -> port fact, whichever shape carried it."""
    for model in PORTS:
        for record in run.records.get(model, {}).values():
            cable, end = _fk(record.fields.get("cable")), _choice(record.fields.get("cable_end"))
            if cable is not None and end in ("A", "B"):
                run.cable_ends[cable][end].add((model, record.pk))
    for record in run.records.get("dcim.cabletermination", {}).values():  # dumpdata >= 3.3
        f = record.fields
        term_model = _content_type(f.get("termination_type"))
        port, cable = _fk(f.get("termination_id")), _fk(f.get("cable"))
        end = f.get("cable_end")
        if term_model is None or port is None or cable is None or end not in ("A", "B"):
            inventory.warnings.append(
                f"{record.location}: item {record.item!r}: cable termination without a "
                "readable termination_type/termination_id/cable/cable_end; skipped"
            )
            continue
        run.cable_ends[cable][str(end)].add((term_model, port))
    for record in run.records.get("dcim.cable", {}).values():
        f = record.fields
        for end in ("A", "B"):
            side = end.lower()
            for term in f.get(f"{side}_terminations") or []:  # REST >= 3.3
                if isinstance(term, dict):
                    _note_port(
                        run,
                        record.pk,
                        end,
                        type_=term.get("object_type"),
                        pk=term.get("object_id"),
                        obj=term.get("object"),
                    )
            if f.get(f"termination_{side}_type") is not None:  # REST and dumpdata < 3.3
                _note_port(
                    run,
                    record.pk,
                    end,
                    type_=f.get(f"termination_{side}_type"),
                    pk=f.get(f"termination_{side}_id"),
                    obj=f.get(f"termination_{side}"),
                )


def _note_port(run: _Run, cable: int, end: str, *, type_: Any, pk: Any, obj: Any) -> None:
    model = _content_type(type_)
    port = _fk(pk)
    if model is None or port is None:
        return
    run.cable_ends[cable][end].add((model, port))
    if isinstance(obj, dict) and model in PORTS:
        _, owner_field, owner_model = PORTS[model]
        owner = _fk(obj.get(owner_field)) if owner_field else port
        if owner is not None:
            run.port_owners[(model, port)] = (owner_model, owner, _text(obj) or "")


def _owner(run: _Run, port: tuple[str, int]) -> tuple[str, int, str] | None:
    model, pk = port
    if model not in PORTS:
        return None
    _, owner_field, owner_model = PORTS[model]
    record = run.records.get(model, {}).get(pk)
    if record is not None:
        owner = _fk(record.fields.get(owner_field)) if owner_field else pk
        return (owner_model, owner, _text(record.fields) or "") if owner is not None else None
    return run.port_owners.get(port)


def _tier(run: _Run, owner_model: str, owner_pk: int) -> int:
    if owner_model == "circuits.circuit":
        return _CIRCUIT_TIER
    device = run.records.get("dcim.device", {}).get(owner_pk)
    return device_tier(_role(device, run)) if device is not None else 0


def _cables(run: _Run, inventory: Inventory, relate: Any) -> None:
    cables = run.records.get("dcim.cable", {})
    one_ended = sorted(pk for pk, ends in run.cable_ends.items() if not (ends["A"] and ends["B"]))
    if one_ended:
        shown = ", ".join(str(pk) for pk in one_ended[:10])
        inventory.warnings.append(
            f"{len(one_ended)} cables have only one end in this run (cable {shown}"
            f"{', ...' if len(one_ended) > 10 else ''}); add the ports or cables of the other "
            "end to relate them"
        )
    for cable_pk in sorted(run.cable_ends):
        ends = run.cable_ends[cable_pk]
        record = cables.get(cable_pk)
        status = _choice(record.fields.get("status")) if record is not None else None
        if status in ("planned", "decommissioning"):
            continue
        where = record.location if record is not None else ""
        for a in sorted(ends.get("A", ())):
            for b in sorted(ends.get("B", ())):
                owner_a, owner_b = _owner(run, a), _owner(run, b)
                here = where or _port_location(run, a) or _port_location(run, b)
                if owner_a is None or owner_b is None:
                    missing = a if owner_a is None else b
                    inventory.warnings.append(
                        f"{here}: item 'dcim.cable:{cable_pk}': cannot tell which device owns "
                        f"{missing[0]}:{missing[1]} (add its export to the run); cable skipped"
                    )
                    continue
                _relate_cable(
                    run,
                    inventory,
                    relate,
                    cable_pk=cable_pk,
                    a=a,
                    b=b,
                    owner_a=owner_a,
                    owner_b=owner_b,
                    where=here,
                )


def _port_location(run: _Run, port: tuple[str, int]) -> str:
    record = run.records.get(port[0], {}).get(port[1])
    return record.location if record is not None else ""


def _relate_cable(
    run: _Run,
    inventory: Inventory,
    relate: Any,
    *,
    cable_pk: int,
    a: tuple[str, int],
    b: tuple[str, int],
    owner_a: tuple[str, int, str],
    owner_b: tuple[str, int, str],
    where: str,
) -> None:
    kind_a, kind_b = PORTS[a[0]][0], PORTS[b[0]][0]
    id_a, id_b = ci_id(owner_a[0], owner_a[1]), ci_id(owner_b[0], owner_b[1])
    if id_a == id_b or "console" in (kind_a, kind_b):
        return  # loopbacks; console cables carry management access, not service
    attrs: dict[str, AttributeValue] = {"cables": [cable_pk]}
    if {kind_a, kind_b} == {"power_in", "power_out"}:
        consumer, supplier = (id_a, id_b) if kind_a == "power_in" else (id_b, id_a)
        relate(consumer, "POWERED_BY", supplier, where, attrs)
        return
    if kind_a != "data" or kind_b != "data":
        inventory.warnings.append(
            f"{where}: item 'dcim.cable:{cable_pk}': a {a[0]} cabled to a {b[0]}; skipped"
        )
        return
    attrs["ports"] = [f"{owner_a[2]} <-> {owner_b[2]}"]
    tier_a, tier_b = _tier(run, *owner_a[:2]), _tier(run, *owner_b[:2])
    if tier_a == tier_b:
        relate(id_a, "PEERS_WITH", id_b, where, attrs)
    elif tier_a < tier_b:
        relate(id_a, "CONNECTS_TO", id_b, where, attrs)
    else:
        relate(id_b, "CONNECTS_TO", id_a, where, attrs)
