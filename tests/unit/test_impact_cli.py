"""``cmdb impact``, ``cmdb what-if`` and ``cmdb causes`` on the demo topology."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import main


@pytest.fixture
def demo(tmp_path: Path) -> str:
    where = str(tmp_path / "store")
    assert main(["demo", "--store", where]) == 0
    return where


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_impact_json_has_the_promised_fields(demo, capsys) -> None:
    capsys.readouterr()
    code, out, _ = run(capsys, "impact", "site-par", "--store", demo, "--json")
    assert code == 0
    data = json.loads(out)
    assert {"affected", "services", "users", "teams", "changes", "priority"} <= set(data)
    first = data["affected"][0]
    assert {"id", "name", "class", "state", "distance", "path", "reason"} <= set(first)
    assert {"count", "items"} <= set(data["users"])
    assert data["priority"]["label"].startswith("P")


def test_impact_text_and_paths(demo, capsys) -> None:
    capsys.readouterr()
    code, out, _ = run(capsys, "impact", "Paris DC1", "--store", demo, "--paths", "--depth", "2")
    assert code == 0
    assert "affected CIs" in out and "-LOCATED_IN->" in out
    assert "priority P" in out


def test_what_if_reports_lost_redundancy_without_changes(demo, capsys) -> None:
    capsys.readouterr()
    code, out, _ = run(capsys, "what-if", "esx-par-01", "--store", demo)
    assert code == 0
    assert "would affect" in out and "changes that may have caused" not in out


def test_causes(demo, capsys) -> None:
    capsys.readouterr()
    code, out, _ = run(capsys, "causes", "shop-web", "reporting", "--store", demo, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["causes"][0]["explains"] == ["shop-web", "reporting"]


def test_errors_are_one_line(demo, capsys) -> None:
    capsys.readouterr()
    code, _, err = run(capsys, "impact", "no-such-ci", "--store", demo)
    assert code == 2 and "no-such-ci" in err
    code, _, err = run(capsys, "causes", "--store", demo)
    assert code == 2


@pytest.mark.parametrize("verb", ["impact", "what-if", "causes"])
def test_help_teaches_by_example(verb, capsys) -> None:
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out


def test_impact_text_lists_ten_teams_and_counts_the_rest(tmp_path: Path, capsys) -> None:
    from graph.model import CiId, ConfigurationItem, Relationship, WriteContext
    from graph.sqlite_store import SqliteStore

    where = tmp_path / "store"
    store = SqliteStore(where)
    apps = [
        ConfigurationItem.model_validate(
            {
                "id": f"app-{i:02}",
                "class": "application",
                "name": f"app-{i:02}",
                "owner": f"team-{i:02}",
            }
        )
        for i in range(12)
    ]
    host = ConfigurationItem.model_validate({"id": "h", "class": "server", "name": "h"})
    ctx = WriteContext(actor="t")
    store.upsert_cis([host, *apps], ctx)
    store.upsert_relationships(
        [Relationship(source=a.id, type="RUNS_ON", target=CiId("h")) for a in apps], ctx
    )
    store.close()
    code, out, _ = run(capsys, "impact", "h", "--store", str(where))
    assert code == 0
    listed = out.split("teams to notify:")[1].split("\n\n")[0]
    assert listed.count("(owner; 1 CI") == 10 and "and 2 more (--json lists them)" in listed
    assert "not every team" not in out  # all twelve are in the report
