"""``python -m benchmarks`` at a tiny size: it runs, every peer agrees with the floor, and
the results file has the documented shape. Embedded store only; no timing assertions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks.__main__ import PEERS_OURS_NEO, main


@pytest.mark.slow
def test_harness_runs_store_and_impact_at_2000_cis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--size", "2000", "--repeat", "1", "--only", "store,impact", "--no-neo4j",
            "--out", str(tmp_path / "results"), "--docs", str(tmp_path / "benchmarks.md"),
            "--workdir", str(tmp_path),
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("machine: ")
    assert "| case | peer |" in out

    files = list((tmp_path / "results").glob("*.json"))
    assert len(files) == 1
    data = orjson.loads(files[0].read_bytes())
    assert data["schema"] == 2
    run = data["runs"]["2k"]
    assert run["size"] == 2000
    assert run["dataset"]["cis"] == 2000
    assert {"cpu", "python", "sqlite", "neo4j_server"} <= set(run["machine"])
    rows = run["rows"]
    assert {r["group"] for r in rows} == {"store", "impact"}
    for row in rows:
        assert {"group", "case", "peer", "status"} <= set(row)
        assert row["status"] in ("ok", "skipped", "capped"), row
    impact = [r for r in rows if r["group"] == "impact" and r["case"] == "one site (worst case)"]
    peers = {r["peer"]: r for r in impact}
    floor = next(r for r in impact if r["baseline"])
    assert floor["timing"]["runs"] == 1 and floor["proxies"]["reached"] > 0
    for name in ("igraph subcomponent", "networkx descendants", "plain Python BFS + parent dict"):
        assert peers[name]["status"] == "ok"
        assert peers[name]["proxies"]["reached"] == floor["proxies"]["reached"]
    neo4j = [r for r in impact if r["peer"].startswith(("Neo4j", "ours (neo4j)"))]
    assert neo4j and all(r["note"].startswith("skipped: ") for r in neo4j)  # never silent
    assert set(PEERS_OURS_NEO) <= {r["peer"] for r in neo4j}
    store = {r["case"] for r in rows if r["group"] == "store"}
    assert "get_ci by id (per call)" in store
    assert any(case.startswith("neighbourhood depth 2") for case in store)  # 3: --full
    docs = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    assert "<!-- bench:2k:begin -->" in docs and "Machine: " in docs


def test_cli_import_measure_loads_the_store_in_a_child_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks.cli_import import main as cli_import
    from graph.sqlite_store import SqliteStore

    store = tmp_path / "store"
    code = cli_import(["--cis", "300", "--relationships", "200", "--store", str(store), "--json"])
    result = orjson.loads(capsys.readouterr().out)
    assert code == 0 and result["exit"] == 0
    assert (result["cis"], result["relationships"]) == (300, 200)
    assert result["peak_rss_mib"] > 0  # the child's own peak, read by wait4
    loaded = SqliteStore(store)
    try:
        assert loaded.count_cis() == 300
        assert sum(1 for _ in loaded.iter_relationships()) == 200
    finally:
        loaded.close()


def test_every_measure_gets_five_warm_runs_whatever_its_budget() -> None:
    from benchmarks.measure import MIN_WARM, measure

    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.002)
        return len(calls)

    spent = measure(slow, repeat=8, budget_s=0.0)  # the budget is gone after the cold run
    assert len(spent.timing.runs) == MIN_WARM == 5 and spent.budget_hit and len(calls) == 6
    calls.clear()
    roomy = measure(slow, repeat=8, budget_s=60.0)
    assert len(roomy.timing.runs) == 8 and not roomy.budget_hit
    calls.clear()
    few = measure(slow, repeat=3, budget_s=0.0)  # --repeat below five is honoured
    assert len(few.timing.runs) == 3
    calls.clear()
    cold_only = measure(slow, repeat=5, warm_if_cold_under_s=0.0)  # a peer too slow to repeat
    assert cold_only.timing.runs == () and len(calls) == 1


def test_fast_measures_fill_their_time_and_slow_ones_keep_their_repeat() -> None:
    from benchmarks.measure import MAX_FILL_RUNS, measure

    def quick() -> int:
        return 1

    filled = measure(quick, repeat=5, fill_s=1.0)  # microseconds a run: stops at the cap
    assert len(filled.timing.runs) == MAX_FILL_RUNS
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.02)
        return len(calls)

    kept = measure(slow, repeat=5, fill_s=0.05)  # five runs take 100 ms: over the fill
    assert len(kept.timing.runs) == 5 and len(calls) == 6
    some = measure(slow, repeat=5, fill_s=0.13)  # five runs, then up to 130 ms of runs
    assert 6 <= len(some.timing.runs) <= 7
    smoke = measure(quick, repeat=1, fill_s=1.0)  # a --repeat under five is not filled
    assert len(smoke.timing.runs) == 1


def test_the_report_states_the_fill_rule_only_for_runs_that_had_it() -> None:
    from benchmarks.report import _filled

    assert _filled({"repeat": 5, "impact_fill_s": 0.05}) == (
        "; impact answers faster than 10 ms get more, until their runs took 50 ms in all, "
        "at most 200"
    )
    assert _filled({"repeat": 1, "impact_fill_s": 0.05}) == ""  # --repeat under five
    assert _filled({"repeat": 5}) == ""  # a results file from before the rule


def test_the_fill_rule_follows_the_impact_rows_of_a_merged_run() -> None:
    from benchmarks.report import _filled

    store_only = {"repeat": 5, "impact_fill_s": 0.05, "groups": ["store"]}
    older = {"groups": ["impact", "import"], "repeat": 5}  # impact rows from before the rule
    assert _filled({**store_only, "merged": [older]}) == ""
    assert _filled({**store_only, "merged": [{**older, "impact_fill_s": 0.05}]}) != ""
    assert _filled({**store_only, "merged": []}) == ""  # no impact rows at all


def test_merged_runs_say_where_each_kept_group_was_measured(tmp_path: Path) -> None:
    """A run of one group keeps the others from the run before it, and that run may itself
    have kept groups from an earlier one: the header names each group's own run."""
    from benchmarks.measure import Row
    from benchmarks.report import write_results

    def run(command: str, groups: list[str], started: str) -> dict[str, Any]:
        rows = [{"group": g, "case": "c", "peer": "p", "status": "ok"} for g in groups]
        return {
            "date": "d",
            "size": 100_000,
            "command": command,
            "groups": groups,
            "started": started,
            "repeat": 5,
            "rows": rows,
        }

    def write(command: str, groups: list[str], started: str) -> tuple[dict[str, Any], list]:
        this = run(command, groups, started)
        _, merged, rows = write_results(path, this, [Row.from_json(r) for r in this["rows"]])
        return merged, rows

    path = tmp_path / "results.json"
    write("full", ["store", "impact", "import", "api"], "t1")
    write("only store", ["store"], "t2")
    merged, rows = write("only impact", ["impact"], "t3")
    assert sorted((m["command"], tuple(m["groups"])) for m in merged["merged"]) == [
        ("full", ("import", "api")),
        ("only store", ("store",)),
    ]
    assert sorted(r.group for r in rows) == ["api", "impact", "import", "store"]
