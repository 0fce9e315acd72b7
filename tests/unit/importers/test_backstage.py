"""importers.backstage on Backstage's example catalog and on small hand-written files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from graph.errors import ValidationError
from importers import backstage
from importers.backstage import SUFFIXES, entity_id, parse_backstage, parse_entity_ref
from importers.base import Inventory, SourceFile, expand_paths

# relations.csv (Backstage's relation names) -> our type, and whether the CSV's source is ours
RELATIONS = {
    "childOf": ("PART_OF", True),
    "parentOf": ("PART_OF", False),
    "memberOf": ("MEMBER_OF", True),
    "ownedBy": ("OWNS", False),
    "partOf": ("PART_OF", True),
    "dependsOn": ("DEPENDS_ON", True),
    "consumesApi": ("DEPENDS_ON", True),
    "providesApi": ("PROVIDES", True),
}


def parse(*paths: Path | str) -> Inventory:
    return parse_backstage(expand_paths(list(paths), SUFFIXES))


def bs(ref: str) -> str:
    return f"backstage:{ref}"


def triples(inventory: Inventory) -> set[tuple[str, str, str]]:
    return {(r.source_ref, r.type, r.target_ref) for r in inventory.relationships}


@pytest.fixture
def catalog_dir(fixtures: Path) -> Path:
    return fixtures / "backstage-catalog-examples"


@pytest.fixture
def catalog(catalog_dir: Path) -> Inventory:
    """As Backstage reads it: the two root Locations, followed."""
    return parse(catalog_dir / "all.yaml", catalog_dir / "acme-corp.yaml")


def test_all_54_entities_with_backstage_identity(catalog):
    ids = [p.ci.id for p in catalog.cis]
    assert len(ids) == len(set(ids)) == 54
    assert bs("component:default/wayback-archive") in ids
    assert bs("api:default/wayback-archive") in ids
    assert bs("user:default/guest") in ids
    assert bs("user:development/guest") in ids
    kinds = {p.ci.attributes["backstage_kind"] for p in catalog.cis}
    assert kinds == {"Component", "API", "Resource", "System", "Domain", "Group", "User"}
    assert catalog.complete
    assert catalog.warnings == []


def test_relationships_are_exactly_relations_csv(catalog, catalog_dir):
    expected = set()
    with (catalog_dir / "relations.csv").open() as f:
        for row in csv.DictReader(f):
            if row["relation"] not in RELATIONS:
                assert row["field"].startswith("spec.apiConsumedBy")  # not a Backstage field
                continue
            rel_type, forward = RELATIONS[row["relation"]]
            source, target = bs(row["source"]), bs(row["target"])
            expected.add((source, rel_type, target) if forward else (target, rel_type, source))
    assert triples(catalog) == expected


def test_each_relationship_says_which_field_it_came_from(catalog):
    by_key = {(r.source_ref, r.type, r.target_ref): r for r in catalog.relationships}
    parent = by_key[(bs("group:default/team-a"), "PART_OF", bs("group:default/backstage"))]
    assert parent.attributes == {"via": ["spec.children", "spec.parent"]}
    depends = by_key[
        (bs("component:default/artist-lookup"), "DEPENDS_ON", bs("resource:default/artists-db"))
    ]
    assert depends.attributes == {"via": ["spec.dependsOn"]}
    assert depends.location.endswith("components/artist-lookup-component.yaml:39")


def test_artists_db_down_is_the_known_answer(catalog, affected):
    hit = affected(catalog, [bs("resource:default/artists-db")])
    assert {
        bs("component:default/artist-lookup"),
        bs("component:default/www-artist"),
        bs("system:default/artist-engagement-portal"),
    } <= hit
    # ... and the failure stays in its corner of the catalog.
    components = {i for i in hit if i.startswith("backstage:component:")}
    assert components == {bs("component:default/artist-lookup"), bs("component:default/www-artist")}
    assert not any(i.startswith(("backstage:group:", "backstage:user:")) for i in hit)


def test_team_a_owns_them(catalog):
    owned = {t for s, r, t in triples(catalog) if s == bs("group:default/team-a") and r == "OWNS"}
    assert {
        bs("resource:default/artists-db"),
        bs("component:default/artist-lookup"),
        bs("component:default/www-artist"),
        bs("system:default/artist-engagement-portal"),
    } <= owned
    artist_lookup = next(
        p.ci for p in catalog.cis if p.ci.id == bs("component:default/artist-lookup")
    )
    assert artist_lookup.owner == bs("group:default/team-a")


def test_ci_fields(catalog):
    by_id = {p.ci.id: p for p in catalog.cis}
    lookup = by_id[bs("component:default/artist-lookup")]
    assert lookup.ci.name == "artist-lookup"
    assert lookup.ci.ci_class == "application"
    assert lookup.ci.description == "Artist Lookup"
    assert lookup.ci.tags == ("data", "java")
    assert lookup.ci.attributes == {
        "backstage_kind": "Component",
        "namespace": "default",
        "type": "service",
        "lifecycle": "experimental",
    }
    assert lookup.location.endswith("components/artist-lookup-component.yaml:1")
    assert by_id[bs("resource:default/artists-db")].ci.ci_class == "database"
    assert by_id[bs("system:default/podcast")].ci.ci_class == "technical_service"
    assert by_id[bs("domain:default/audio")].ci.ci_class == "business_service"
    assert by_id[bs("api:default/petstore")].ci.ci_class == "api"
    guest = by_id[bs("user:development/guest")]
    assert guest.ci.ci_class == "user"
    assert guest.ci.attributes["display_name"] == "Guest User"
    assert guest.ci.attributes["namespace"] == "development"
    assert by_id[bs("group:default/team-a")].ci.attributes["email"] == "team-a@example.com"


def test_a_directory_gives_the_same_catalog_and_warns_about_other_yaml(catalog, catalog_dir):
    walked = parse(catalog_dir)
    assert [p.ci.id for p in walked.cis] != []

    def by_id(inventory):
        return {p.ci.id: p.ci for p in inventory.cis}

    assert by_id(walked) == by_id(catalog)
    assert triples(walked) == triples(catalog)
    assert walked.warnings == [
        f"{catalog_dir}/apis/petstore-webhook.oas.yaml:1: document 1 skipped: "
        "not a Backstage entity"
    ]


def test_parsing_twice_gives_the_same_inventory(catalog_dir):
    first = parse(catalog_dir / "all.yaml")
    second = parse(catalog_dir / "all.yaml")
    assert first.cis == second.cis
    assert first.relationships == second.relationships


# -- Locations ---------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def location(name: str, *targets: str, type_: str | None = None) -> str:
    lines = ["apiVersion: backstage.io/v1alpha1", "kind: Location", f"metadata: {{name: {name}}}"]
    lines.append("spec:")
    if type_:
        lines.append(f"  type: {type_}")
    lines.append("  targets:")
    lines += [f"    - {t}" for t in targets]
    return "\n".join(lines) + "\n"


def component(name: str, extra: str = "") -> str:
    return (
        f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
        f"spec:\n  type: service\n  owner: team\n{extra}"
    )


def test_location_cycles_and_repeats_are_read_once(tmp_path):
    a = write(tmp_path / "a.yaml", location("a", "./sub/b.yaml") + "---\n" + component("one"))
    write(tmp_path / "sub/b.yaml", location("b", "../a.yaml", "./c.yaml"))
    write(tmp_path / "sub/c.yaml", component("two"))
    inventory = parse(a, tmp_path / "sub/c.yaml")
    assert [p.ci.name for p in inventory.cis] == ["one", "two"]
    assert inventory.complete


def test_location_globs(tmp_path):
    root = write(tmp_path / "root.yaml", location("r", "./teams/*.yaml", "./none/*.yaml"))
    write(tmp_path / "teams/x.yaml", component("x"))
    write(tmp_path / "teams/y.yaml", component("y"))
    inventory = parse(root)
    assert sorted(p.ci.name for p in inventory.cis) == ["x", "y"]
    assert len(inventory.warnings) == 1
    assert "'./none/*.yaml' matches no file" in inventory.warnings[0]


@pytest.mark.parametrize(
    ("target", "type_", "why"),
    [
        ("https://github.com/org/repo/blob/main/catalog-info.yaml", None, "network"),
        ("/etc/passwd", None, "relative"),
        ("../outside.yaml", None, "outside"),
        ("./x.yaml", "github-discovery", "not read"),
    ],
)
def test_locations_that_are_not_followed_make_the_run_incomplete(tmp_path, target, type_, why):
    write(tmp_path / "outside.yaml", component("outside"))
    root = write(tmp_path / "cat/root.yaml", location("r", target, type_=type_))
    write(tmp_path / "cat/x.yaml", component("x"))
    inventory = parse(root)
    assert inventory.cis == []
    assert not inventory.complete
    [warning] = inventory.warnings
    targets_line = 6 if type_ else 5
    assert warning.startswith(f"{root}:{targets_line}: backstage:location:default/r target")
    assert why in warning


def test_locations_from_stdin_are_not_followed():
    text = location("r", "./x.yaml").encode()
    inventory = parse_backstage([SourceFile(name="<stdin>", data=text)])
    assert not inventory.complete
    assert "relative to a catalog file on disk" in inventory.warnings[0]


def test_a_missing_location_target_fails(tmp_path):
    root = write(tmp_path / "root.yaml", location("r", "./gone.yaml"))
    with pytest.raises(ValidationError, match=r"'\./gone\.yaml' is not a file") as exc:
        parse(root)
    assert exc.value.location == f"{root}:5"
    assert exc.value.field == "spec.targets"


def test_location_depth_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(backstage, "MAX_LOCATION_DEPTH", 2)
    for i in range(4):
        write(tmp_path / f"l{i}.yaml", location(f"l{i}", f"./l{i + 1}.yaml"))
    write(tmp_path / "l4.yaml", component("deep"))
    inventory = parse(tmp_path / "l0.yaml")
    assert not inventory.complete
    assert "nest deeper than 2" in inventory.warnings[0]


# -- References and bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "kind", "namespace", "expected"),
    [
        ("team-a", "group", "default", ("group", "default", "team-a")),
        ("user:guest", "group", "default", ("user", "default", "guest")),
        ("group:default/team-a", "group", "development", ("group", "default", "team-a")),
        ("team-a", "group", "development", ("group", "development", "team-a")),
        ("other/team-a", "group", "default", ("group", "other", "team-a")),
    ],
)
def test_parse_entity_ref(ref, kind, namespace, expected):
    assert parse_entity_ref(ref, default_kind=kind, default_namespace=namespace) == expected


@pytest.mark.parametrize("ref", ["artists-db", "component:", "component:ns/", ""])
def test_bad_entity_refs(ref):
    with pytest.raises(ValueError):
        parse_entity_ref(ref, default_kind=None, default_namespace="default")


def test_ids_are_case_insensitive_like_backstage(source):
    text = (
        component("Web-Site", "  system: Portal\n")
        + "---\n"
        + (
            "apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata: {name: portal}\n"
            "spec: {owner: team}\n"
        )
    )
    inventory = parse_backstage([source("c.yaml", text)])
    assert [p.ci.id for p in inventory.cis] == [
        entity_id("component", "default", "web-site"),
        entity_id("system", "default", "portal"),
    ]
    assert inventory.cis[0].ci.name == "Web-Site"
    assert (
        entity_id("component", "default", "web-site"),
        "PART_OF",
        entity_id("system", "default", "portal"),
    ) in triples(inventory)


def test_dependency_of_and_group_members(source):
    text = (
        component("db-client", "  dependencyOf: [component:app]\n")
        + "---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team}\n"
        "spec:\n  type: team\n  members: [alice, user:other/bob]\n"
    )
    got = triples(parse_backstage([source("c.yaml", text)]))
    assert (bs("component:default/app"), "DEPENDS_ON", bs("component:default/db-client")) in got
    assert (bs("user:default/alice"), "MEMBER_OF", bs("group:default/team")) in got
    assert (bs("user:other/bob"), "MEMBER_OF", bs("group:default/team")) in got


@pytest.mark.parametrize(
    ("text", "field", "message", "line"),
    [
        ("apiVersion: backstage.io/v1alpha1\nmetadata: {name: x}\n", "kind", "has a kind", 1),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  title: no name\n",
            "metadata.name",
            "needs a name",
            4,
        ),
        (component("x", "  dependsOn: [artists-db]\n"), "spec.dependsOn", "needs a kind", 8),
        (component("x", "  system: [a, b]\n"), "spec.system", "is a string", 8),
        (component("x", "  providesApis: [{a: 1}]\n"), "spec.providesApis", "string", 8),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: x}\nspec: [1]\n",
            "spec",
            "mapping",
            1,
        ),
        (
            "apiVersion: backstage.io/v1alpha1\nkind: Group\n"
            "metadata:\n  name: x\n  namespace: ''\n",
            "metadata.namespace",
            "namespace",
            5,
        ),
    ],
)
def test_bad_entities_name_file_line_item_and_field(source, text, field, message, line):
    with pytest.raises(ValidationError, match=message) as exc:
        parse_backstage([source("bad.yaml", text)])
    assert exc.value.field == field
    assert exc.value.location == f"bad.yaml:{line}"


def test_an_entity_defined_twice_fails(source):
    with pytest.raises(ValidationError, match=r"defined twice \(first at a.yaml:1\)") as exc:
        parse_backstage([source("a.yaml", component("x")), source("b.yaml", component("X"))])
    assert exc.value.item == bs("component:default/x")


def test_other_kinds_and_api_versions_are_skipped_with_a_warning(source):
    text = (
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: t}\n---\n"
        "apiVersion: example.com/v1\nkind: Component\nmetadata: {name: c}\n"
    )
    inventory = parse_backstage([source("t.yaml", text)])
    assert inventory.cis == []
    assert inventory.warnings == [
        "t.yaml:5: Component 'c' skipped: apiVersion 'example.com/v1' is not a Backstage "
        "catalog version (backstage.io/...)",
        "t.yaml:1: Template 't' skipped: kind Template is not imported",
    ]
