"""The embedded store keeps what it acknowledged through kill -9, and two processes can
write to it at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from graph.aio import AsyncStore
from graph.sqlite_store import SqliteStore

ROOT = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent(
    """
    import sys
    from graph.model import ConfigurationItem, WriteContext
    from graph.sqlite_store import SqliteStore

    store = SqliteStore(sys.argv[1])
    prefix = sys.argv[2]
    for b in range(int(sys.argv[3])):
        cis = [ConfigurationItem(id=f"{prefix}-{b}-{i}", **{"class": "server"},
                                 name=f"{prefix}-{b}-{i}") for i in range(200)]
        store.upsert_cis(cis, WriteContext(actor=prefix))
        print(b, flush=True)  # acknowledged: the batch's transaction has committed
    """
)


def _writer(path: Path, prefix: str, batches: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), prefix, str(batches)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def test_acknowledged_writes_survive_kill_9(tmp_path):
    proc = _writer(tmp_path, "k", 10_000)
    acknowledged = -1
    assert proc.stdout is not None
    for line in proc.stdout:
        acknowledged = int(line)
        if acknowledged >= 15:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    store = SqliteStore(tmp_path)
    try:
        found = store.get_cis([f"k-{b}-{i}" for b in range(acknowledged + 1) for i in range(200)])
        assert len(found) == (acknowledged + 1) * 200
        # nothing half-written: every batch is all there or not there at all
        assert store.count_cis() % 200 == 0
        assert len(store.history(limit=100_000)) == store.count_cis()
    finally:
        store.close()


def test_two_processes_write_at_once(tmp_path):
    SqliteStore(tmp_path).close()
    procs = [_writer(tmp_path, p, 20) for p in ("a", "b")]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        assert out.split()[-1] == "19"
    store = SqliteStore(tmp_path)
    try:
        assert store.count_cis() == 2 * 20 * 200
    finally:
        store.close()


def test_async_wrapper_runs_store_calls_off_the_loop(tmp_path):
    store = SqliteStore(tmp_path)
    astore = AsyncStore(store, max_concurrency=2)

    async def main():
        return await asyncio.gather(*(astore.run(store.count_cis) for _ in range(5)))

    try:
        assert asyncio.run(main()) == [0] * 5
    finally:
        store.close()
