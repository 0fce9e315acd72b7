"""The CMDB vocabulary: configuration items, relationships and their registry, changes,
incidents and maintenance windows.

Everything here is a frozen value. Stores take and return these objects; importers produce
them; impact analysis reads them. Only the standard library and pydantic are imported.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NewType

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from graph.errors import (
    LimitExceededError,
    UnknownClassError,
    UnknownRelationshipTypeError,
    ValidationError,
)

CiId = NewType("CiId", str)
"""A CI's stable identity, chosen by whoever first reported it (``k8s:default/Service/redis``)."""

Scalar = str | int | float | bool | None
AttributeValue = Scalar | list[Scalar]


def utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# Limits: every size, depth and count the service accepts is stated here and tested.


class Limits:
    MAX_ID_LENGTH = 512
    MAX_NAME_LENGTH = 512
    MAX_TEXT_LENGTH = 4096  # any other string field or attribute value
    MAX_ATTRIBUTES = 200
    MAX_TAGS = 100
    MAX_LIST_ITEMS = 100  # list-valued attributes
    MAX_BATCH = 50_000  # CIs or relationships in one write call (one transaction)
    MAX_DEPTH = 50  # neighbourhood / impact traversal depth
    MAX_PAGE = 10_000
    MAX_REDUNDANCY_MEMBERS = 1_000


# --------------------------------------------------------------------------------------------
# Enumerations


class Status(StrEnum):
    OPERATIONAL = "operational"
    DEGRADED = "degraded"
    DOWN = "down"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


class Propagation(StrEnum):
    """Which way a failure travels along ``(source)-[TYPE]->(target)``."""

    TO_SOURCE = "to_source"  # the target fails => the source is affected (DEPENDS_ON)
    TO_TARGET = "to_target"  # the source fails => the target is affected (CONTAINS)
    BOTH = "both"
    NONE = "none"  # ownership, support: never carries failure


class Direction(StrEnum):
    OUT = "out"  # follow relationships from source to target
    IN = "in"
    BOTH = "both"


class ChangeKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    RETIRED = "retired"
    DELETED = "deleted"
    RELATED = "related"  # a relationship appeared
    UNRELATED = "unrelated"  # a relationship was removed
    RELATIONSHIP_UPDATED = "relationship_updated"
    ABSENT = "absent"  # a source stopped reporting it
    DEPLOYMENT = "deployment"  # reported from outside (CI/CD)
    CHANGE_REQUEST = "change_request"  # reported from outside (ITSM), maybe with a window


class IncidentStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    CLOSED = "closed"


# --------------------------------------------------------------------------------------------
# The registry: CI classes and relationship types


@dataclass(frozen=True, slots=True)
class RelationshipType:
    name: str  # UPPER_SNAKE, the graph relationship type
    forward: str  # "Depends on": how the source reads the relationship
    reverse: str  # "Used by": how the target reads it
    propagation: Propagation
    description: str = ""


@dataclass(frozen=True, slots=True)
class CiClass:
    name: str  # snake_case, stored on the CI
    label: str  # PascalCase, the Neo4j label
    category: Literal[
        "service",
        "application",
        "data",
        "compute",
        "container",
        "network",
        "storage",
        "facility",
        "cloud",
        "people",
        "other",
    ]
    description: str = ""

    @property
    def is_service(self) -> bool:
        return self.category == "service"


_REL = RelationshipType
_P = Propagation
DEFAULT_RELATIONSHIP_TYPES: tuple[RelationshipType, ...] = (
    _REL(
        "DEPENDS_ON", "Depends on", "Used by", _P.TO_SOURCE, "The source needs the target to work."
    ),
    _REL("RUNS_ON", "Runs on", "Runs", _P.TO_SOURCE, "Software on its compute."),
    _REL("HOSTED_ON", "Hosted on", "Hosts", _P.TO_SOURCE, "A VM or container on its host."),
    _REL("LOCATED_IN", "Located in", "Location of", _P.TO_SOURCE, "Equipment in a site or rack."),
    _REL(
        "CONNECTS_TO",
        "Connects to",
        "Provides connectivity to",
        _P.TO_SOURCE,
        "Network attachment: the target is upstream (switch, router, circuit).",
    ),
    _REL("POWERED_BY", "Powered by", "Powers", _P.TO_SOURCE, "A device fed by a PDU or feed."),
    _REL("USES", "Uses", "Used by", _P.TO_SOURCE, "A person, group or CI using a service."),
    _REL(
        "CONTAINS",
        "Contains",
        "Contained in",
        _P.TO_TARGET,
        "The target lives inside the source (namespace, chassis).",
    ),
    _REL(
        "PROVIDES",
        "Provides",
        "Provided by",
        _P.TO_TARGET,
        "The source implements the target (a component providing an API).",
    ),
    _REL(
        "PART_OF",
        "Part of",
        "Has part",
        _P.TO_TARGET,
        "A member or component of a larger whole (cluster node, system component).",
    ),
    _REL(
        "MEMBER_OF",
        "Member of",
        "Has member",
        _P.TO_SOURCE,
        "A person in a group: what affects the group affects its members.",
    ),
    _REL(
        "PEERS_WITH",
        "Peers with",
        "Peers with",
        _P.BOTH,
        "Mutual dependency (an HA pair's heartbeat link).",
    ),
    _REL("OWNS", "Owns", "Owned by", _P.NONE, "Accountability; carries no failure."),
    _REL("SUPPORTS", "Supports", "Supported by", _P.NONE, "Support duty; carries no failure."),
)

_C = CiClass
DEFAULT_CI_CLASSES: tuple[CiClass, ...] = (
    _C("business_service", "BusinessService", "service", "What the business buys or uses"),
    _C("technical_service", "TechnicalService", "service", "A service offered by IT to IT"),
    _C("application", "Application", "application"),
    _C("api", "Api", "application"),
    _C("database", "Database", "data"),
    _C("database_cluster", "DatabaseCluster", "data"),
    _C("message_queue", "MessageQueue", "data"),
    _C("server", "Server", "compute", "A physical host"),
    _C("virtual_machine", "VirtualMachine", "compute"),
    _C("hypervisor_cluster", "HypervisorCluster", "compute"),
    _C("container", "Container", "container"),
    _C("pod", "Pod", "container"),
    _C("workload", "Workload", "container", "Deployment, StatefulSet, DaemonSet, Job"),
    _C("kubernetes_service", "KubernetesService", "container"),
    _C("kubernetes_cluster", "KubernetesCluster", "container"),
    _C("namespace", "Namespace", "container"),
    _C("config", "Config", "other", "Configuration objects (ConfigMaps)"),
    _C("load_balancer", "LoadBalancer", "network"),
    _C("network_device", "NetworkDevice", "network", "Switches, routers, firewalls"),
    _C("network_interface", "NetworkInterface", "network"),
    _C("circuit", "Circuit", "network"),
    _C("power_device", "PowerDevice", "facility", "PDUs, power panels and feeds"),
    _C("storage", "Storage", "storage"),
    _C("site", "Site", "facility", "A site or datacenter"),
    _C("rack", "Rack", "facility"),
    _C("cloud_resource", "CloudResource", "cloud"),
    _C("user", "User", "people"),
    _C("group", "Group", "people", "A team or user group"),
    _C("other", "Other", "other", "Placeholder for CIs reported only by reference"),
)

_UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_RESERVED_LABELS = frozenset(
    {"CI", "Change", "Incident", "MaintenanceWindow", "Meta", "SourceRecord", "ImportRun"}
)


class Registry:
    """The classes and relationship types this CMDB knows. Anything else is refused.

    Extend it with a TOML file (``CMDB_REGISTRY``)::

        [[relationship_types]]
        name = "REPLICATES_TO"
        forward = "Replicates to"
        reverse = "Replica of"
        propagation = "to_target"

        [[classes]]
        name = "firewall_policy"
        label = "FirewallPolicy"
        category = "network"
    """

    def __init__(
        self,
        relationship_types: Iterable[RelationshipType] = DEFAULT_RELATIONSHIP_TYPES,
        classes: Iterable[CiClass] = DEFAULT_CI_CLASSES,
    ) -> None:
        self._types: dict[str, RelationshipType] = {}
        self._classes: dict[str, CiClass] = {}
        for rel_type in relationship_types:
            self._add_type(rel_type)
        for ci_class in classes:
            self._add_class(ci_class)

    def _add_type(self, rel_type: RelationshipType) -> None:
        if not _UPPER_SNAKE.match(rel_type.name):
            raise ValidationError(
                "relationship type names are UPPER_SNAKE_CASE", item=rel_type.name, field="name"
            )
        self._types[rel_type.name] = rel_type

    def _add_class(self, ci_class: CiClass) -> None:
        if not _SNAKE.match(ci_class.name):
            raise ValidationError("class names are snake_case", item=ci_class.name, field="name")
        if not _PASCAL.match(ci_class.label) or ci_class.label in _RESERVED_LABELS:
            raise ValidationError(
                "class labels are PascalCase and not one of " + ", ".join(sorted(_RESERVED_LABELS)),
                item=ci_class.name,
                field="label",
            )
        self._classes[ci_class.name] = ci_class

    @classmethod
    def from_toml(cls, path: str | Path) -> Registry:
        """The default registry extended (or overridden, by name) from a TOML file."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValidationError(f"cannot read registry file: {exc}", location=str(path)) from exc
        registry = cls()
        for i, raw in enumerate(data.get("relationship_types", [])):
            try:
                registry._add_type(
                    RelationshipType(
                        name=raw["name"],
                        forward=raw["forward"],
                        reverse=raw["reverse"],
                        propagation=Propagation(raw.get("propagation", "to_source")),
                        description=raw.get("description", ""),
                    )
                )
            except (KeyError, ValueError) as exc:
                raise ValidationError(
                    f"bad relationship type: {exc}", location=f"{path}: relationship_types[{i}]"
                ) from exc
        for i, raw in enumerate(data.get("classes", [])):
            try:
                registry._add_class(
                    CiClass(
                        name=raw["name"],
                        label=raw["label"],
                        category=raw["category"],
                        description=raw.get("description", ""),
                    )
                )
            except (KeyError, ValueError) as exc:
                raise ValidationError(
                    f"bad class: {exc}", location=f"{path}: classes[{i}]"
                ) from exc
        return registry

    @property
    def relationship_types(self) -> Mapping[str, RelationshipType]:
        return self._types

    @property
    def classes(self) -> Mapping[str, CiClass]:
        return self._classes

    def relationship_type(self, name: str, *, item: str | None = None) -> RelationshipType:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownRelationshipTypeError(
                f"unknown relationship type {name!r}; known: {', '.join(sorted(self._types))}",
                item=item,
                field="type",
            ) from None

    def ci_class(self, name: str, *, item: str | None = None) -> CiClass:
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownClassError(
                f"unknown CI class {name!r}; known: {', '.join(sorted(self._classes))}",
                item=item,
                field="class",
            ) from None

    def fingerprint(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Stable order of type and class names (small integers in the resident index)."""
        return tuple(sorted(self._types)), tuple(sorted(self._classes))


DEFAULT_REGISTRY = Registry()


# --------------------------------------------------------------------------------------------
# Values


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Provenance(Frozen):
    """Which source last set a field, and when."""

    source: str
    at: AwareDatetime
    run_id: str | None = None


def _check_text(value: str, what: str, limit: int = Limits.MAX_TEXT_LENGTH) -> str:
    if len(value) > limit:
        raise ValueError(f"{what} is {len(value)} characters; the limit is {limit}")
    return value


def check_attributes(attrs: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """Attributes are flat: scalars or lists of scalars, bounded in size."""
    if len(attrs) > Limits.MAX_ATTRIBUTES:
        raise ValueError(f"{len(attrs)} attributes; the limit is {Limits.MAX_ATTRIBUTES}")
    out: dict[str, AttributeValue] = {}
    for key, value in attrs.items():
        # Fast path for the common case, a short name and a text value within the limit.
        if (
            type(key) is str
            and 0 < len(key) <= 128
            and type(value) is str
            and len(value) <= Limits.MAX_TEXT_LENGTH
        ):
            out[key] = value
            continue
        if not isinstance(key, str) or not key:
            raise ValueError(f"attribute names are non-empty strings, not {key!r}")
        _check_text(key, f"attribute name {key[:40]!r}", 128)
        if isinstance(value, list | tuple):
            if len(value) > Limits.MAX_LIST_ITEMS:
                raise ValueError(
                    f"attribute {key!r} has {len(value)} items; the limit is "
                    f"{Limits.MAX_LIST_ITEMS}"
                )
            out[key] = [_check_scalar(key, v) for v in value]
        else:
            out[key] = _check_scalar(key, value)
    return out


def _check_scalar(key: str, value: Any) -> Scalar:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"attribute {key!r} does not fit in 64 bits; store it as text")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"attribute {key!r} is not a finite number")
        return value
    if isinstance(value, str):
        return _check_text(value, f"attribute {key!r}")
    raise ValueError(
        f"attribute {key!r} must be a string, number, boolean or list of those, "
        f"not {type(value).__name__}"
    )


class Quorum(Frozen):
    """At least ``count`` members up, or at least ``percent`` % of them."""

    count: int | None = Field(default=None, ge=0)
    percent: float | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _one_of(self) -> Quorum:
        if (self.count is None) == (self.percent is None):
            raise ValueError("a quorum is either a count or a percent")
        return self

    def needed(self, members: int) -> int:
        """Members that must be up to meet the quorum."""
        if self.count is not None:
            return min(self.count, members)
        assert self.percent is not None  # the validator guarantees one of the two
        return math.ceil(members * self.percent / 100 - 1e-9)

    def describe(self) -> str:
        return f"{self.count}" if self.count is not None else f"{self.percent:g}%"


class RedundancyGroup(Frozen):
    """A set of a CI's dependencies that back each other up.

    With fewer than ``down_below`` members up the CI is down; with fewer than
    ``degraded_below`` up it is degraded; otherwise the failure is absorbed (at risk).
    The defaults mean "one is enough to stay up, losing any degrades".
    """

    name: str = Field(min_length=1, max_length=128)
    members: tuple[CiId, ...] = Field(min_length=1)
    down_below: Quorum = Quorum(count=1)
    degraded_below: Quorum = Quorum(percent=100)

    @field_validator("members")
    @classmethod
    def _members(cls, value: tuple[CiId, ...]) -> tuple[CiId, ...]:
        if len(value) > Limits.MAX_REDUNDANCY_MEMBERS:
            raise ValueError(f"{len(value)} members; the limit is {Limits.MAX_REDUNDANCY_MEMBERS}")
        if len(set(value)) != len(value):
            raise ValueError("members repeat")
        return tuple(sorted(value))


class ConfigurationItem(Frozen):
    """A configuration item. ``id`` is its identity; everything else may change."""

    id: CiId = Field(min_length=1, max_length=Limits.MAX_ID_LENGTH)
    ci_class: str = Field(alias="class", min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=Limits.MAX_NAME_LENGTH)
    status: Status = Status.OPERATIONAL
    environment: str | None = Field(default=None, max_length=128)
    criticality: Annotated[int, Field(ge=1, le=4)] | None = None  # tier 1 (highest) to 4
    owner: str | None = Field(default=None, max_length=Limits.MAX_NAME_LENGTH)
    support_group: str | None = Field(default=None, max_length=Limits.MAX_NAME_LENGTH)
    description: str | None = Field(default=None, max_length=Limits.MAX_TEXT_LENGTH)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    tags: tuple[str, ...] = ()
    redundancy: tuple[RedundancyGroup, ...] = ()
    provenance: dict[str, Provenance] = Field(default_factory=dict)
    first_seen: AwareDatetime | None = None
    last_seen: AwareDatetime | None = None

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError("attributes are a mapping of name to value")
        return check_attributes(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > Limits.MAX_TAGS:
            raise ValueError(f"{len(value)} tags; the limit is {Limits.MAX_TAGS}")
        for tag in value:
            _check_text(tag, "a tag", 128)
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _redundancy_names(self) -> ConfigurationItem:
        names = [g.name for g in self.redundancy]
        if len(set(names)) != len(names):
            raise ValueError("redundancy group names repeat")
        return self

    # The fields whose changes the history records, in a stable order.
    TRACKED_FIELDS: ClassVar[tuple[str, ...]] = (
        "ci_class",
        "name",
        "status",
        "environment",
        "criticality",
        "owner",
        "support_group",
        "description",
        "attributes",
        "tags",
        "redundancy",
    )

    def tracked(self) -> dict[str, Any]:
        """The tracked fields as plain JSON-able values (what history diffs compare)."""
        data = self.model_dump(mode="json", include=set(self.TRACKED_FIELDS))
        return {name: data[name] for name in self.TRACKED_FIELDS}


class Relationship(Frozen):
    """``(source)-[type]->(target)``; identity is the triple."""

    source: CiId = Field(min_length=1, max_length=Limits.MAX_ID_LENGTH)
    type: str = Field(min_length=1, max_length=64)
    target: CiId = Field(min_length=1, max_length=Limits.MAX_ID_LENGTH)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    provenance: dict[str, Provenance] = Field(default_factory=dict)
    first_seen: AwareDatetime | None = None
    last_seen: AwareDatetime | None = None

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError("attributes are a mapping of name to value")
        return check_attributes(value)

    @property
    def key(self) -> RelKey:
        return (self.source, self.type, self.target)


RelKey = tuple[CiId, str, CiId]


class Change(Frozen):
    """One entry of the append-only history.

    Writes by the CMDB itself carry ``field``/``before``/``after``; changes reported from
    outside (deployments, change requests) carry ``summary`` and maybe a planned window.
    """

    id: str
    ci: CiId
    at: AwareDatetime
    kind: ChangeKind
    field: str | None = None
    before: Any = None
    after: Any = None
    summary: str = ""
    actor: str = "system"
    source: str | None = None
    run_id: str | None = None
    request_id: str | None = None
    external_ref: str | None = None
    planned_start: AwareDatetime | None = None
    planned_end: AwareDatetime | None = None
    relationship: tuple[str, str, str] | None = None  # (source, type, target) for rel changes

    @property
    def planned(self) -> bool:
        return self.planned_start is not None


class ExternalChange(Frozen):
    """A deployment or change request reported by another tool, to attach to a CI."""

    id: str = Field(min_length=1, max_length=Limits.MAX_ID_LENGTH)
    ci: CiId
    kind: Literal[ChangeKind.DEPLOYMENT, ChangeKind.CHANGE_REQUEST]
    at: AwareDatetime
    summary: str = Field(max_length=Limits.MAX_TEXT_LENGTH)
    external_ref: str | None = None
    planned_start: AwareDatetime | None = None
    planned_end: AwareDatetime | None = None


class MaintenanceWindow(Frozen):
    id: str = Field(min_length=1, max_length=Limits.MAX_ID_LENGTH)
    ci: CiId
    start: AwareDatetime
    end: AwareDatetime
    description: str = Field(default="", max_length=Limits.MAX_TEXT_LENGTH)

    @model_validator(mode="after")
    def _order(self) -> MaintenanceWindow:
        if self.end <= self.start:
            raise ValueError("a maintenance window ends after it starts")
        return self

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


class Incident(Frozen):
    id: str = Field(min_length=1, max_length=Limits.MAX_ID_LENGTH)
    title: str = Field(min_length=1, max_length=Limits.MAX_TEXT_LENGTH)
    status: IncidentStatus = IncidentStatus.OPEN
    external_ref: str | None = None
    opened_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    affected: tuple[CiId, ...] = ()  # the CIs reported failed
    impact: dict[str, Any] | None = None  # the impact answer stored when opened / refreshed
    impact_at: AwareDatetime | None = None


@dataclass(frozen=True, slots=True)
class WriteContext:
    """Who writes, from where: stamped on every history entry the write records."""

    actor: str = "system"
    source: str | None = None
    run_id: str | None = None
    request_id: str | None = None
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class WriteResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(
            self.created + other.created,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.deleted + other.deleted,
        )


def check_batch_size(count: int, what: str) -> None:
    if count > Limits.MAX_BATCH:
        raise LimitExceededError(
            f"{count} {what} in one batch; the limit is {Limits.MAX_BATCH}: split the batch",
            field=what,
        )


# --------------------------------------------------------------------------------------------
# Import runs and what each source reported (the import engine's memory)

IDENTIFIER_ATTRIBUTES: tuple[str, ...] = ("serial_number", "asset_tag", "fqdn", "mac_address")
"""Attributes that identify a CI across sources (normalised: trimmed, lower-cased)."""


def normalise_identifier(value: object) -> str | None:
    if value is None or isinstance(value, bool | list | dict):
        return None
    text = str(value).strip().lower()
    return text or None


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # the source was read only in part: nothing is marked absent
    FAILED = "failed"


class SourceRecord(Frozen):
    """That source ``source`` reports item ``key`` (its own identity for it), reconciled to
    CI ``ci``. Relationship records have ``kind="relationship"`` and key
    ``"<source ci>|<TYPE>|<target ci>"``.
    """

    source: str = Field(min_length=1, max_length=128)
    kind: Literal["ci", "relationship"] = "ci"
    key: str = Field(min_length=1, max_length=3 * Limits.MAX_ID_LENGTH + 80)
    ci: CiId
    digest: str = ""  # hash of what the source said last time: unchanged items skip work
    last_run: str
    last_seen: AwareDatetime
    absent_since: AwareDatetime | None = None  # set when a complete run no longer reports it


class ImportRun(Frozen):
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=128)
    format: str
    status: RunStatus = RunStatus.RUNNING
    started_at: AwareDatetime
    finished_at: AwareDatetime | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    messages: tuple[str, ...] = ()  # errors and warnings, capped by the engine
