"""The ServiceNow importer on hand-written exports in the Table API and CSV export shapes
(tests/fixtures/servicenow/PROVENANCE.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graph.errors import ValidationError
from graph.model import DEFAULT_REGISTRY, Status
from importers.base import Inventory, SourceFile, expand_paths
from importers.servicenow import SUFFIXES, ci_class_for, parse_servicenow, rel_mapping

FIXTURES = Path(__file__).parents[2] / "fixtures" / "servicenow"
TABLE_API = FIXTURES / "table-api"
CSV_EXPORT = FIXTURES / "csv-export"


def parse(*paths: Path) -> Inventory:
    return parse_servicenow(expand_paths(list(paths), SUFFIXES))


def inline(name: str, text: str) -> Inventory:
    return parse_servicenow([SourceFile(name=name, data=text.encode())])


def named_edges(inv: Inventory) -> set[tuple[str, str, str]]:
    names = {str(c.ci.id): c.ci.name for c in inv.cis}
    return {
        (names.get(r.source_ref, r.source_ref), r.type, names.get(r.target_ref, r.target_ref))
        for r in inv.relationships
    }


def test_table_api_export_reads_every_ci_with_class_and_identity():
    inv = parse(TABLE_API)
    by_name = {c.ci.name: c.ci for c in inv.cis}
    assert {n: ci.ci_class for n, ci in by_name.items()} == {
        "lnx-web01": "server",
        "lnx-web02": "server",
        "lnx-db01": "server",
        "lnx-old07": "server",
        "banking-tomcat": "application",
        "banking-mysql": "database",
        "Online Banking": "business_service",
        "banking-web": "technical_service",  # sys_class_name's value, not its display value
        "web-cluster": "hypervisor_cluster",
        "London DC1": "site",
    }
    web01 = by_name["lnx-web01"]
    assert web01.id == "servicenow:76027bd367d78eed2be7e0cb2cd5dcd0"
    assert web01.attributes["serial_number"] == "VMW-4211-AA01"
    assert web01.attributes["fqdn"] == "lnx-web01.corp.example.com"
    assert web01.attributes["ip_address"] == "10.20.1.11"
    assert web01.attributes["sys_class_name"] == "cmdb_ci_linux_server"
    assert by_name["lnx-old07"].status is Status.RETIRED
    service = by_name["Online Banking"]
    assert (service.owner, service.support_group, service.criticality, service.environment) == (
        "Jane Doe",
        "Banking App Support",
        1,
        "Production",
    )
    assert web01.support_group is None  # a bare sys_id names nobody


def test_relationship_types_map_to_the_registry_with_servicenow_direction():
    inv = parse(TABLE_API)
    assert named_edges(inv) >= {
        ("Online Banking", "DEPENDS_ON", "banking-web"),
        ("banking-web", "DEPENDS_ON", "banking-tomcat"),
        ("banking-tomcat", "RUNS_ON", "lnx-web01"),
        ("banking-tomcat", "RUNS_ON", "lnx-web02"),
        ("banking-tomcat", "DEPENDS_ON", "banking-mysql"),
        ("banking-mysql", "RUNS_ON", "lnx-db01"),
        ("lnx-web01", "PART_OF", "web-cluster"),  # "web-cluster Members::Member of lnx-web01"
        ("lnx-web01", "LOCATED_IN", "London DC1"),  # the location reference field
    }
    for rel in inv.relationships:
        DEFAULT_REGISTRY.relationship_type(rel.type)


def test_an_unknown_relationship_type_is_a_warning_naming_file_line_and_record():
    inv = parse(TABLE_API)
    [warning] = inv.warnings
    assert warning.startswith(f"{TABLE_API / 'cmdb_rel_ci.json'}:147: ")
    assert "cmdb_rel_ci result[8]" in warning
    assert "Sends data to::Receives data from" in warning
    lines = (TABLE_API / "cmdb_rel_ci.json").read_text().splitlines()
    assert lines[146].strip() == "{"


def test_csv_export_uses_line_numbers_and_falls_back_to_names():
    inv = parse(CSV_EXPORT)
    by_name = {c.ci.name: c for c in inv.cis}
    assert by_name["win-ad02"].location == f"{CSV_EXPORT / 'cmdb_ci_win_server.csv'}:3"
    assert by_name["win-file9"].ci.status is Status.RETIRED  # "Retired" as a display value
    assert named_edges(inv) == {
        ("Active Directory", "RUNS_ON", "win-ad01"),
        ("Active Directory", "RUNS_ON", "win-ad02"),
        # no parent.sys_id / child.sys_id in that row: the names, for the engine to resolve
        ("win-file9", "DEPENDS_ON", "Active Directory"),
    }
    [warning] = inv.warnings
    assert "cmdb_rel_ci.csv:5" in warning and "Backed up by::Backs up" in warning


def test_one_json_object_holding_several_tables():
    text = json.dumps(
        {
            "cmdb_ci_appl": {"result": [{"sys_id": "a" * 32, "name": "app"}]},
            "cmdb_ci_server": [{"sys_id": "b" * 32, "name": "srv"}],
            "cmdb_rel_ci": [{"parent": "a" * 32, "child": "b" * 32, "type": "Runs on::Runs"}],
        },
        indent=1,
    )
    inv = inline("export.json", text)
    assert {(c.ci.name, c.ci.ci_class) for c in inv.cis} == {
        ("app", "application"),
        ("srv", "server"),
    }
    assert named_edges(inv) == {("app", "RUNS_ON", "srv")}


def test_a_type_sys_id_without_the_rel_type_table_is_reported():
    text = json.dumps({"result": [{"parent": "a" * 32, "child": "b" * 32, "type": "c" * 32}]})
    inv = inline("cmdb_rel_ci.json", text)
    assert inv.relationships == []
    assert "add the cmdb_rel_type export" in inv.warnings[0]


def test_the_ci_from_its_own_class_table_wins_over_a_parent_table_copy():
    base = {"sys_id": "d" * 32, "name": "srv", "sys_class_name": "cmdb_ci_linux_server"}
    text = json.dumps(
        {
            "cmdb_ci": [dict(base)],
            "cmdb_ci_linux_server": [dict(base, serial_number="SN1")],
        }
    )
    inv = inline("all.json", text)
    [ci] = inv.cis
    assert ci.ci.attributes["serial_number"] == "SN1"


@pytest.mark.parametrize(
    ("text", "field", "location"),
    [
        ('{"result": [\n{"name": "x"}\n]}', "sys_id", "cmdb_ci_server.json:2"),
        ('{"result": [\n{"sys_id": "123", "name": "x"}]}', "sys_id", "cmdb_ci_server.json:2"),
    ],
)
def test_a_ci_without_a_valid_sys_id_is_refused(text, field, location):
    with pytest.raises(ValidationError) as err:
        inline("cmdb_ci_server.json", text)
    assert (err.value.field, err.value.location) == (field, location)
    assert err.value.item == "cmdb_ci_server result[0]"


def test_a_relationship_without_a_child_is_refused():
    with pytest.raises(ValidationError) as err:
        inline("cmdb_rel_ci.csv", "parent,type,child\r\n" + "a" * 32 + ",Runs on::Runs,\r\n")
    assert (err.value.field, err.value.location) == ("child", "cmdb_rel_ci.csv:2")


def test_malformed_inputs_name_the_place():
    with pytest.raises(ValidationError, match=r"malformed JSON") as err:
        inline("cmdb_ci_server.json", '{"result": [\n{"sys_id": ')
    assert err.value.location == "cmdb_ci_server.json:2:12"
    with pytest.raises(ValidationError, match="more cells") as err:
        inline(
            "cmdb_ci_server.csv", "sys_id,name\r\n" + "a" * 32 + ",x\r\n" + "b" * 32 + ",y,z\r\n"
        )
    assert err.value.location == "cmdb_ci_server.csv:3"
    with pytest.raises(ValidationError, match="malformed CSV"):
        inline("cmdb_ci_server.csv", 'sys_id,name\r\n"' + "a" * 32 + '"x,y\r\n')
    with pytest.raises(ValidationError, match="name it after the table"):
        inline("export.csv", "sys_id,name\r\n")


@pytest.mark.parametrize(
    ("name", "rel_type", "parent_is_source"),
    [
        ("Depends on::Used by", "DEPENDS_ON", True),
        ("Used by::Depends on", "DEPENDS_ON", False),
        ("Runs on::Runs", "RUNS_ON", True),
        ("Hosted on::Hosts", "HOSTED_ON", True),
        ("Contains::Contained by", "CONTAINS", True),
        ("Members::Member of", "PART_OF", False),
        ("Cluster of::Cluster", "PART_OF", False),
        ("Connects to::Connected by", "CONNECTS_TO", True),
        ("Uses::Used by", "USES", True),
        ("Located in::Houses", "LOCATED_IN", True),
        ("  depends ON::used   by ", "DEPENDS_ON", True),
    ],
)
def test_relationship_type_names(name, rel_type, parent_is_source):
    mapping = rel_mapping(name)
    assert mapping is not None
    assert (mapping.type, mapping.parent_is_source) == (rel_type, parent_is_source)
    DEFAULT_REGISTRY.relationship_type(mapping.type)


@pytest.mark.parametrize(
    ("sys_class_name", "ci_class"),
    [
        ("cmdb_ci_linux_server", "server"),
        ("cmdb_ci_win_server", "server"),
        ("cmdb_ci_server", "server"),
        ("cmdb_ci_vmware_instance", "virtual_machine"),
        ("cmdb_ci_vm_instance", "virtual_machine"),
        ("cmdb_ci_db_ora_instance", "database"),
        ("cmdb_ci_service_discovered", "technical_service"),
        ("cmdb_ci_service_business", "business_service"),
        ("cmdb_ci_appl_tomcat", "application"),
        ("cmdb_ci_lb_f5_ltm", "load_balancer"),
        ("cmdb_ci_ip_switch", "network_device"),
        ("cmdb_ci_ip_router", "network_device"),
        ("cmdb_ci_vcenter_cluster", "hypervisor_cluster"),
        ("cmdb_ci_db_mssql_cluster", "database_cluster"),
        ("cmn_location", "site"),
        ("u_cmdb_ci_widget", "other"),
    ],
)
def test_class_mapping(sys_class_name, ci_class):
    assert ci_class_for(sys_class_name) == ci_class
    DEFAULT_REGISTRY.ci_class(ci_class)


def test_parsing_twice_gives_the_same_inventory():
    a, b = parse(TABLE_API, CSV_EXPORT), parse(TABLE_API, CSV_EXPORT)
    assert [c.ci for c in a.cis] == [c.ci for c in b.cis]
    assert a.relationships == b.relationships
