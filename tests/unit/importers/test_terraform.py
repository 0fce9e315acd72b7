"""The Terraform state importer on Terraform's own state fixtures (v1.5.7, MPL-2.0) and a
hand-written state full of secret canaries. See tests/fixtures/terraform-state/PROVENANCE.md."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from graph.errors import ValidationError
from graph.model import DEFAULT_REGISTRY, Status
from importers.base import Inventory, SourceFile, expand_paths
from importers.terraform import SUFFIXES, is_secret_name, load_json, parse_terraform_state

FIXTURES = Path(__file__).parents[2] / "fixtures" / "terraform-state"
TF = FIXTURES / "terraform-v1.5.7"
ROUNDTRIP = TF / "roundtrip"
SECRETS = FIXTURES / "handwritten" / "aws-secrets.tfstate"


def parse(*paths: Path | str) -> Inventory:
    return parse_terraform_state(expand_paths(list(paths), SUFFIXES))


def inline(text: str, name: str = "inline.tfstate") -> Inventory:
    return parse_terraform_state([SourceFile(name=name, data=text.encode())])


def address(ci_id: str) -> str:
    return ci_id.split("/", 1)[1] if "/" in ci_id else ci_id.split(":", 1)[1]


def resource(addr: str) -> str:
    """Resource address without instance key, v4 (``[0]``) or v3 (``.0``) style."""
    return re.sub(r'(\[(\d+|"[^"]*")\]|\.\d+)$', "", addr)


def edges(inv: Inventory) -> set[tuple[str, str, str]]:
    return {(address(r.source_ref), r.type, address(r.target_ref)) for r in inv.relationships}


# -------------------------------------------------------------------------------- ground truth


def ground_truth() -> list[tuple[str, str, str, str]]:
    with (FIXTURES / "ground-truth.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        file = re.search(r"file=([^;]+);", row["evidence"])
        assert file
        out.append((row["source"], row["target"], file.group(1).strip(), row["evidence"]))
    return out


@pytest.mark.parametrize(
    ("source", "target", "file", "evidence"), ground_truth(), ids=lambda v: str(v)[:50]
)
def test_every_ground_truth_dependency_is_read_or_reported(source, target, file, evidence):
    inv = parse(FIXTURES / file)
    found = {(resource(s), resource(t)) for s, kind, t in edges(inv) if kind == "DEPENDS_ON"}
    if target.startswith("var."):
        assert not any(t.startswith("var.") for _, t in found)
    elif "1invalid" in target:
        # Terraform drops invalid addresses from v3 states; we drop them too, but loudly.
        assert (resource(source), target) not in found
        assert any("invalid resource address 'null_resource.1invalid'" in w for w in inv.warnings)
    else:
        assert (resource(source), target) in found, (source, target, found)
        if "dangling" in evidence:
            assert any(f"{target!r} is not in this state" in w for w in inv.warnings)


def test_no_dependency_beyond_ground_truth():
    truth = {(resource(s), t) for s, t, _, _ in ground_truth()}
    for path in sorted(ROUNDTRIP.glob("*.tfstate")):
        for s, _, t in edges(parse(path)):
            assert (resource(s), resource(t)) in truth, (path.name, s, t)


# -------------------------------------------------------------------------------- identity


def test_identity_is_lineage_module_address_and_instance_key():
    inv = parse(ROUNDTRIP / "v4-modules.in.tfstate")
    ids = {c.ci.id for c in inv.cis}
    lineage = "f2968801-fa14-41ab-a044-224f3a4adf04"
    assert ids == {
        f"terraform:{lineage}/null_resource.bar",
        f'terraform:{lineage}/module.modB.null_resource.bar["a"]',
        f'terraform:{lineage}/module.modB.null_resource.bar["b"]',
        f"terraform:{lineage}/module.modA.null_resource.resource",
    }
    by_id = {str(c.ci.id): c.ci for c in inv.cis}
    modb = by_id[f'terraform:{lineage}/module.modB.null_resource.bar["a"]']
    assert modb.attributes["module"] == "module.modB"
    assert modb.attributes["index_key"] == "a"
    assert modb.attributes["type"] == "null_resource"
    assert modb.name == 'module.modB.null_resource.bar["a"]'


def test_nested_and_counted_modules_keep_their_whole_path():
    inv = parse(TF / "state-list-nested-modules" / "terraform.tfstate")
    names = {c.ci.name for c in inv.cis}
    assert "module.nest.module.subnest.test_instance.subnest" in names
    assert "module.count[0].test_instance.count" in names
    assert "module.count[1].test_instance.count" in names
    assert len(names) == len(inv.cis) == 6


def test_count_instances_each_become_a_ci_and_a_dependency_reaches_all_of_them():
    inv = parse(ROUNDTRIP / "v4-simple.in.tfstate")
    assert edges(inv) == {
        ("null_resource.bar", "DEPENDS_ON", "null_resource.foo[0]"),
        ("null_resource.bar", "DEPENDS_ON", "null_resource.foo[1]"),
    }


def test_v3_is_read_with_module_relative_addresses():
    inv = parse(ROUNDTRIP / "v3-grabbag.in.tfstate")
    names = sorted(c.ci.name for c in inv.cis)
    assert names == [
        "module.child.null_resource.foo",
        "null_resource.bar[0]",
        "null_resource.bar[1]",
        "null_resource.baz",
    ]
    assert ("null_resource.bar[0]", "DEPENDS_ON", "null_resource.baz") in edges(inv)


def test_location_is_the_line_of_the_instance():
    inv = parse(ROUNDTRIP / "v4-modules.in.tfstate")
    lines = (ROUNDTRIP / "v4-modules.in.tfstate").read_text().splitlines()
    for parsed in inv.cis:
        path, _, line = parsed.location.rpartition(":")
        assert path.endswith("v4-modules.in.tfstate")
        assert lines[int(line) - 1].strip() == "{"
    modb_a = next(c for c in inv.cis if c.ci.name.endswith('bar["a"]'))
    number = int(modb_a.location.rpartition(":")[2])
    assert '"index_key": "a"' in lines[number]


# -------------------------------------------------------------------------------- versions


def test_a_state_from_a_future_terraform_is_read_with_a_warning():
    inv = parse(ROUNDTRIP / "v4-future.in.tfstate")
    assert len(inv.cis) == 3
    [warning] = inv.warnings
    assert "v4-future.in.tfstate:5" in warning and "999.0.0" in warning


@pytest.mark.parametrize(("version", "words"), [(5, "newer"), (2, "predates"), ("4", "no state")])
def test_unreadable_format_versions_are_refused_clearly(version, words):
    with pytest.raises(ValidationError) as err:
        inline(json.dumps({"version": version, "resources": []}), name="s.tfstate")
    assert words in err.value.message
    assert err.value.location and err.value.location.startswith("s.tfstate")


def test_an_invalid_resource_name_is_refused_naming_file_item_and_field():
    state = {
        "version": 4,
        "lineage": "x",
        "resources": [
            {"mode": "managed", "type": "null_resource", "name": "ok", "instances": [{}]},
            {"mode": "managed", "type": "null_resource", "name": "1bad", "instances": [{}]},
        ],
    }
    with pytest.raises(ValidationError) as err:
        inline(json.dumps(state, indent=2), name="bad.tfstate")
    assert err.value.field == "name"
    assert err.value.item == "resources[1]"
    assert err.value.location == "bad.tfstate:13"  # the line of the resource


def test_an_invalid_module_address_is_refused():
    state = {
        "version": 4,
        "resources": [{"module": "modules.x", "mode": "managed", "type": "a", "name": "b"}],
    }
    with pytest.raises(ValidationError, match="invalid module address"):
        inline(json.dumps(state))


def test_malformed_json_names_line_and_column():
    with pytest.raises(ValidationError) as err:
        inline('{\n  "version": 4,\n  "resources": [\n', name="cut.tfstate")
    assert err.value.location is not None
    assert re.fullmatch(r"cut\.tfstate:\d+:\d+", err.value.location)


def test_invalid_utf8_names_the_line():
    with pytest.raises(ValidationError) as err:
        parse_terraform_state(
            [SourceFile(name="b.tfstate", data=b'{\n"version": 4,\n"x": "\xff"}')]
        )
    assert err.value.location == "b.tfstate:3"


def test_the_same_instance_twice_in_one_run_is_refused():
    with pytest.raises(ValidationError, match="appears twice"):
        parse(ROUNDTRIP / "v4-simple.in.tfstate", ROUNDTRIP / "v4-future.in.tfstate")


# -------------------------------------------------------------------------------- secrets


def test_no_secret_from_the_state_reaches_the_inventory():
    inv = parse(SECRETS)
    blob = json.dumps(
        [c.ci.model_dump(mode="json", by_alias=True) for c in inv.cis]
        + [[r.source_ref, r.type, r.target_ref, r.attributes] for r in inv.relationships]
        + inv.warnings
    )
    assert "CANARY" not in blob
    assert "AKIA" not in blob  # an access key id, even under the harmless name "id"
    assert "PRIVATE KEY" not in blob


def test_only_allowlisted_scalars_are_kept():
    inv = parse(SECRETS)
    db = next(c.ci for c in inv.cis if c.ci.name == "aws_db_instance.main")
    assert db.ci_class == "database"
    assert db.attributes["engine"] == "postgres"
    assert db.attributes["resource_id"] == "db-ABCDEFGHIJKLMNOP"
    assert "password" not in db.attributes and "username" not in db.attributes
    assert db.tags == ("Name=main", "env=prod")  # the DB_PASSWORD tag is dropped
    ssm = next(c.ci for c in inv.cis if c.ci.name == "aws_ssm_parameter.api_key")
    assert "name" not in ssm.attributes  # listed in sensitive_attributes


@pytest.mark.parametrize(
    "name", ["password", "db_password", "PrivateKey", "private_key_pem", "auth_token", "secret"]
)
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["id", "arn", "name", "engine", "instance_type", "tags"])
def test_harmless_names(name):
    assert not is_secret_name(name)


# -------------------------------------------------------------------------------- mapping


def test_classes_data_sources_and_deposed_objects():
    inv = parse(SECRETS)
    by_name = {c.ci.name: c.ci for c in inv.cis}
    assert by_name["aws_instance.web[0]"].ci_class == "virtual_machine"
    assert by_name["aws_lb.front"].ci_class == "load_balancer"
    assert by_name["data.aws_ami.ubuntu"].ci_class == "cloud_resource"
    assert by_name["data.aws_ami.ubuntu"].attributes["mode"] == "data"
    assert by_name['module.cache["prod"].aws_elasticache_cluster.this'].attributes["module"] == (
        'module.cache["prod"]'
    )
    # the deposed object shares web[0]'s address: skipped with a warning, not a duplicate
    assert sum(1 for n in by_name if n.startswith("aws_instance.web")) == 2
    assert any("deposed" in w and "aws_instance.web[0]" in w for w in inv.warnings)
    for ci in by_name.values():
        DEFAULT_REGISTRY.ci_class(ci.ci_class)
        assert ci.status is Status.OPERATIONAL


def test_dependencies_become_depends_on_edges():
    inv = parse(SECRETS)
    assert {
        ("aws_lb.front", "DEPENDS_ON", "aws_instance.web[0]"),
        ("aws_lb.front", "DEPENDS_ON", "aws_instance.web[1]"),
        ("aws_instance.web[1]", "DEPENDS_ON", "aws_db_instance.main"),
        ("aws_instance.web[1]", "DEPENDS_ON", "data.aws_ami.ubuntu"),
        ("aws_db_instance.main", "DEPENDS_ON", "random_password.db"),
    } <= edges(inv)
    for rel in inv.relationships:
        DEFAULT_REGISTRY.relationship_type(rel.type)


def test_parsing_twice_gives_the_same_inventory():
    a = parse(SECRETS, ROUNDTRIP / "v4-modules.in.tfstate")
    b = parse(SECRETS, ROUNDTRIP / "v4-modules.in.tfstate")
    assert [c.ci for c in a.cis] == [c.ci for c in b.cis]
    assert a.relationships == b.relationships
    assert a.warnings == b.warnings


def test_load_json_records_lines_to_the_requested_depth():
    doc = load_json(
        SourceFile(name="x.json", data=b'{"a": [\n {"b": 1},\n {"b": [2, 3]}\n]}'), depth=2
    )
    assert doc.where(("a", 1)) == "x.json:3"
    assert doc.where(("a", 1, "b", 0)) == "x.json:3"  # deeper than recorded: nearest ancestor
