from pathlib import Path

from api.schema import schema

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_matches_the_code():
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == schema.as_str() + "\n", (
        "schema.graphql is stale: run `.venv/bin/python -m api.schema > schema.graphql`"
    )


def test_registry_is_served_with_reverse_names():
    result = schema.execute_sync("{ relationshipTypes { name reverse propagation } }")
    assert result.errors is None
    by_name = {t["name"]: t for t in result.data["relationshipTypes"]}
    assert by_name["DEPENDS_ON"] == {
        "name": "DEPENDS_ON",
        "reverse": "Used by",
        "propagation": "TO_SOURCE",
    }
