"""``python -m benchmarks`` at a tiny size: it runs, every peer agrees with the floor, and
the results file has the documented shape. Embedded store only; no timing assertions."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from benchmarks.__main__ import main


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
    store = {r["case"] for r in rows if r["group"] == "store"}
    assert "get_ci by id (per call)" in store
    assert any(case.startswith("neighbourhood depth 3") for case in store)
    docs = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    assert "<!-- bench:2k:begin -->" in docs and "Machine: " in docs
