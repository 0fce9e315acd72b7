"""The NetBox importer on a verbatim excerpt of NetBox's demo data (dumpdata, v3.6) and on a
hand-written REST API set (tests/fixtures/netbox/PROVENANCE.md)."""

from __future__ import annotations

import json
from pathlib import Path

from graph.errors import ValidationError
from graph.model import DEFAULT_REGISTRY, DEFAULT_RELATIONSHIP_TYPES, Propagation, Status
from importers.base import Inventory, SourceFile, expand_paths
from importers.netbox import SUFFIXES, parse_netbox

FIXTURES = Path(__file__).parents[2] / "fixtures" / "netbox"
REST = FIXTURES / "rest-api"
DEMO = FIXTURES / "demo-v3.6-dumpdata-excerpt.json"
PROPAGATION = {t.name: t.propagation for t in DEFAULT_RELATIONSHIP_TYPES}


def parse(*paths: Path) -> Inventory:
    return parse_netbox(expand_paths(list(paths), SUFFIXES))


def inline(name: str, value: object) -> Inventory:
    return parse_netbox([SourceFile(name=name, data=json.dumps(value, indent=1).encode())])


def affected(inv: Inventory, failed: str) -> set[str]:
    """Brute-force propagation along the registry's directions (what impact analysis does)."""
    down, frontier = {failed}, [failed]
    while frontier:
        current = frontier.pop()
        for rel in inv.relationships:
            way = PROPAGATION[rel.type]
            hit = []
            if rel.target_ref == current and way in (Propagation.TO_SOURCE, Propagation.BOTH):
                hit.append(rel.source_ref)
            if rel.source_ref == current and way in (Propagation.TO_TARGET, Propagation.BOTH):
                hit.append(rel.target_ref)
            for ci in hit:
                if ci not in down:
                    down.add(ci)
                    frontier.append(ci)
    return down - {failed}


def dev(pk: int) -> str:
    return f"netbox:dcim.device:{pk}"


# -------------------------------------------------------------------------------- REST API


def test_rest_objects_become_cis_keyed_by_netbox_object_never_by_name():
    inv = parse(REST)
    by_id = {str(c.ci.id): c.ci for c in inv.cis}
    assert by_id[dev(6)].name == by_id[dev(7)].name == "web01"  # same name, two devices
    assert by_id[dev(5)].name == "Server (5)"  # unnamed device: its display
    assert {by_id[dev(n)].ci_class for n in (1, 2, 3, 9)} == {"network_device"}
    assert by_id[dev(4)].ci_class == "power_device"
    assert by_id[dev(6)].ci_class == "server"
    assert by_id[dev(6)].attributes["serial_number"] == "7XK2Q94"
    assert by_id[dev(6)].attributes["ip_address"] == "10.1.0.16"
    assert by_id["netbox:circuits.circuit:1"].name == "CID-1001"
    assert by_id["netbox:virtualization.virtualmachine:3"].status is Status.DOWN
    for ci in by_id.values():
        DEFAULT_REGISTRY.ci_class(ci.ci_class)
    assert inv.complete
    assert inv.warnings == []


def test_cables_point_at_the_upstream_side():
    inv = parse(REST)
    edges = {(r.source_ref, r.type, r.target_ref) for r in inv.relationships}
    assert {
        (dev(1), "CONNECTS_TO", "netbox:circuits.circuit:1"),  # router uplink on the circuit
        (dev(2), "CONNECTS_TO", dev(1)),  # core -> router
        (dev(3), "CONNECTS_TO", dev(2)),  # access -> core
        (dev(6), "CONNECTS_TO", dev(3)),  # server -> access switch
        (dev(5), "CONNECTS_TO", dev(3)),
        (dev(9), "CONNECTS_TO", dev(3)),  # patch panel -> switch ...
        (dev(8), "CONNECTS_TO", dev(9)),  # ... server -> patch panel
        (dev(6), "POWERED_BY", dev(4)),  # a PDU feeds a device
        (dev(8), "POWERED_BY", dev(4)),
        (dev(4), "POWERED_BY", "netbox:dcim.powerfeed:1"),
        ("netbox:dcim.powerfeed:1", "POWERED_BY", "netbox:dcim.powerpanel:1"),
        (dev(6), "LOCATED_IN", dev(0).replace("dcim.device:0", "dcim.rack:1")),
        (dev(6), "LOCATED_IN", "netbox:dcim.site:1"),
        ("netbox:dcim.rack:1", "LOCATED_IN", "netbox:dcim.site:1"),
        ("netbox:virtualization.virtualmachine:1", "HOSTED_ON", "netbox:virtualization.cluster:1"),
        ("netbox:virtualization.virtualmachine:2", "HOSTED_ON", dev(8)),  # pinned to a host
        (dev(8), "PART_OF", "netbox:virtualization.cluster:1"),
    } <= edges
    # planned cable 9 (web01@dc2) and console cable 13 carry nothing
    assert not any(dev(7) in (s, t) and k == "CONNECTS_TO" for s, k, t in edges)
    assert (dev(6), "CONNECTS_TO", dev(3)) in edges and (dev(3), "CONNECTS_TO", dev(6)) not in edges


def test_parallel_cables_are_one_relationship_listing_every_cable():
    inv = parse(REST)
    [rel] = [r for r in inv.relationships if (r.source_ref, r.target_ref) == (dev(6), dev(3))]
    assert rel.attributes["cables"] == [4, 5]
    assert rel.attributes["ports"] == ["ge-0/0/1 <-> eth0", "ge-0/0/2 <-> eth1"]
    assert rel.location == f"{REST / 'cables.json'}:199"


def test_failures_travel_the_right_way():
    inv = parse(REST)
    web01, esx01, pdu, access = dev(6), dev(8), dev(4), dev(3)
    assert web01 in affected(inv, access)  # upstream switch down => attached device affected
    assert access not in affected(inv, web01)  # a server down hurts no switch
    assert {web01, esx01} <= affected(inv, pdu)
    assert pdu not in affected(inv, web01)
    circuit = affected(inv, "netbox:circuits.circuit:1")
    assert {dev(1), dev(2), access, web01, dev(5), esx01} <= circuit
    assert "netbox:virtualization.virtualmachine:2" in affected(inv, esx01)
    assert "netbox:virtualization.virtualmachine:1" in affected(
        inv, "netbox:virtualization.cluster:1"
    )
    assert dev(7) not in affected(inv, "netbox:dcim.site:1")  # web01 in DC2


# -------------------------------------------------------------------------------- dumpdata


def test_real_dumpdata_excerpt():
    inv = parse(DEMO)
    by_id = {str(c.ci.id): c for c in inv.cis}
    assert len(inv.cis) == 13  # 4 power feeds, 9 virtual machines; ports are not CIs
    feed = by_id["netbox:dcim.powerfeed:45"]
    assert (feed.ci.name, feed.ci.ci_class) == ("P3-7A", "power_device")
    assert feed.location == f"{DEMO}:570"
    assert DEMO.read_text().splitlines()[569] == "{"
    assert feed.ci.attributes["feed_voltage"] == 220
    edges = {(r.source_ref, r.type, r.target_ref) for r in inv.relationships}
    assert ("netbox:dcim.powerfeed:45", "POWERED_BY", "netbox:dcim.powerpanel:3") in edges
    assert (
        "netbox:virtualization.virtualmachine:401",
        "HOSTED_ON",
        "netbox:virtualization.cluster:7",
    ) in edges
    # an excerpt holds one end of each cable: said once, not silently dropped
    [warning] = inv.warnings
    assert warning.startswith("16 cables have only one end in this run")


def _interface(pk: int, device: int, name: str, cable: int, end: str) -> dict[str, object]:
    fields = {"device": device, "name": name, "cable": cable, "cable_end": end}
    return {"model": "dcim.interface", "pk": pk, "fields": fields}


def test_dumpdata_cables_pair_by_cable_end_and_by_cable_terminations():
    records = [
        {
            "model": "dcim.devicerole",
            "pk": 1,
            "fields": {"name": "Access Switch", "slug": "access"},
        },
        {"model": "dcim.devicerole", "pk": 2, "fields": {"name": "Server", "slug": "server"}},
        {"model": "dcim.device", "pk": 10, "fields": {"name": "sw", "role": 1, "site": 1}},
        {"model": "dcim.device", "pk": 11, "fields": {"name": "", "device_role": 2, "site": 1}},
        {"model": "dcim.device", "pk": 12, "fields": {"name": "db", "role": 2, "site": 1}},
        _interface(1, 10, "ge-0/0/1", 7, "A"),
        _interface(2, 11, "eth0", 7, "B"),
        {"model": "dcim.interface", "pk": 3, "fields": {"device": 10, "name": "ge-0/0/2"}},
        {"model": "dcim.interface", "pk": 4, "fields": {"device": 12, "name": "eth0"}},
        {
            "model": "dcim.cabletermination",
            "pk": 1,
            "fields": {
                "cable": 8,
                "cable_end": "A",
                "termination_type": ["dcim", "interface"],
                "termination_id": 4,
            },
        },
        {
            "model": "dcim.cabletermination",
            "pk": 2,
            "fields": {
                "cable": 8,
                "cable_end": "B",
                "termination_type": ["dcim", "interface"],
                "termination_id": 3,
            },
        },
        {"model": "contenttypes.contenttype", "fields": {"app_label": "dcim", "model": "x"}},
    ]
    inv = inline("dump.json", records)
    edges = {(r.source_ref, r.type, r.target_ref) for r in inv.relationships}
    assert (dev(11), "CONNECTS_TO", dev(10)) in edges
    assert (dev(12), "CONNECTS_TO", dev(10)) in edges
    names = {str(c.ci.id): c.ci.name for c in inv.cis}
    assert names[dev(11)] == "device 11"  # empty name: the object, never ""
    assert any("contenttypes.contenttype (1)" in w for w in inv.warnings)


def test_rest_cables_before_netbox_3_3():
    cable = {
        "id": 3,
        "url": "http://nb/api/dcim/cables/3/",
        "termination_a_type": "dcim.powerport",
        "termination_a_id": 1,
        "termination_a": {"id": 1, "device": {"id": 20, "name": "srv"}, "name": "PSU1"},
        "termination_b_type": "dcim.poweroutlet",
        "termination_b_id": 2,
        "termination_b": {"id": 2, "device": {"id": 21, "name": "pdu"}, "name": "Outlet 2"},
        "status": {"value": "connected", "label": "Connected"},
    }
    inv = inline("cables.json", {"count": 1, "next": None, "previous": None, "results": [cable]})
    [rel] = inv.relationships
    assert (rel.source_ref, rel.type, rel.target_ref) == (dev(20), "POWERED_BY", dev(21))


def test_a_missing_page_marks_the_run_incomplete():
    page = {
        "count": 3,
        "next": "http://nb/api/dcim/sites/?limit=2&offset=2",
        "previous": None,
        "results": [
            {"id": 1, "url": "http://nb/api/dcim/sites/1/", "name": "a"},
            {"id": 2, "url": "http://nb/api/dcim/sites/2/", "name": "b"},
        ],
    }
    inv = inline("page1.json", page)
    assert not inv.complete
    assert any("only 2 of 3 dcim.site" in w for w in inv.warnings)
    assert any(w.startswith("page1.json:3: this is one page") for w in inv.warnings)


def test_unidentifiable_records_are_refused():
    try:
        inline("export.json", {"count": 1, "next": None, "results": [{"id": 1, "name": "x"}]})
    except ValidationError as err:
        assert (err.location, err.item, err.field) == ("export.json:5", "results[0]", "url")
    else:
        raise AssertionError("no error")
    try:
        inline("dump.json", [{"model": "dcim.site", "pk": "one", "fields": {}}])
    except ValidationError as err:
        assert (err.location, err.field) == ("dump.json:2", "pk")
    else:
        raise AssertionError("no error")


def test_parsing_twice_gives_the_same_inventory():
    a, b = parse(REST, DEMO), parse(REST, DEMO)
    assert [c.ci for c in a.cis] == [c.ci for c in b.cis]
    assert a.relationships == b.relationships
