"""Our own formats: CSV (CI and relationship files, typed columns, mapping), JSON and YAML,
and errors that name file, line, item and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph.errors import LimitExceededError, ValidationError
from graph.model import ConfigurationItem, Relationship, Status
from importers import ALIASES, FORMATS, format_name
from importers.base import SourceFile
from importers.generic import (
    check_csv,
    demo_csv_files,
    demo_inventory,
    format_csv,
    iter_csv_chunks,
    load_mapping,
    parse_csv,
    parse_json,
    parse_yaml,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "generic"


def fixture(name: str) -> SourceFile:
    return SourceFile(name=name, path=FIXTURES / name)


def text(name: str, content: str | bytes) -> SourceFile:
    data = content.encode() if isinstance(content, str) else content
    return SourceFile(name=name, data=data)


def error_of(fn, *args, **kw) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        fn(*args, **kw)
    return info.value


# -- CSV ----------------------------------------------------------------------------------------


def test_csv_ci_and_relationship_files_told_apart_by_header():
    inv = parse_csv([fixture("servers-relationships.csv"), fixture("servers.csv")])
    assert [p.ci.id for p in inv.cis] == ["srv-a", "srv-b", "app-1"]
    srv_a = inv.cis[0].ci
    assert srv_a.criticality == 2
    assert srv_a.tags == ("linux", "rack-12")
    assert srv_a.attributes == {
        "serial_number": "CZ001",
        "fqdn": "srv-a.example.com",
        "cpu": 16,
        "virtual": False,
    }
    assert inv.cis[0].location == "servers.csv:2"
    # empty cells say nothing: not even the field
    assert "criticality" not in inv.cis[1].ci.model_fields_set
    assert inv.cis[2].ci.attributes == {}
    rels = inv.relationships
    assert [(r.source_ref, r.type, r.target_ref) for r in rels] == [
        ("Billing", "RUNS_ON", "srv-a"),
        ("app-1", "RUNS_ON", "srv-b"),
    ]
    assert rels[0].attributes == {"port": 8443}
    assert rels[1].attributes == {}
    assert rels[0].location == "servers-relationships.csv:2"


def test_csv_mapping_renames_columns_maps_classes_and_sets_defaults():
    mapping = load_mapping(fixture("asset-db.map.yaml"))
    inv = parse_csv([fixture("asset-db.csv")], mapping)
    web = inv.cis[0].ci
    assert (web.id, web.name) == ("A-1001", "web-01")
    assert web.ci_class == "server"
    assert web.environment == "prod"
    assert web.attributes == {"serial_number": "SN-1001", "site": "Paris", "cpu": 8}
    assert "internal_id" not in web.attributes


def test_csv_mapping_without_id_uses_required_columns_error():
    # The asset db has no id column: the mapping must give one, or the file is not a CI file.
    mapping = load_mapping(text("m.yaml", "columns: {hostname: name, ci_type: class}\n"))
    err = error_of(parse_csv, [fixture("asset-db.csv")], mapping)
    assert err.location == "asset-db.csv:1"
    assert "id, class, name" in err.message


def test_csv_errors_name_file_line_item_and_field():
    bad = text(
        "bad.csv",
        "id,class,name,criticality\nok,server,ok,1\nsrv-x,server,srv-x,high\n",
    )
    err = error_of(parse_csv, [bad])
    assert (err.location, err.item, err.field) == ("bad.csv:3", "srv-x", "criticality")

    bad = text("bad.csv", "id,class,name,criticality\nsrv-x,server,srv-x,9\n")
    err = error_of(parse_csv, [bad])
    assert (err.location, err.item, err.field) == ("bad.csv:2", "srv-x", "criticality")

    bad = text("bad.csv", "id,class,name,cpu:int\nsrv-x,server,srv-x,many\n")
    err = error_of(parse_csv, [bad])
    assert (err.location, err.item, err.field) == ("bad.csv:2", "srv-x", "cpu")

    bad = text("bad.csv", "id,class,name\nsrv-x,server,\n")
    err = error_of(parse_csv, [bad])
    assert (err.location, err.field) == ("bad.csv:2", "name")

    bad = text("bad.csv", "id,class,name\na,server,a,extra\n")
    assert "3 columns" in error_of(parse_csv, [bad]).message

    bad = text("bad.csv", "id,class,name\na,server,a\na,server,again\n")
    err = error_of(parse_csv, [bad])
    assert (err.location, err.item, err.field) == ("bad.csv:3", "a", "id")
    assert "bad.csv:2" in err.message


def test_csv_physical_lines_count_quoted_newlines():
    src = text(
        "multi.csv",
        'id,class,name,description\na,server,a,"two\nlines"\nb,server,b,x\nc,server,,x\n',
    )
    err = error_of(parse_csv, [src])
    assert err.location == "multi.csv:5"


def test_csv_invalid_utf8_is_reported_with_its_line_not_guessed():
    src = text("latin1.csv", b"id,class,name\na,server,a\nb,server,caf\xe9\n")
    err = error_of(parse_csv, [src])
    assert err.location == "latin1.csv:3"
    assert "UTF-8" in err.message
    # UTF-16 with a BOM is not UTF-8 either
    src = text("utf16.csv", "id,class,name\n".encode("utf-16"))
    assert error_of(parse_csv, [src]).location == "utf16.csv:1"


def test_csv_bom_is_accepted():
    inv = parse_csv([text("bom.csv", b"\xef\xbb\xbfid,class,name\na,server,a\n")])
    assert inv.cis[0].ci.id == "a"


def test_csv_malformed_input_is_an_error_not_a_crash():
    cases = {
        "nul.csv": b"id,class,name\na,ser\x00ver,a\n",
        "quote.csv": b'id,class,name\na,server,"unterminated\n',
        "huge.csv": b"id,class,name\na,server," + b"x" * 200_000 + b"\n",
        "empty.csv": b"",
        "neither.csv": b"foo,bar\n1,2\n",
        "both.csv": b"id,class,name,source,target,type\n",
        "blank-header.csv": b"id,,name\n",
        "twice.csv": b"id,class,name,name\n",
    }
    for name, data in cases.items():
        err = error_of(parse_csv, [text(name, data)])
        assert err.location is not None and err.location.startswith(name), name


def test_csv_crlf_and_blank_lines():
    inv = parse_csv([text("crlf.csv", b"id,class,name\r\na,server,a\r\n\r\nb,server,b\r\n")])
    assert [p.ci.id for p in inv.cis] == ["a", "b"]
    assert inv.cis[1].location == "crlf.csv:4"


def test_csv_engine_fields_refused():
    src = text("p.csv", "id,class,name,provenance\na,server,a,x\n")
    err = error_of(parse_csv, [src])
    assert err.field == "provenance"


def test_csv_chunks_stream_cis_first_in_bounded_chunks():
    rows = "".join(f"c{i},server,c{i}\n" for i in range(25))
    rels = "".join(f"c{i},c{i + 1},DEPENDS_ON\n" for i in range(24))
    files = [text("r.csv", "source,target,type\n" + rels), text("c.csv", "id,class,name\n" + rows)]
    chunks = list(iter_csv_chunks(files, chunk_rows=10))
    assert [(len(c.cis), len(c.relationships)) for c in chunks] == [
        (10, 0),
        (10, 0),
        (5, 5),
        (0, 10),
        (0, 9),
    ]
    summary = check_csv(files)
    assert (summary.cis, summary.relationships, summary.items) == (25, 24, 49)


def test_csv_relationship_errors():
    err = error_of(parse_csv, [text("r.csv", "source,target,type\na,,DEPENDS_ON\n")])
    assert (err.location, err.field) == ("r.csv:2", "target")
    err = error_of(parse_csv, [text("r.csv", "source,target,type,w:float\na,b,USES,heavy\n")])
    assert (err.location, err.field, err.item) == ("r.csv:2", "w", "a -[USES]-> b")


# -- JSON and YAML ------------------------------------------------------------------------------


def test_json_and_yaml_read_the_same_inventory():
    from_json = parse_json([fixture("inventory.json")])
    from_yaml = parse_yaml([fixture("inventory.yaml")])
    assert [p.ci for p in from_json.cis] == [p.ci for p in from_yaml.cis]
    assert [
        (r.source_ref, r.type, r.target_ref, r.attributes) for r in from_json.relationships
    ] == [(r.source_ref, r.type, r.target_ref, r.attributes) for r in from_yaml.relationships]
    assert from_json.cis[1].location == "inventory.json:5"
    assert from_yaml.cis[1].location == "inventory.yaml:8"
    assert from_json.relationships[0].location == "inventory.json:8"


def test_yaml_errors_name_the_line_of_the_field():
    src = text(
        "bad.yaml",
        "cis:\n  - id: a\n    class: server\n    name: a\n    criticality: 7\n",
    )
    err = error_of(parse_yaml, [src])
    assert (err.location, err.item, err.field) == ("bad.yaml:5", "a", "criticality")

    src = text("typo.yaml", "cis:\n  - id: a\n    class: server\n    name: a\n    enviroment: x\n")
    err = error_of(parse_yaml, [src])
    assert (err.location, err.field) == ("typo.yaml:5", "enviroment")

    src = text(
        "red.yaml",
        "cis:\n  - id: a\n    class: server\n    name: a\n"
        "    redundancy: [{name: g, members: [x, x]}]\n",
    )
    err = error_of(parse_yaml, [src])
    assert err.field is not None and err.field.startswith("redundancy[0]")
    assert err.location == "red.yaml:5"


def test_json_errors_name_the_line():
    err = error_of(parse_json, [text("t.json", '{"cis": [\n  {"id": "a",\n')])
    assert err.location == "t.json:3:1"  # file:line:column
    src = text("f.json", '{"cis": [\n {"id": "a", "class": "server",\n  "name": ""}]}')
    err = error_of(parse_json, [src])
    assert (err.location, err.item, err.field) == ("f.json:3", "a", "name")
    err = error_of(parse_json, [text("top.json", '{"items": []}')])
    assert "unknown top-level key" in err.message
    err = error_of(parse_json, [text("list.json", "[1, 2]")])
    assert err.location == "list.json:1"
    src = text(
        "rel.json",
        '{"relationships": [{"source": "a", "target": "b", "type": "USES",\n  "weight": 3}]}',
    )
    err = error_of(parse_json, [src])
    assert (err.location, err.field) == ("rel.json:2", "weight")


def test_yaml_is_loaded_safely_with_caps():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
    )
    with pytest.raises(LimitExceededError):
        parse_yaml([text("bomb.yaml", bomb)])
    err = error_of(parse_yaml, [text("py.yaml", "cis: !!python/object/apply:os.system [ls]\n")])
    assert err.location == "py.yaml:1"
    # YAML 1.1 booleans and versions stay the strings written
    inv = parse_yaml(
        [text("n.yaml", "cis:\n  - {id: 'no', class: site, name: NO, attributes: {v: 1.10}}\n")]
    )
    assert inv.cis[0].ci.name == "NO"
    assert inv.cis[0].ci.attributes == {"v": "1.10"}


def test_yaml_mapping_applies_to_keys_and_classes():
    mapping = load_mapping(
        text(
            "m.yaml",
            "columns: {hostname: name, kind: class}\n"
            "classes: {VM: virtual_machine}\ndefaults: {environment: dev}\n",
        )
    )
    inv = parse_yaml([text("i.yaml", "cis:\n  - {id: v1, kind: VM, hostname: vm-1}\n")], mapping)
    ci = inv.cis[0].ci
    assert (ci.name, ci.ci_class, ci.environment) == ("vm-1", "virtual_machine", "dev")


def test_mapping_file_is_checked():
    err = error_of(load_mapping, text("m.yaml", "colums: {a: b}\n"))
    assert "colums" in err.message and err.location == "m.yaml:1"
    err = error_of(load_mapping, text("m.yaml", "columns: [a, b]\n"))
    assert err.location == "m.yaml:1"


# -- the demo and the registry --------------------------------------------------------------------


def test_demo_csv_parses_to_the_same_items_as_the_yaml():
    yaml_inv = demo_inventory()
    csv_inv = parse_csv(demo_csv_files())
    assert [p.ci for p in csv_inv.cis] == [p.ci for p in yaml_inv.cis]
    key = [(r.source_ref, r.type, r.target_ref, r.attributes) for r in yaml_inv.relationships]
    assert [
        (r.source_ref, r.type, r.target_ref, r.attributes) for r in csv_inv.relationships
    ] == key


def test_demo_csv_is_generated_from_the_yaml():
    inv = demo_inventory()
    cis_csv, rels_csv = format_csv(
        [p.ci for p in inv.cis],
        [
            Relationship(source=r.source_ref, type=r.type, target=r.target_ref)
            for r in inv.relationships
        ],
    )
    demo = Path(__file__).resolve().parents[3] / "importers" / "data" / "demo"
    assert (demo / "cis.csv").read_text() == cis_csv, "regenerate with format_csv"
    assert (demo / "relationships.csv").read_text() == rels_csv


def test_format_csv_round_trips():
    cis = [
        ConfigurationItem.model_validate(
            {
                "id": "x",
                "class": "server",
                "name": "x, with comma",
                "status": "down",
                "tags": ["b", "a"],
                "attributes": {"n": 3, "f": 1.5, "ok": True, "l": ["p", "q"], "s": "007"},
            }
        )
    ]
    ci_text, rel_text = format_csv(cis, [])
    back = parse_csv([text("c.csv", ci_text)])
    assert back.cis[0].ci == cis[0]
    assert back.cis[0].ci.status == Status.DOWN
    assert rel_text == "source,target,type\n"


def test_formats_registry():
    for name, (parser, suffixes) in FORMATS.items():
        assert callable(parser), name
        assert suffixes and all(isinstance(s, str) for s in suffixes), name
    for alias, name in ALIASES.items():
        assert name in FORMATS and format_name(alias) == name
    assert {"csv", "json", "yaml"} <= FORMATS.keys()


def test_a_relationship_file_may_take_its_type_from_the_mapping(tmp_path):
    deps = tmp_path / "deps.csv"
    deps.write_text("source,target,evidence\nweb,db,config.py line 3\n", encoding="utf-8")
    mapping_file = tmp_path / "map.yaml"
    mapping_file.write_text("defaults:\n  type: DEPENDS_ON\n  environment: prod\n")
    mapping = load_mapping(SourceFile(name="map.yaml", path=mapping_file))
    inv = parse_csv([SourceFile(name="deps.csv", path=deps)], mapping)
    assert [(r.source_ref, r.type, r.target_ref, r.attributes) for r in inv.relationships] == [
        ("web", "DEPENDS_ON", "db", {"evidence": "config.py line 3"})
    ]
    bare = tmp_path / "bare.csv"
    bare.write_text("source,target\nweb,db\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="cannot tell the kind of file"):
        parse_csv([SourceFile(name="bare.csv", path=bare)])
