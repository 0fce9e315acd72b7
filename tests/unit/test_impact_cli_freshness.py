"""``cmdb impact`` says how fresh its answer is (text and ``--json``); the CLI is a one-shot
run, so its answers are always computed on a snapshot in sync with the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import main
from api.cli_impact import freshness_text
from impact.report import Freshness


@pytest.fixture
def demo(tmp_path: Path) -> str:
    where = str(tmp_path / "store")
    assert main(["demo", "--store", where]) == 0
    return where


def test_json_freshness_keeps_its_fields_and_says_fresh(demo, capsys) -> None:
    capsys.readouterr()
    assert main(["impact", "site-par", "--store", demo, "--json"]) == 0
    fresh = json.loads(capsys.readouterr().out)["freshness"]
    assert {"generation", "as_of", "store"} <= set(fresh)
    assert fresh["fresh"] is True and fresh["behind_since"] is None
    assert fresh["current_generation"] == fresh["generation"]
    assert fresh["checked_at"] and fresh["behind_seconds"] == 0


def test_text_says_in_sync(demo, capsys) -> None:
    capsys.readouterr()
    assert main(["impact", "site-par", "--store", demo]) == 0
    assert "in sync with the store" in capsys.readouterr().out
    assert main(["causes", "shop-web", "reporting", "--store", demo]) == 0
    assert "in sync with the store" in capsys.readouterr().out


def test_text_of_an_answer_behind() -> None:
    from datetime import UTC, datetime, timedelta

    t = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    f = Freshness("e-4", t, "embedded", "e-5", t + timedelta(seconds=7), False, t)
    text = freshness_text(f)
    assert "BEHIND" in text and "e-5" in text and "at most 7.0 s behind" in text
