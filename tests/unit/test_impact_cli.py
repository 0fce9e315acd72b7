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
