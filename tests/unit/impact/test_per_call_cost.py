"""What one explanation costs must not grow with the CMDB: explaining a CI whose state a
redundancy group decided reads that CI's groups, never a copy of the whole group table
(a proxy, not a timing: bytes allocated while explaining, measured by tracemalloc)."""

from __future__ import annotations

import tracemalloc

from graph.model import DEFAULT_REGISTRY, CiId
from impact.index import build_index
from impact.propagation import ImpactState, propagate
from impact.testing import topology_of

from .conftest import group

OWNERS = 20_000  # groups; a copy of their owner column as int64 would be 160 kB


def test_explaining_a_group_decision_does_not_copy_the_group_table() -> None:
    edges, redundancy = [], {}
    for i in range(OWNERS):
        app, a, b = f"app{i:05d}", f"vm{i:05d}a", f"vm{i:05d}b"
        edges += [(app, "RUNS_ON", a), (app, "RUNS_ON", b)]
        redundancy[app] = [group("vms", a, b)]
    topo = topology_of(edges, redundancy=redundancy)
    index = build_index(topo, DEFAULT_REGISTRY)
    middle = OWNERS // 2
    failed = [topo.number(CiId(f"vm{middle:05d}{side}")) for side in "ab"]
    radius = propagate(index, dict.fromkeys(failed, ImpactState.DOWN))
    owner = topo.number(CiId(f"app{middle:05d}"))
    radius.path(failed[0])  # warm: anything cached per query or per process is made now
    tracemalloc.start()
    try:
        path = radius.path(owner)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert topo.ids[path[0].node] == f"app{middle:05d}"
    assert path[0].group == "vms"  # decided by the group: the code path under test
    assert peak < 40_000, f"explaining one CI allocated {peak:,} bytes"
