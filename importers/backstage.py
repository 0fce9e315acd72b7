"""Backstage software-catalog files (``catalog-info.yaml``) to CIs and relationships.

Read: Component, API, Resource, System, Domain, Group and User entities from multi-document
YAML, and Location entities, whose ``target``/``targets`` are followed relative to the file
that names them. Other kinds (Template, custom kinds) are skipped with a warning.

Identity: ``backstage:<kind>:<namespace>/<name>``, lower-cased because Backstage compares entity
references case-insensitively; the namespace defaults to ``default``. A reference inside an
entity defaults its kind per field (``owner`` a Group, ``consumesApis`` an API, ...) and its
namespace to the entity's own, as Backstage does.

Relationships (``source -[TYPE]-> target``):

- ``dependsOn``, ``consumesApis``: entity ``DEPENDS_ON`` target; ``dependencyOf``: the reverse;
- ``providesApis``: component ``PROVIDES`` API (the API is down when its provider is);
- ``system``, ``domain``, ``subdomainOf``, ``subcomponentOf``: entity ``PART_OF`` the whole;
- ``owner``: owner ``OWNS`` entity;
- ``memberOf`` (User) and ``members`` (Group): user ``MEMBER_OF`` group;
- ``parent`` and ``children`` (Group): child group ``PART_OF`` parent group.

See ``docs/importers/backstage.md``.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pydantic

from graph.errors import LimitExceededError, ValidationError
from graph.model import AttributeValue, CiId, ConfigurationItem
from importers.base import (
    Inventory,
    ParsedCi,
    ParsedRelationship,
    SourceFile,
    model_error,
    text_list,
)
from importers.safe_yaml import key_line, load_documents

SUFFIXES: Final = (".yaml", ".yml")

MAX_LOCATION_DEPTH: Final = 10  # Location -> Location -> ... chains
MAX_FILES: Final = 10_000  # files read in one run, Locations included

# kind (lower case) -> CI class
_CLASSES: Final = {
    "component": "application",
    "api": "api",
    "resource": "cloud_resource",
    "system": "technical_service",
    "domain": "business_service",
    "group": "group",
    "user": "user",
}
_RESOURCE_CLASSES: Final = {
    "database": "database",
    "queue": "message_queue",
    "message-queue": "message_queue",
    "topic": "message_queue",
    "kafka-topic": "message_queue",
    "storage": "storage",
    "bucket": "storage",
    "s3-bucket": "storage",
    "kubernetes-cluster": "kubernetes_cluster",
    "load-balancer": "load_balancer",
    "server": "server",
    "virtual-machine": "virtual_machine",
    "vm": "virtual_machine",
}


@dataclass(frozen=True, slots=True)
class _Field:
    """One relation-bearing field: its name under ``spec``, the default kind of its
    references, the relationship type, and whether the entity is the source."""

    name: str
    default_kind: str | None
    type: str
    entity_is_source: bool
    many: bool


_OWNER = _Field("owner", "group", "OWNS", False, False)
_FIELDS: Final[dict[str, tuple[_Field, ...]]] = {
    "component": (
        _OWNER,
        _Field("system", "system", "PART_OF", True, False),
        _Field("subcomponentOf", "component", "PART_OF", True, False),
        _Field("providesApis", "api", "PROVIDES", True, True),
        _Field("consumesApis", "api", "DEPENDS_ON", True, True),
        _Field("dependsOn", None, "DEPENDS_ON", True, True),
        _Field("dependencyOf", None, "DEPENDS_ON", False, True),
    ),
    "api": (_OWNER, _Field("system", "system", "PART_OF", True, False)),
    "resource": (
        _OWNER,
        _Field("system", "system", "PART_OF", True, False),
        _Field("dependsOn", None, "DEPENDS_ON", True, True),
        _Field("dependencyOf", None, "DEPENDS_ON", False, True),
    ),
    "system": (_OWNER, _Field("domain", "domain", "PART_OF", True, False)),
    "domain": (_OWNER, _Field("subdomainOf", "domain", "PART_OF", True, False)),
    "group": (
        _Field("parent", "group", "PART_OF", True, False),
        _Field("children", "group", "PART_OF", False, True),
        _Field("members", "user", "MEMBER_OF", False, True),
    ),
    "user": (_Field("memberOf", "group", "MEMBER_OF", True, True),),
}

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_GLOB = re.compile(r"[*?\[]")


def entity_id(kind: str, namespace: str, name: str) -> CiId:
    """The CI id of a Backstage entity."""
    return CiId(f"backstage:{kind.lower()}:{namespace.lower()}/{name.lower()}")


def parse_entity_ref(
    ref: str, *, default_kind: str | None, default_namespace: str
) -> tuple[str, str, str]:
    """``[kind:][namespace/]name`` to (kind, namespace, name), as Backstage reads it.

    Raises ``ValueError`` when the kind is missing and there is no default, or a part is empty.
    """
    kind, sep, rest = ref.partition(":")
    if not sep:
        kind, rest = "", ref
    namespace, sep, name = rest.partition("/")
    if not sep:
        namespace, name = "", rest
    kind = kind or (default_kind or "")
    namespace = namespace or default_namespace
    if not kind:
        raise ValueError(f"{ref!r} needs a kind here (kind:name, e.g. component:{ref})")
    if not name or not namespace:
        raise ValueError(f"{ref!r} is not an entity reference ([kind:][namespace/]name)")
    return kind, namespace, name


@dataclass(frozen=True, slots=True)
class _Work:
    file: SourceFile
    depth: int
    origin: str | None  # "file:line" of the Location that named it


def parse_backstage(files: Sequence[SourceFile]) -> Inventory:
    """Backstage entities of ``files``, and of the files their Locations name, as one inventory."""
    inventory = Inventory()
    seen_ids: dict[CiId, str] = {}
    relationships: dict[tuple[str, str, str], tuple[str, list[str]]] = {}
    queue = deque(_Work(f, 0, None) for f in files)
    roots = [f.path.resolve().parent for f in files if f.path is not None]
    root = Path(os.path.commonpath(roots)) if roots else None
    visited: set[Path] = set()
    read = 0
    while queue:
        work = queue.popleft()
        if work.file.path is not None:
            resolved = work.file.path.resolve()
            if resolved in visited:
                continue  # named twice, or a Location cycle
            visited.add(resolved)
        read += 1
        if read > MAX_FILES:
            raise LimitExceededError(
                f"more than {MAX_FILES} catalog files in one run", location=work.origin
            )
        _parse_file(
            work,
            root=root,
            queue=queue,
            inventory=inventory,
            seen_ids=seen_ids,
            relationships=relationships,
        )
    inventory.relationships.extend(
        ParsedRelationship(s, t, d, location, {"via": text_list(sorted(vias))})
        for (s, t, d), (location, vias) in relationships.items()
    )
    return inventory


def _parse_file(
    work: _Work,
    *,
    root: Path | None,
    queue: deque[_Work],
    inventory: Inventory,
    seen_ids: dict[CiId, str],
    relationships: dict[tuple[str, str, str], tuple[str, list[str]]],
) -> None:
    name = work.file.name
    skipped: dict[str, list[tuple[str, int]]] = {}
    for number, (document, line) in enumerate(load_documents(work.file), start=1):
        if document is None:
            continue
        location = f"{name}:{line}"
        item = f"document {number}"
        if not isinstance(document, dict):
            raise ValidationError("a catalog entity is a mapping", item=item, location=location)
        kind = document.get("kind")
        api_version = document.get("apiVersion")
        if kind is None and api_version is None:
            inventory.warnings.append(f"{location}: {item} skipped: not a Backstage entity")
            continue
        if not isinstance(kind, str) or not kind:
            raise ValidationError(
                "every catalog entity has a kind", item=item, field="kind", location=location
            )
        metadata = document.get("metadata")
        entity_name = metadata.get("name") if isinstance(metadata, dict) else None
        kind_key = kind.lower()
        if kind_key not in _CLASSES and kind_key != "location":
            skipped.setdefault(kind, []).append((str(entity_name), line))
            continue
        if not isinstance(api_version, str) or not api_version.startswith("backstage.io/"):
            inventory.warnings.append(
                f"{location}: {kind} {entity_name!r} skipped: apiVersion {api_version!r} is "
                "not a Backstage catalog version (backstage.io/...)"
            )
            continue
        if not isinstance(entity_name, str) or not entity_name:
            raise ValidationError(
                f"a {kind} needs a name",
                item=f"{kind} ({item})",
                field="metadata.name",
                location=f"{name}:{key_line(metadata, 'name', line)}",
            )
        namespace = metadata.get("namespace", "default") if isinstance(metadata, dict) else None
        if not isinstance(namespace, str) or not namespace:
            raise ValidationError(
                "a namespace is a non-empty string",
                item=f"{kind}:{entity_name}",
                field="metadata.namespace",
                location=f"{name}:{key_line(metadata, 'namespace', line)}",
            )
        spec = document.get("spec")
        if spec is not None and not isinstance(spec, dict):
            raise ValidationError(
                "spec is a mapping", item=f"{kind}:{entity_name}", field="spec", location=location
            )
        spec = spec or {}
        ci_id = entity_id(kind_key, namespace, entity_name)
        if kind_key == "location":
            _follow(
                work, root=root, spec=spec, ci_id=ci_id, line=line, queue=queue, inventory=inventory
            )
            continue
        if ci_id in seen_ids:
            raise ValidationError(
                f"defined twice (first at {seen_ids[ci_id]})", item=ci_id, location=location
            )
        seen_ids[ci_id] = location
        owner = _relate(
            ci_id,
            kind=kind_key,
            namespace=namespace,
            spec=spec,
            file=name,
            line=line,
            relationships=relationships,
        )
        inventory.cis.append(
            ParsedCi(
                _ci(
                    ci_id,
                    kind=kind,
                    name=entity_name,
                    namespace=namespace,
                    metadata=metadata if isinstance(metadata, dict) else {},
                    spec=spec,
                    owner=owner,
                    location=location,
                ),
                location,
            )
        )
    for kind, seen in skipped.items():
        first_name, first_line = seen[0]
        more = f" and {len(seen) - 1} more" if len(seen) > 1 else ""
        inventory.warnings.append(
            f"{name}:{first_line}: {kind} {first_name!r}{more} skipped: kind {kind} is not imported"
        )


def _relate(
    ci_id: CiId,
    *,
    kind: str,
    namespace: str,
    spec: dict[Any, Any],
    file: str,
    line: int,
    relationships: dict[tuple[str, str, str], tuple[str, list[str]]],
) -> CiId | None:
    """Record the relationships of one entity; return its owner's id."""
    owner: CiId | None = None
    for fld in _FIELDS[kind]:
        raw = spec.get(fld.name)
        if raw is None:
            continue
        location = f"{file}:{key_line(spec, fld.name, line)}"
        refs = raw if fld.many and isinstance(raw, list) else [raw]
        for ref in refs:
            if not isinstance(ref, str) or (not fld.many and isinstance(raw, list)):
                raise ValidationError(
                    "an entity reference is a string"
                    + (" or a list of strings" if fld.many else ""),
                    item=ci_id,
                    field=f"spec.{fld.name}",
                    location=location,
                )
            try:
                other = entity_id(
                    *parse_entity_ref(
                        ref, default_kind=fld.default_kind, default_namespace=namespace
                    )
                )
            except ValueError as exc:
                raise ValidationError(
                    str(exc), item=ci_id, field=f"spec.{fld.name}", location=location
                ) from None
            source, target = (ci_id, other) if fld.entity_is_source else (other, ci_id)
            key = (source, fld.type, target)
            via = f"spec.{fld.name}"
            if key not in relationships:
                relationships[key] = (location, [via])
            elif via not in relationships[key][1]:
                relationships[key][1].append(via)
            if fld is _OWNER:
                owner = other
    return owner


def _follow(
    work: _Work,
    *,
    root: Path | None,
    spec: dict[Any, Any],
    ci_id: CiId,
    line: int,
    queue: deque[_Work],
    inventory: Inventory,
) -> None:
    """Queue the files a Location names; refuse anything outside ``root`` or on the network."""
    name = work.file.name
    targets: list[tuple[Any, str]] = []
    if "target" in spec:
        targets.append((spec["target"], "spec.target"))
    raw_targets = spec.get("targets", [])
    if not isinstance(raw_targets, list):
        raise ValidationError(
            "targets is a list", item=ci_id, field="spec.targets", location=f"{name}:{line}"
        )
    targets.extend((t, "spec.targets") for t in raw_targets)
    location_type = spec.get("type", "file")
    for target, fld in targets:
        location = f"{name}:{key_line(spec, fld.removeprefix('spec.'), line)}"
        if not isinstance(target, str) or not target:
            raise ValidationError(
                "a Location target is a non-empty string", item=ci_id, field=fld, location=location
            )

        def refuse(why: str, target: str = target, location: str = location) -> None:
            inventory.warnings.append(f"{location}: {ci_id} target {target!r} not read: {why}")
            inventory.complete = False

        if location_type not in ("file", "url"):
            refuse(f"Location type {location_type!r} is not read by this importer")
        elif _SCHEME.match(target):
            refuse("only relative paths are followed; nothing is fetched from the network")
        elif Path(target).is_absolute() or work.file.path is None or root is None:
            refuse("only paths relative to a catalog file on disk are followed")
        elif work.depth >= MAX_LOCATION_DEPTH:
            refuse(f"Locations nest deeper than {MAX_LOCATION_DEPTH}")
        else:
            base = work.file.path.parent
            if _GLOB.search(target):
                found = sorted(p for p in base.glob(target) if p.is_file())
                if not found:
                    inventory.warnings.append(
                        f"{location}: {ci_id} target {target!r} matches no file"
                    )
            else:
                candidate = base / target
                if not candidate.is_file():
                    raise ValidationError(
                        f"Location target {target!r} is not a file",
                        item=ci_id,
                        field=fld,
                        location=location,
                    )
                found = [candidate]
            for path in found:
                if not path.resolve().is_relative_to(root):
                    refuse(f"it is outside {root}", str(path))
                    continue
                queue.append(_Work(SourceFile(name=str(path), path=path), work.depth + 1, location))


def _ci(
    ci_id: CiId,
    *,
    kind: str,
    name: str,
    namespace: str,
    metadata: dict[Any, Any],
    spec: dict[Any, Any],
    owner: CiId | None,
    location: str,
) -> ConfigurationItem:
    kind_key = kind.lower()
    attributes: dict[str, AttributeValue] = {"backstage_kind": kind, "namespace": namespace}
    for key, attribute in (("type", "type"), ("lifecycle", "lifecycle")):
        if isinstance(spec.get(key), str):
            attributes[attribute] = spec[key]
    if isinstance(metadata.get("title"), str):
        attributes["title"] = metadata["title"]
    profile = spec.get("profile")
    if isinstance(profile, dict):
        for key, attribute in (("displayName", "display_name"), ("email", "email")):
            if isinstance(profile.get(key), str):
                attributes[attribute] = profile[key]
    ci_class = _CLASSES[kind_key]
    if kind_key == "resource":
        ci_class = _RESOURCE_CLASSES.get(str(spec.get("type", "")).lower(), ci_class)
    tags = metadata.get("tags", [])
    description = metadata.get("description")
    try:
        return ConfigurationItem(
            id=ci_id,
            ci_class=ci_class,
            name=name,
            owner=owner,
            description=description if isinstance(description, str) else None,
            attributes=attributes,
            tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        )
    except pydantic.ValidationError as exc:
        raise model_error(exc, ci_id, location) from None
