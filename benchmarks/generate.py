"""A seeded generator of realistic enterprise CMDBs, and two adversarial micro-graphs.

``generate(size, seed)`` lays out an enterprise the way a CMDB sees it (fractions of
``size`` as in ``docs/benchmarks.md`` and performance-anchors §6.2)::

    site ◀─LOCATED_IN─ server ─CONNECTS_TO▶ network_device (a dual-homed pair) ─LOCATED_IN▶ site
                        │  └──POWERED_BY──▶ power_device (an A/B pair)          ─LOCATED_IN▶ site
    hypervisor_cluster ─DEPENDS_ON▶ server (its ~15 hosts; quorum 50 %)
    virtual_machine ─HOSTED_ON▶ 1-2 servers of one cluster (HA pair as a redundancy group)
    database ─RUNS_ON▶ virtual_machine;   database_cluster ─DEPENDS_ON▶ 3 databases (needs 2)
    technical_service (shared: DNS, auth, logging …) ─RUNS_ON▶ 2-4 VMs
    application ─RUNS_ON▶ 2-4 VMs (redundancy group "vms")
                ─DEPENDS_ON▶ load_balancer (half of them), 1-2 databases or clusters,
                             1-3 shared services (Zipf-skewed: DNS and auth are hubs),
                             1-2 older applications (30 % of apps; 1 % of calls answered back,
                             which makes cycles)
    business_service ─DEPENDS_ON▶ 3-10 applications
    user ─USES▶ 1-2 business services;  user ─MEMBER_OF▶ a group;  group ─USES▶ 1-3 services
    group ─OWNS / SUPPORTS▶ applications, servers, business services (carry no failure)

Every relationship type and class comes from ``graph.model``'s default registry, and every
type used propagates failure towards its source (or not at all), as its registry entry says.
Cluster membership is ``hypervisor_cluster DEPENDS_ON server`` (as the demo's database
cluster), not ``server PART_OF cluster``: the result is the same propagation, and Neo4j's
pruning var-length expand applies to single-direction patterns only.

The result is columnar (:class:`GeneratedCmdb`: ids, int codes, edge arrays): a million CIs and
~2.8 M relationships take ~100 MB. Model objects are built on demand, in chunks
(:meth:`GeneratedCmdb.iter_cis`), and so are CSV / JSON files (:func:`write_csv`,
:func:`write_json`). Everything is a pure function of ``(size, seed)``.

``python -m benchmarks.generate --size 10000 --out DIR --format csv`` writes the files.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

from graph.model import (
    DEFAULT_REGISTRY,
    ChangeKind,
    CiId,
    ConfigurationItem,
    ExternalChange,
    Quorum,
    RedundancyGroup,
    Registry,
    Relationship,
)
from graph.store import STATUS_ORDER, Topology
from importers.generic import (
    CI_FIELDS,
    LIST_SEPARATOR,
    REL_REQUIRED,
    attribute_kinds,
    column_header,
)

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]

# --------------------------------------------------------------------------------------------
# Vocabulary: the classes and types the generator uses (all in DEFAULT_REGISTRY)

CLASSES: Final = (
    "site",
    "hypervisor_cluster",
    "server",
    "network_device",
    "power_device",
    "virtual_machine",
    "database",
    "database_cluster",
    "technical_service",
    "load_balancer",
    "application",
    "business_service",
    "group",
    "user",
)
TYPES: Final = (
    "LOCATED_IN",
    "DEPENDS_ON",
    "CONNECTS_TO",
    "POWERED_BY",
    "HOSTED_ON",
    "RUNS_ON",
    "USES",
    "MEMBER_OF",
    "OWNS",
    "SUPPORTS",
)
_T = {name: code for code, name in enumerate(TYPES)}
_C = {name: code for code, name in enumerate(CLASSES)}


@dataclass(frozen=True, slots=True)
class LayerSpec:
    """One layer of the enterprise: ``fraction`` of the CIs (at least ``minimum``)."""

    name: str  # the id prefix
    ci_class: str
    fraction: float
    minimum: int


# Generation order. "db" + "dbc" make the 4 % of data stores; the users take what is left.
LAYERS: Final = (
    LayerSpec("site", "site", 0.00002, 2),
    LayerSpec("cluster", "hypervisor_cluster", 0.002, 2),
    LayerSpec("host", "server", 0.03, 4),
    LayerSpec("switch", "network_device", 0.00075, 2),
    LayerSpec("pdu", "power_device", 0.0015, 2),
    LayerSpec("vm", "virtual_machine", 0.20, 8),
    LayerSpec("db", "database", 0.034, 6),
    LayerSpec("dbc", "database_cluster", 0.006, 2),
    LayerSpec("shared", "technical_service", 0.0001, 3),
    LayerSpec("lb", "load_balancer", 0.0005, 2),
    LayerSpec("app", "application", 0.08, 8),
    LayerSpec("bsvc", "business_service", 0.008, 3),
    LayerSpec("group", "group", 0.005, 3),
    LayerSpec("user", "user", 0.0, 1),  # the rest
)
MIN_SIZE: Final = 200

SHARED_KINDS: Final = (
    "dns",
    "auth",
    "logging",
    "monitoring",
    "ntp",
    "smtp",
    "secrets",
    "registry",
    "kafka",
    "object-store",
)


@dataclass(frozen=True, slots=True)
class RedundancyRule:
    """Owners of ``owner_class`` get a group ``name`` over their ``rel_type`` targets (when
    they have two or more)."""

    owner_class: str
    rel_type: str
    name: str
    down_below: Quorum
    degraded_below: Quorum


# degraded_below stays 100 % everywhere but for the leaf clusters: losing one member degrades
# the owner, so degradation travels on and "affected in any state" equals plain reachability,
# which is what lets the harness check our propagation against BFS peers.
_ALL: Final = Quorum(percent=100)
REDUNDANCY_RULES: Final = (
    RedundancyRule("server", "POWERED_BY", "power", Quorum(count=1), _ALL),
    RedundancyRule("server", "CONNECTS_TO", "uplinks", Quorum(count=1), _ALL),
    RedundancyRule(
        "hypervisor_cluster", "DEPENDS_ON", "hosts", Quorum(percent=50), Quorum(percent=80)
    ),
    RedundancyRule("virtual_machine", "HOSTED_ON", "hosts", Quorum(count=1), _ALL),
    RedundancyRule("database_cluster", "DEPENDS_ON", "quorum", Quorum(count=2), _ALL),
    RedundancyRule("technical_service", "RUNS_ON", "vms", Quorum(count=1), _ALL),
    RedundancyRule("application", "RUNS_ON", "vms", Quorum(count=1), _ALL),
)


@dataclass(frozen=True, slots=True)
class Layer:
    name: str
    ci_class: str
    start: int
    stop: int

    @property
    def count(self) -> int:
        return self.stop - self.start

    def id(self, local: int) -> str:
        return f"{self.name}-{local:0{len(str(max(self.count - 1, 1)))}d}"


@dataclass(frozen=True, slots=True)
class Redundancy:
    """Redundancy groups as arrays: group g belongs to ``owner[g]`` under rule ``rule[g]``
    and has members ``members[offsets[g]:offsets[g + 1]]``."""

    owner: I32
    rule: I8
    offsets: I64
    members: I32

    @property
    def count(self) -> int:
        return int(self.owner.shape[0])


def _no_redundancy() -> Redundancy:
    return Redundancy(
        np.empty(0, np.int32), np.empty(0, np.int8), np.zeros(1, np.int64), np.empty(0, np.int32)
    )


@dataclass(frozen=True, eq=False)
class GeneratedCmdb:
    """A generated CMDB in columnar form. CI ``i`` (generation order) has ``ids[i]`` and
    class ``CLASSES[classes[i]]``; relationship ``e`` is ``ids[src[e]] -[TYPES[types[e]]]->
    ids[dst[e]]``. Model objects and file rows are derived on demand."""

    name: str
    seed: int
    layers: tuple[Layer, ...]
    ids: list[str]
    classes: I8
    src: I32
    dst: I32
    types: I8
    rand: I64  # per-CI random bits that attributes are derived from
    owner: I32  # per CI: the owning group (local number in layer "group"), or -1
    support: I32  # per CI: the supporting group, or -1
    redundancy: Redundancy = field(default_factory=_no_redundancy)
    roots: dict[str, str] = field(default_factory=dict)  # named CIs (micro-graphs' failure)
    _groups_by_owner: dict[int, list[int]] = field(default_factory=dict, repr=False)
    _starts: list[int] = field(default_factory=list, repr=False)

    # -- sizes -------------------------------------------------------------------------------
    @property
    def ci_count(self) -> int:
        return len(self.ids)

    @property
    def relationship_count(self) -> int:
        return int(self.src.shape[0])

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r}; layers: {', '.join(x.name for x in self.layers)}")

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.classes, minlength=len(CLASSES))
        return {CLASSES[c]: int(n) for c, n in enumerate(counts) if n}

    def type_counts(self) -> dict[str, int]:
        counts = np.bincount(self.types, minlength=len(TYPES))
        return {TYPES[t]: int(n) for t, n in enumerate(counts) if n}

    def _layer_at(self, i: int) -> Layer:
        if not self._starts:
            self._starts.extend(layer.start for layer in self.layers)
        return self.layers[bisect.bisect_right(self._starts, i) - 1]

    # -- redundancy --------------------------------------------------------------------------
    def groups_of(self, i: int) -> tuple[RedundancyGroup, ...]:
        """The redundancy groups CI ``i`` owns."""
        if not self._groups_by_owner and self.redundancy.count:
            for g, owner in enumerate(self.redundancy.owner.tolist()):
                self._groups_by_owner.setdefault(owner, []).append(g)
        return tuple(self._group(g) for g in self._groups_by_owner.get(i, ()))

    def _group(self, g: int) -> RedundancyGroup:
        red = self.redundancy
        rule = REDUNDANCY_RULES[int(red.rule[g])]
        members = red.members[int(red.offsets[g]) : int(red.offsets[g + 1])]
        return RedundancyGroup(
            name=rule.name,
            members=tuple(CiId(self.ids[m]) for m in members.tolist()),
            down_below=rule.down_below,
            degraded_below=rule.degraded_below,
        )

    # -- records and model objects -----------------------------------------------------------
    def record(self, i: int) -> dict[str, Any]:
        """CI ``i`` as a JSON-able dict in the import shape (``class``, nested attributes)."""
        layer = self._layer_at(i)
        local = i - layer.start
        r = int(self.rand[i])
        rec = _RECORDS.get(layer.ci_class, _plain_record)(self, layer, local, r)
        rec["id"] = self.ids[i]
        rec["class"] = layer.ci_class
        groups = self.groups_of(i)
        if groups:
            rec["redundancy"] = [g.model_dump(mode="json") for g in groups]
        return rec

    def ci(self, i: int) -> ConfigurationItem:
        return ConfigurationItem.model_validate(self.record(i))

    def relationship(self, e: int) -> Relationship:
        return Relationship(
            source=CiId(self.ids[int(self.src[e])]),
            type=TYPES[int(self.types[e])],
            target=CiId(self.ids[int(self.dst[e])]),
        )

    def iter_cis(self, chunk: int = 10_000) -> Iterator[list[ConfigurationItem]]:
        """Every CI as model objects, ``chunk`` at a time (generation order)."""
        for start in range(0, self.ci_count, chunk):
            yield [self.ci(i) for i in range(start, min(start + chunk, self.ci_count))]

    def iter_relationships(self, chunk: int = 10_000) -> Iterator[list[Relationship]]:
        """Every relationship as model objects, ``chunk`` at a time."""
        ids, names = self.ids, TYPES
        for start in range(0, self.relationship_count, chunk):
            stop = min(start + chunk, self.relationship_count)
            yield [
                Relationship(source=CiId(ids[s]), type=names[t], target=CiId(ids[d]))
                for s, t, d in zip(
                    self.src[start:stop].tolist(),
                    self.types[start:stop].tolist(),
                    self.dst[start:stop].tolist(),
                    strict=True,
                )
            ]

    # -- structure ---------------------------------------------------------------------------
    def order(self) -> I64:
        """Generation positions in sorted-id order: the node numbering both stores use."""
        return np.argsort(np.array(self.ids), kind="stable").astype(np.int64)

    def topology(self, registry: Registry = DEFAULT_REGISTRY, generation: str = "") -> Topology:
        """The :class:`~graph.store.Topology` a store holding this CMDB would hand out: nodes
        numbered in sorted-id order, codes in the registry's order, every CI operational."""
        type_names, class_names = registry.fingerprint()
        order = self.order()
        position = np.empty(self.ci_count, dtype=np.int64)
        position[order] = np.arange(self.ci_count)
        class_map = np.array([class_names.index(c) for c in CLASSES], dtype=np.int16)
        type_map = np.array([type_names.index(t) for t in TYPES], dtype=np.int16)
        redundancy = {
            int(position[owner]): self.groups_of(owner)
            for owner in np.unique(self.redundancy.owner).tolist()
        }
        ids = self.ids
        return Topology(
            ids=[CiId(ids[i]) for i in order.tolist()],
            classes=class_map[self.classes[order]],
            class_names=class_names,
            statuses=np.full(self.ci_count, STATUS_ORDER.index(STATUS_ORDER[0]), dtype=np.int8),
            src=position[self.src].astype(np.int32),
            dst=position[self.dst].astype(np.int32),
            rel_types=type_map[self.types],
            type_names=type_names,
            redundancy=redundancy,
            generation=generation or self.name,
            as_of=datetime.now(UTC),
        )


# --------------------------------------------------------------------------------------------
# The enterprise


def layer_sizes(size: int) -> dict[str, int]:
    """How many CIs each layer gets for a CMDB of ``size`` CIs."""
    if size < MIN_SIZE:
        raise ValueError(f"size {size} is too small; the generator needs at least {MIN_SIZE}")
    counts = {spec.name: max(spec.minimum, round(size * spec.fraction)) for spec in LAYERS[:-1]}
    counts[LAYERS[-1].name] = size - sum(counts.values())
    return counts


def generate(size: int, seed: int = 42) -> GeneratedCmdb:
    """A CMDB of exactly ``size`` CIs; the same ``(size, seed)`` gives the same CMDB.

    >>> cmdb = generate(2000, seed=1)
    >>> cmdb.ci_count, cmdb.class_counts()["virtual_machine"]
    (2000, 400)
    """
    rng = np.random.default_rng(seed)
    counts = layer_sizes(size)
    layers: list[Layer] = []
    start = 0
    for spec in LAYERS:
        layers.append(Layer(spec.name, spec.ci_class, start, start + counts[spec.name]))
        start += counts[spec.name]
    at = {layer.name: layer for layer in layers}
    ids = [layer.id(k) for layer in layers for k in range(layer.count)]
    classes = np.concatenate(
        [np.full(layer.count, _C[layer.ci_class], dtype=np.int8) for layer in layers]
    )
    edges = _Edges(at)
    n = {name: layer.count for name, layer in at.items()}
    arange = np.arange

    # Facilities: hosts in contiguous blocks per site, cluster, switch pair and PDU pair.
    host_site = arange(n["host"]) * n["site"] // n["host"]
    edges.add("host", arange(n["host"]), "LOCATED_IN", "site", host_site)
    for layer_name in ("switch", "pdu", "lb"):
        local = arange(n[layer_name])
        edges.add(layer_name, local, "LOCATED_IN", "site", local * n["site"] // n[layer_name])
    host_cluster = arange(n["host"]) * n["cluster"] // n["host"]
    edges.add("cluster", host_cluster, "DEPENDS_ON", "host", arange(n["host"]))
    for layer_name, rel_type in (("switch", "CONNECTS_TO"), ("pdu", "POWERED_BY")):
        first = arange(n["host"]) * n[layer_name] // n["host"]
        partner = np.where(first ^ 1 < n[layer_name], first ^ 1, first - 1)
        hosts = arange(n["host"])
        edges.add(
            "host",
            np.concatenate((hosts, hosts)),
            rel_type,
            layer_name,
            np.concatenate((first, partner)),
        )

    # VMs on one host, or an HA pair of hosts of the same cluster.
    cluster_start = np.searchsorted(host_cluster, arange(n["cluster"]))
    cluster_size = np.diff(np.append(cluster_start, n["host"]))
    vm_host = rng.integers(0, n["host"], n["vm"])
    pair = rng.random(n["vm"]) < 0.4
    c = host_cluster[vm_host]
    vm_partner = cluster_start[c] + rng.integers(0, 1 << 30, n["vm"]) % cluster_size[c]
    vms = arange(n["vm"])
    edges.add(
        "vm",
        np.concatenate((vms, vms[pair])),
        "HOSTED_ON",
        "host",
        np.concatenate((vm_host, vm_partner[pair])),
    )

    # Data: every database on a VM; clusters of three databases that need two.
    edges.add("db", arange(n["db"]), "RUNS_ON", "vm", rng.integers(0, n["vm"], n["db"]))
    clustered = min(n["dbc"] * 3, n["db"])
    edges.add("dbc", arange(clustered) // 3, "DEPENDS_ON", "db", arange(clustered))

    # Shared platform services, each on 2-4 VMs.
    src, k = _fan(rng, n["shared"], 2, 4)
    edges.add("shared", src, "RUNS_ON", "vm", rng.integers(0, n["vm"], k))

    # Applications.
    src, k = _fan(rng, n["app"], 2, 4)
    edges.add("app", src, "RUNS_ON", "vm", rng.integers(0, n["vm"], k))
    behind_lb = np.flatnonzero(rng.random(n["app"]) < 0.5)
    edges.add("app", behind_lb, "DEPENDS_ON", "lb", rng.integers(0, n["lb"], behind_lb.shape[0]))
    # data endpoints: every cluster, and the databases outside clusters
    src, k = _fan(rng, n["app"], 1, 2)
    pick = rng.integers(0, n["dbc"] + n["db"] - clustered, k)
    is_cluster = pick < n["dbc"]
    edges.add("app", src[is_cluster], "DEPENDS_ON", "dbc", pick[is_cluster])
    edges.add("app", src[~is_cluster], "DEPENDS_ON", "db", pick[~is_cluster] - n["dbc"] + clustered)
    # shared services, Zipf-skewed so that the first few are hubs
    weights = 1.0 / (arange(n["shared"]) + 1.0) ** 1.1
    src, k = _fan(rng, n["app"], 1, 3)
    edges.add(
        "app",
        src,
        "DEPENDS_ON",
        "shared",
        rng.choice(n["shared"], size=k, p=weights / weights.sum()),
    )
    # calls to older applications (a DAG), 1 % of them answered back (cycles)
    callers = np.flatnonzero((rng.random(n["app"]) < 0.3) & (arange(n["app"]) > 0))
    src, k = _fan(rng, callers.shape[0], 1, 2)
    caller = callers[src]
    callee = (rng.random(k) * caller).astype(np.int64)
    edges.add("app", caller, "DEPENDS_ON", "app", callee)
    back = rng.random(k) < 0.01
    edges.add("app", callee[back], "DEPENDS_ON", "app", caller[back])

    # Services and people.
    src, k = _fan(rng, n["bsvc"], 3, 10)
    edges.add("bsvc", src, "DEPENDS_ON", "app", rng.integers(0, n["app"], k))
    users = arange(n["user"])
    second = rng.random(n["user"]) < 0.25
    edges.add(
        "user",
        np.concatenate((users, users[second])),
        "USES",
        "bsvc",
        rng.integers(0, n["bsvc"], n["user"] + int(second.sum())),
    )
    edges.add("user", users, "MEMBER_OF", "group", rng.integers(0, n["group"], n["user"]))
    src, k = _fan(rng, n["group"], 1, 3)
    edges.add("group", src, "USES", "bsvc", rng.integers(0, n["bsvc"], k))
    app_owner = rng.integers(0, n["group"], n["app"])
    app_support = rng.integers(0, n["group"], n["app"])
    host_support = rng.integers(0, n["group"], n["host"])
    bsvc_owner = rng.integers(0, n["group"], n["bsvc"])
    edges.add("group", app_owner, "OWNS", "app", arange(n["app"]))
    edges.add("group", app_support, "SUPPORTS", "app", arange(n["app"]))
    edges.add("group", host_support, "SUPPORTS", "host", arange(n["host"]))
    edges.add("group", bsvc_owner, "OWNS", "bsvc", arange(n["bsvc"]))

    src_all, dst_all, types_all = edges.build()
    rand = rng.integers(0, 1 << 62, size, dtype=np.int64)
    owner = np.full(size, -1, dtype=np.int32)
    support = np.full(size, -1, dtype=np.int32)
    for layer_name, owners, supporters in (
        ("app", app_owner, app_support),
        ("host", None, host_support),
        ("bsvc", bsvc_owner, None),
    ):
        span = slice(at[layer_name].start, at[layer_name].stop)
        if owners is not None:
            owner[span] = owners
        if supporters is not None:
            support[span] = supporters
    redundancy = _redundancy(classes, src_all, dst_all, types_all)
    return GeneratedCmdb(
        name=f"cmdb-{size}-seed{seed}",
        seed=seed,
        layers=tuple(layers),
        ids=ids,
        classes=classes,
        src=src_all,
        dst=dst_all,
        types=types_all,
        rand=rand,
        owner=owner,
        support=support,
        redundancy=redundancy,
        roots={"shared-hub": at["shared"].id(0)},
    )


class _Edges:
    """Collects relationship arrays layer by layer; ``build`` drops repeats."""

    def __init__(self, layers: dict[str, Layer]) -> None:
        self.layers = layers
        self.parts: list[tuple[I64, I64, int]] = []

    def add(self, src_layer: str, src: Any, rel_type: str, dst_layer: str, dst: Any) -> None:
        s = np.asarray(src, dtype=np.int64) + self.layers[src_layer].start
        d = np.asarray(dst, dtype=np.int64) + self.layers[dst_layer].start
        self.parts.append((s, d, _T[rel_type]))

    def build(self) -> tuple[I32, I32, I8]:
        srcs, dsts, types = [], [], []
        for s, d, t in self.parts:
            keep = s != d
            key = np.unique((s[keep] << 32) | d[keep])  # sorted by source, then target
            srcs.append((key >> 32).astype(np.int32))
            dsts.append((key & 0xFFFFFFFF).astype(np.int32))
            types.append(np.full(key.shape[0], t, dtype=np.int8))
        src, dst, typ = np.concatenate(srcs), np.concatenate(dsts), np.concatenate(types)
        # The same pair may come from two parts of one type (an app calling an app that
        # calls it back is two pairs, fine; the same triple twice is not).
        triple = (src.astype(np.int64) << 36) | (dst.astype(np.int64) << 4) | typ
        _, first = np.unique(triple, return_index=True)
        first.sort()
        return src[first], dst[first], typ[first]


def _fan(rng: np.random.Generator, owners: int, low: int, high: int) -> tuple[I64, int]:
    """Each of ``owners`` gets ``low..high`` picks: the owner of each pick, and the total."""
    per = rng.integers(low, high + 1, owners)
    return np.repeat(np.arange(owners, dtype=np.int64), per), int(per.sum())


def _redundancy(classes: I8, src: I32, dst: I32, types: I8) -> Redundancy:
    owners: list[I32] = []
    rules: list[I8] = []
    sizes: list[I64] = []
    members: list[I32] = []
    for code, rule in enumerate(REDUNDANCY_RULES):
        pick = (types == _T[rule.rel_type]) & (classes[src] == _C[rule.owner_class])
        s, d = src[pick], dst[pick]
        order = np.lexsort((d, s))
        s, d = s[order], d[order]
        owner, first, count = np.unique(s, return_index=True, return_counts=True)
        several = count >= 2
        owner, first, count = owner[several], first[several], count[several]
        take = np.repeat(first, count) + (
            np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        )
        owners.append(owner.astype(np.int32))
        rules.append(np.full(owner.shape[0], code, dtype=np.int8))
        sizes.append(count.astype(np.int64))
        members.append(d[take].astype(np.int32))
    owner_all = np.concatenate(owners)
    by_owner = np.argsort(owner_all, kind="stable")
    size_all = np.concatenate(sizes)
    starts = np.concatenate(([0], np.cumsum(size_all)[:-1])).astype(np.int64)
    member_all = np.concatenate(members)
    offsets = np.zeros(owner_all.shape[0] + 1, dtype=np.int64)
    np.cumsum(size_all[by_owner], out=offsets[1:])
    take = (
        np.concatenate([np.arange(starts[g], starts[g] + size_all[g]) for g in by_owner.tolist()])
        if owner_all.shape[0]
        else np.empty(0, np.int64)
    )
    return Redundancy(
        owner=owner_all[by_owner],
        rule=np.concatenate(rules)[by_owner],
        offsets=offsets,
        members=member_all[take.astype(np.int64)],
    )


# --------------------------------------------------------------------------------------------
# Records: about ten attributes per CI, derived from the CI's random bits


def _bits(r: int, k: int, m: int) -> int:
    """The k-th small random number below ``m`` from a CI's random bits."""
    return ((r * (2 * k + 1) * 0x9E3779B1) >> (7 + 3 * k)) % m


_ENVS: Final = ("prod", "prod", "prod", "prod", "prod", "prod", "prod", "staging", "dev", "test")
_OSES: Final = (
    "RHEL 9.4",
    "RHEL 8.10",
    "Ubuntu 22.04",
    "Ubuntu 24.04",
    "Debian 12",
    "Windows Server 2022",
    "SLES 15 SP5",
)
_VENDORS: Final = (
    ("Dell", "PowerEdge R760"),
    ("HPE", "ProLiant DL380 Gen11"),
    ("Lenovo", "ThinkSystem SR650 V3"),
    ("Cisco", "UCS C240 M7"),
)
_LANGS: Final = ("Java", "Python", "Go", "TypeScript", "C#", "Kotlin", "Ruby", "PHP")
_ENGINES: Final = (
    ("PostgreSQL", ("14.12", "15.7", "16.4")),
    ("MySQL", ("8.0.39", "8.4.2")),
    ("Oracle", ("19c", "23ai")),
    ("SQL Server", ("2019", "2022")),
    ("MongoDB", ("6.0", "7.0")),
)
_TAGS: Final = (
    "pci",
    "gdpr",
    "sox",
    "internet-facing",
    "legacy",
    "cloud-ready",
    "tier0",
    "batch",
    "customer-facing",
    "internal",
)
_FIRST: Final = (
    "Alice",
    "Bob",
    "Carol",
    "David",
    "Emma",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jules",
    "Karim",
    "Léa",
    "Marc",
    "Nora",
    "Omar",
    "Paula",
    "Quentin",
    "Rosa",
    "Sami",
    "Tess",
    "Ugo",
    "Vera",
    "Wen",
    "Xavier",
    "Yara",
    "Zoé",
)
_LAST: Final = (
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "Nguyen",
    "Müller",
    "Rossi",
    "Kowalski",
    "Silva",
    "Okafor",
    "Tanaka",
    "Haddad",
    "Ivanova",
)
_DEPTS: Final = (
    "Finance",
    "Sales",
    "Retail",
    "Logistics",
    "HR",
    "Legal",
    "Marketing",
    "IT",
    "Support",
    "Procurement",
    "R&D",
    "Operations",
)
_CITIES: Final = (
    "Paris",
    "Lyon",
    "Frankfurt",
    "Dublin",
    "Madrid",
    "Milan",
    "Warsaw",
    "Amsterdam",
    "Stockholm",
    "Lisbon",
)


def _common(r: int, cmdb: GeneratedCmdb, layer: Layer, local: int) -> dict[str, Any]:
    crit = 1 + _bits(r, 1, 4)
    return {
        "name": layer.id(local),
        "status": "maintenance" if _bits(r, 2, 500) == 0 else "operational",
        "environment": _ENVS[_bits(r, 3, len(_ENVS))],
        "criticality": crit,
        "description": f"{layer.ci_class.replace('_', ' ')} {local} (generated, seed {cmdb.seed})",
        "tags": sorted({_TAGS[_bits(r, 4, len(_TAGS))], _TAGS[_bits(r, 5, len(_TAGS))]}),
    }


def _groups(cmdb: GeneratedCmdb, layer: Layer, local: int) -> tuple[str | None, str | None]:
    """The owning and supporting groups of a CI (drawn with its OWNS / SUPPORTS edges)."""
    i = layer.start + local
    owner, support = int(cmdb.owner[i]), int(cmdb.support[i])
    if owner < 0 and support < 0:  # micro-graphs have no group layer
        return None, None
    group = cmdb.layer("group")
    return (group.id(owner) if owner >= 0 else None, group.id(support) if support >= 0 else None)


def _cost(r: int) -> str:
    return f"CC-{1000 + _bits(r, 6, 9000)}"


def _host_record(cmdb: GeneratedCmdb, layer: Layer, local: int, r: int) -> dict[str, Any]:
    rec = _common(r, cmdb, layer, local)
    vendor, model = _VENDORS[_bits(r, 7, len(_VENDORS))]
    _, support = _groups(cmdb, layer, local)
    rec.update(support_group=support, environment="prod")
    rec["attributes"] = {
        "serial_number": f"SN{r % 10**10:010d}{local}",
        "fqdn": f"{rec['name']}.dc.example.com",
        "vendor": vendor,
        "model": model,
        "cpu_cores": 16 * (1 + _bits(r, 8, 8)),
        "ram_gb": 128 * (1 + _bits(r, 9, 8)),
        "os": "VMware ESXi 8.0U3",
        "rack": f"R{_bits(r, 10, 40):02d}",
        "purchase_date": f"20{18 + _bits(r, 11, 7)}-{1 + _bits(r, 12, 12):02d}-15",
        "cost_center": _cost(r),
    }
    return rec


def _vm_record(cmdb: GeneratedCmdb, layer: Layer, local: int, r: int) -> dict[str, Any]:
    rec = _common(r, cmdb, layer, local)
    rec["attributes"] = {
        "fqdn": f"{rec['name']}.corp.example.com",
        "serial_number": f"VMware-{r % 16**12:012x}",
        "os": _OSES[_bits(r, 7, len(_OSES))],
        "vcpu": 2 ** _bits(r, 8, 5),
        "ram_gb": 4 * 2 ** _bits(r, 9, 5),
        "ip_address": f"10.{_bits(r, 10, 256)}.{_bits(r, 11, 256)}.{1 + _bits(r, 12, 254)}",
        "image": f"golden-{_bits(r, 13, 12)}",
        "backup_policy": ("daily", "weekly", "none")[_bits(r, 14, 3)],
        "cost_center": _cost(r),
    }
    return rec


def _db_record(cmdb: GeneratedCmdb, layer: Layer, local: int, r: int) -> dict[str, Any]:
    rec = _common(r, cmdb, layer, local)
    engine, versions = _ENGINES[_bits(r, 7, len(_ENGINES))]
    rec["attributes"] = {
        "engine": engine,
        "version": versions[_bits(r, 8, len(versions))],
        "port": 5432 + _bits(r, 9, 100),
        "size_gb": 10 * (1 + _bits(r, 10, 500)),
        "fqdn": f"{rec['name']}.db.example.com",
        "backup_policy": ("pitr", "daily", "weekly")[_bits(r, 11, 3)],
        "encryption": bool(_bits(r, 12, 2)),
        "cost_center": _cost(r),
    }
    return rec


def _app_record(cmdb: GeneratedCmdb, layer: Layer, local: int, r: int) -> dict[str, Any]:
    rec = _common(r, cmdb, layer, local)
    owner, support = _groups(cmdb, layer, local)
    rec.update(owner=owner, support_group=support)
    lang = _LANGS[_bits(r, 7, len(_LANGS))]
    rec["attributes"] = {
        "language": lang,
        "version": f"{_bits(r, 8, 10)}.{_bits(r, 9, 30)}.{_bits(r, 10, 100)}",
        "repo": f"git.example.com/{layer.name}/{rec['name']}",
        "lifecycle": ("production", "production", "sunset", "pilot")[_bits(r, 11, 4)],
        "sla": ("99.9", "99.5", "99.95", "99")[_bits(r, 12, 4)],
        "port": 8000 + _bits(r, 13, 1000),
        "health_url": f"https://{rec['name']}.apps.example.com/health",
        "vendor": "in-house" if _bits(r, 14, 3) else "COTS",
        "cost_center": _cost(r),
    }
    return rec


def _service_record(cmdb: GeneratedCmdb, layer: Layer, local: int, r: int) -> dict[str, Any]:
    rec = _common(r, cmdb, layer, local)
    if layer.ci_class == "technical_service":
        kind = SHARED_KINDS[local % len(SHARED_KINDS)]
        rec["name"] = f"{kind}-{local // len(SHARED_KINDS)}"
        rec["criticality"] = 1
        rec["environment"] = "prod"
    else:
        owner, _ = _groups(cmdb, layer, local)
        rec.update(owner=owner, support_group="service-desk")
    rec["attributes"] = {
        "service_owner": f"{_FIRST[_bits(r, 7, len(_FIRST))]} {_LAST[_bits(r, 8, len(_LAST))]}",
        "sla": ("99.9", "99.5", "99.95")[_bits(r, 9, 3)],
        "hours": ("24x7", "business hours", "8x5")[_bits(r, 10, 3)],
        "rto_minutes": 15 * (1 + _bits(r, 11, 16)),
        "rpo_minutes": 5 * (1 + _bits(r, 12, 12)),
        "catalog_id": f"SVC{r % 10**6:06d}",
        "portfolio": _DEPTS[_bits(r, 13, len(_DEPTS))],
        "cost_center": _cost(r),
    }
    return rec


def _user_record(cmdb: GeneratedCmdb, layer: Layer, local: int, r: int) -> dict[str, Any]:
    first, last = _FIRST[_bits(r, 7, len(_FIRST))], _LAST[_bits(r, 8, len(_LAST))]
    return {
        "name": f"{first} {last}",
        "status": "operational",
        "attributes": {
            "email": f"{_ascii(first)}.{_ascii(last)}.{local}@example.com",
            "employee_id": f"E{local:07d}",
            "department": _DEPTS[_bits(r, 9, len(_DEPTS))],
            "location": _CITIES[_bits(r, 10, len(_CITIES))],
            "title": ("Analyst", "Engineer", "Manager", "Clerk", "Director")[_bits(r, 11, 5)],
            "phone": f"+33 1 {_bits(r, 12, 100):02d} {_bits(r, 13, 100):02d} {local % 100:02d}",
            "vip": _bits(r, 14, 50) == 0,
            "cost_center": _cost(r),
        },
    }


def _ascii(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


def _plain_record(cmdb: GeneratedCmdb, layer: Layer, local: int, r: int) -> dict[str, Any]:
    rec = _common(r, cmdb, layer, local)
    if layer.ci_class in ("site", "power_device", "network_device", "load_balancer"):
        rec["environment"] = "prod"
    by_class: dict[str, dict[str, Any]] = {
        "site": {
            "city": _CITIES[local % len(_CITIES)],
            "tier": ("III", "IV")[local % 2],
            "address": f"{1 + _bits(r, 7, 200)} rue de l'Exemple",
        },
        "hypervisor_cluster": {
            "vendor": "VMware",
            "version": "vSphere 8.0U3",
            "ha_enabled": True,
            "drs": "fully automated",
        },
        "network_device": {
            "vendor": "Arista",
            "model": "7050X3",
            "role": "top-of-rack",
            "serial_number": f"JPE{r % 10**8:08d}",
            "mgmt_ip": f"10.255.{_bits(r, 7, 256)}.{_bits(r, 8, 256)}",
        },
        "power_device": {
            "vendor": "APC",
            "model": "AP8881",
            "feed": "AB"[local % 2],
            "max_amps": 32,
        },
        "load_balancer": {
            "vendor": ("F5", "HAProxy", "NetScaler")[_bits(r, 7, 3)],
            "vip_count": 10 + _bits(r, 8, 200),
            "ha_mode": "active/standby",
        },
        "database_cluster": {
            "replication": "synchronous",
            "failover": "automatic",
            "engine": "PostgreSQL",
            "version": "16.4",
        },
        "group": {
            "email": f"{layer.id(local)}@example.com",
            "oncall": f"+33 1 00 {_bits(r, 7, 100):02d} {local % 100:02d}",
            "manager": f"{_FIRST[_bits(r, 8, len(_FIRST))]} {_LAST[_bits(r, 9, len(_LAST))]}",
            "chat": f"#team-{local}",
        },
    }
    attrs = dict(by_class.get(layer.ci_class, {}))
    attrs["cost_center"] = _cost(r)
    attrs["managed_by"] = ("infra", "network", "facilities", "platform")[_bits(r, 10, 4)]
    attrs["asset_tag"] = f"AT-{layer.name}-{local}"
    rec["attributes"] = attrs
    return rec


_Record = Callable[[GeneratedCmdb, Layer, int, int], dict[str, Any]]
_RECORDS: Final[dict[str, _Record]] = {
    "server": _host_record,
    "virtual_machine": _vm_record,
    "database": _db_record,
    "application": _app_record,
    "technical_service": _service_record,
    "business_service": _service_record,
    "user": _user_record,
}


# --------------------------------------------------------------------------------------------
# Micro-graphs


def _micro(
    name: str, layers: Sequence[Layer], src: Any, dst: Any, roots: dict[str, str], *, seed: int = 0
) -> GeneratedCmdb:
    ids = [layer.id(k) for layer in layers for k in range(layer.count)]
    classes = np.concatenate(
        [np.full(layer.count, _C[layer.ci_class], dtype=np.int8) for layer in layers]
    )
    s = np.asarray(src, dtype=np.int32)
    return GeneratedCmdb(
        name=name,
        seed=seed,
        layers=tuple(layers),
        ids=ids,
        classes=classes,
        src=s,
        dst=np.asarray(dst, dtype=np.int32),
        types=np.full(s.shape[0], _T["DEPENDS_ON"], dtype=np.int8),
        rand=np.random.default_rng(seed).integers(0, 1 << 62, len(ids), dtype=np.int64),
        owner=np.full(len(ids), -1, dtype=np.int32),
        support=np.full(len(ids), -1, dtype=np.int32),
        roots=roots,
    )


def diamond_ladder(k: int = 12, w: int = 4) -> GeneratedCmdb:
    """A root and ``k`` layers of ``w`` CIs; every CI of layer 1 depends on the root, every CI
    of layer i+1 on every CI of layer i. From the root there are ``w**k`` distinct paths to
    the last layer, through ``k * w + 1`` CIs.

    >>> ladder = diamond_ladder(3, 2)
    >>> ladder.ci_count, ladder.relationship_count
    (7, 10)
    """
    if k < 1 or w < 1:
        raise ValueError("a diamond ladder needs k >= 1 layers of width w >= 1")
    root = Layer("dl-root", "technical_service", 0, 1)
    rungs = Layer(f"dl{k}x{w}", "application", 1, 1 + k * w)
    src = [1 + j for j in range(w)]
    dst = [0] * w
    for layer in range(1, k):
        for a in range(w):
            for b in range(w):
                src.append(1 + layer * w + a)
                dst.append(1 + (layer - 1) * w + b)
    return _micro(f"diamond-ladder-{k}x{w}", (root, rungs), src, dst, {"root": root.id(0)})


def star(n: int = 100_000) -> GeneratedCmdb:
    """One hub with ``n`` dependents (each ``DEPENDS_ON`` the hub)."""
    if n < 1:
        raise ValueError("a star needs n >= 1 dependents")
    hub = Layer("star-hub", "technical_service", 0, 1)
    leaves = Layer("star", "application", 1, 1 + n)
    return _micro(f"star-{n}", (hub, leaves), np.arange(1, n + 1), np.zeros(n), {"root": hub.id(0)})


# --------------------------------------------------------------------------------------------
# A stream of configuration changes


def generate_changes(
    cmdb: GeneratedCmdb, count: int, seed: int = 42, *, now: datetime | None = None
) -> list[ExternalChange]:
    """``count`` deployments (on applications) and change requests (on servers, VMs,
    databases, network devices, load balancers; with planned windows) over the 30 days
    before ``now`` (default: today, midnight UTC), oldest first."""
    end = now or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rng = np.random.default_rng([seed, count, cmdb.ci_count])
    apps = cmdb.layer("app")
    infra = [cmdb.layer(name) for name in ("host", "vm", "db", "switch", "lb")]
    infra_sizes = np.array([layer.count for layer in infra], dtype=np.float64)
    seconds = np.sort(rng.integers(0, 30 * 86400, count))[::-1]
    changes: list[ExternalChange] = []
    for k in range(count):
        at = end - timedelta(seconds=int(seconds[k]))
        if rng.random() < 0.6:
            i = apps.start + int(rng.integers(0, apps.count))
            version = f"{rng.integers(1, 10)}.{rng.integers(0, 40)}.{rng.integers(0, 200)}"
            changes.append(
                ExternalChange(
                    id=f"gen-{seed}-{k}",
                    ci=CiId(cmdb.ids[i]),
                    kind=ChangeKind.DEPLOYMENT,
                    at=at,
                    summary=f"deploy {cmdb.ids[i]} {version}",
                    external_ref=f"DEPLOY-{seed}-{k}",
                )
            )
        else:
            layer = infra[int(rng.choice(len(infra), p=infra_sizes / infra_sizes.sum()))]
            i = layer.start + int(rng.integers(0, layer.count))
            start = at + timedelta(hours=int(rng.integers(1, 72)))
            what = ("patch", "firmware upgrade", "reboot", "resize", "certificate renewal")[
                int(rng.integers(0, 5))
            ]
            changes.append(
                ExternalChange(
                    id=f"gen-{seed}-{k}",
                    ci=CiId(cmdb.ids[i]),
                    kind=ChangeKind.CHANGE_REQUEST,
                    at=at,
                    summary=f"{what} of {cmdb.ids[i]}",
                    external_ref=f"CHG{seed % 1000:03d}{k:07d}",
                    planned_start=start,
                    planned_end=start + timedelta(hours=int(rng.integers(1, 5))),
                )
            )
    return changes


# --------------------------------------------------------------------------------------------
# Files

# The columns of `cmdb import csv`, from the importer itself so the two never drift.
CI_COLUMNS: Final = CI_FIELDS
RELATIONSHIP_COLUMNS: Final = REL_REQUIRED
TAG_SEPARATOR: Final = LIST_SEPARATOR


def attribute_columns(cmdb: GeneratedCmdb) -> dict[str, str]:
    """Every attribute the CMDB's CIs use, sorted, with its CSV header: ``name`` for strings,
    ``name:int`` / ``name:bool`` / ``name:float`` otherwise (each attribute has one type in
    every class)."""
    kinds = attribute_kinds(
        (name, value)
        for layer in cmdb.layers
        if layer.count
        for name, value in cmdb.record(layer.start).get("attributes", {}).items()
    )
    return {n: column_header(n, kinds[n]) for n in sorted(kinds)}


def write_csv(cmdb: GeneratedCmdb, directory: str | Path, chunk: int = 10_000) -> list[Path]:
    """``cis.csv`` and ``relationships.csv`` in ``directory``: the generic CSV format of
    ``cmdb import csv`` (``importers.generic``). CI columns are :data:`CI_COLUMNS` then one
    per attribute, typed in its header (``cpu_cores:int``), empty when the CI has none;
    ``tags`` are ``;``-separated, ``redundancy`` is JSON."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    columns = attribute_columns(cmdb)
    attrs = list(columns)
    cis_path, rels_path = out / "cis.csv", out / "relationships.csv"
    with cis_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*CI_COLUMNS, *columns.values()])
        for start in range(0, cmdb.ci_count, chunk):
            rows = []
            for i in range(start, min(start + chunk, cmdb.ci_count)):
                rec = cmdb.record(i)
                values = rec.get("attributes", {})
                rows.append(
                    [
                        rec["id"],
                        rec["class"],
                        rec["name"],
                        rec.get("status", "operational"),
                        rec.get("environment") or "",
                        rec.get("criticality") or "",
                        rec.get("owner") or "",
                        rec.get("support_group") or "",
                        rec.get("description") or "",
                        TAG_SEPARATOR.join(rec.get("tags", ())),
                        orjson.dumps(rec["redundancy"]).decode() if "redundancy" in rec else "",
                        *(_cell(values.get(name)) for name in attrs),
                    ]
                )
            writer.writerows(rows)
    with rels_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(RELATIONSHIP_COLUMNS)
        ids = cmdb.ids
        for start in range(0, cmdb.relationship_count, chunk * 10):
            stop = min(start + chunk * 10, cmdb.relationship_count)
            writer.writerows(
                (ids[s], ids[d], TYPES[t])
                for s, d, t in zip(
                    cmdb.src[start:stop].tolist(),
                    cmdb.dst[start:stop].tolist(),
                    cmdb.types[start:stop].tolist(),
                    strict=True,
                )
            )
    return [cis_path, rels_path]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_json(cmdb: GeneratedCmdb, path: str | Path, chunk: int = 10_000) -> Path:
    """One JSON document ``{"cis": [...], "relationships": [...]}`` (the shape of ``cmdb
    import json``, ``importers.generic``), written a chunk at a time."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as f:
        f.write(b'{"cis":[\n')
        for start in range(0, cmdb.ci_count, chunk):
            stop = min(start + chunk, cmdb.ci_count)
            f.write(b",\n".join(orjson.dumps(cmdb.record(i)) for i in range(start, stop)))
            f.write(b",\n" if stop < cmdb.ci_count else b"\n")
        f.write(b'],"relationships":[\n')
        ids = cmdb.ids
        for start in range(0, cmdb.relationship_count, chunk * 10):
            stop = min(start + chunk * 10, cmdb.relationship_count)
            f.write(
                b",\n".join(
                    orjson.dumps({"source": ids[s], "type": TYPES[t], "target": ids[d]})
                    for s, d, t in zip(
                        cmdb.src[start:stop].tolist(),
                        cmdb.dst[start:stop].tolist(),
                        cmdb.types[start:stop].tolist(),
                        strict=True,
                    )
                )
            )
            f.write(b",\n" if stop < cmdb.relationship_count else b"\n")
        f.write(b"]}\n")
    return target


# --------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generate",
        description="Write a generated CMDB (or a micro-graph) as generic CSV or JSON files.",
        epilog="example: python -m benchmarks.generate --size 10000 --out /tmp/cmdb --format csv",
    )
    parser.add_argument("--size", type=int, default=10_000, help="CIs (default 10000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    parser.add_argument(
        "--graph",
        choices=("cmdb", "diamond", "star"),
        default="cmdb",
        help="diamond: --k layers of --w; star: --size dependents",
    )
    parser.add_argument("--k", type=int, default=12)
    parser.add_argument("--w", type=int, default=4)
    parser.add_argument(
        "--changes",
        type=int,
        default=0,
        help="also write this many external changes (changes.json)",
    )
    args = parser.parse_args(argv)
    try:
        if args.graph == "diamond":
            cmdb = diamond_ladder(args.k, args.w)
        elif args.graph == "star":
            cmdb = star(args.size)
        else:
            cmdb = generate(args.size, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    changes = generate_changes(cmdb, args.changes, args.seed) if args.changes else []
    if args.format == "csv":
        paths = write_csv(cmdb, args.out)
    else:
        paths = [write_json(cmdb, args.out / "cmdb.json")]
    if changes:
        changes_path = args.out / "changes.json"
        changes_path.write_bytes(
            orjson.dumps([c.model_dump(mode="json") for c in changes], option=orjson.OPT_INDENT_2)
        )
        paths.append(changes_path)
    print(
        f"{cmdb.name}: {cmdb.ci_count} CIs, {cmdb.relationship_count} relationships -> "
        + ", ".join(str(p) for p in paths),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
