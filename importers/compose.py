"""Docker Compose files to one CI per service and the dependencies between services.

Read: ``services`` with their ``image`` (or ``build`` context), ``deploy.replicas`` and
``profiles``; dependencies from ``depends_on`` (list and map forms), ``links``,
``network_mode: service:NAME``, ``volumes_from`` and environment values that name another
service of the file (``user-db:27017``, ``http://orders/``, ``DB_HOST=db``).

Identity: ``compose:<project>/<service>``; the project is the file's top-level ``name:``, or
else the name of the directory holding the file, normalised as Compose does (lower case,
``[a-z0-9_-]``). Every dependency is ``service -[DEPENDS_ON]-> service``.

Environment values are read to find references and never stored. See
``docs/importers/compose.md``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import pydantic

from graph.errors import ValidationError
from graph.model import AttributeValue, CiId, ConfigurationItem
from importers.base import (
    Inventory,
    ParsedCi,
    ParsedRelationship,
    SourceFile,
    model_error,
    text_list,
)
from importers.kubernetes import host_references
from importers.redact import CREDENTIAL_NAME
from importers.safe_yaml import item_line, key_line, load_documents

SUFFIXES: Final = ("compose.yaml", "compose.yml")

_PROJECT_INVALID = re.compile(r"[^a-z0-9_-]")
_NAMESPACE: Final = "compose"  # host_references wants one; Compose projects are flat


def compose_id(project: str, service: str) -> CiId:
    """The CI id of a Compose service."""
    return CiId(f"compose:{project}/{service}")


def parse_compose(files: Sequence[SourceFile]) -> Inventory:
    """The services of ``files`` (each a Compose file) as one inventory."""
    inventory = Inventory()
    seen: dict[CiId, str] = {}
    for file in files:
        documents = [(d, line) for d, line in load_documents(file) if d is not None]
        if len(documents) != 1:
            raise ValidationError(
                f"a Compose file holds one YAML document, not {len(documents)}",
                location=f"{file.name}:1",
            )
        _parse_project(file, *documents[0], inventory, seen)
    return inventory


def _project_name(file: SourceFile, document: dict[Any, Any], line: int) -> str:
    raw = document.get("name")
    if raw is None:
        if file.path is None:
            raise ValidationError(
                "a Compose file read from stdin needs a top-level name: (the project name)",
                field="name",
                location=f"{file.name}:{line}",
            )
        raw = file.path.resolve().parent.name
    project = _PROJECT_INVALID.sub("", str(raw).lower())
    if not project:
        raise ValidationError(
            f"{raw!r} gives an empty Compose project name; set a top-level name:",
            field="name",
            location=f"{file.name}:{key_line(document, 'name', line)}",
        )
    return project


def _parse_project(
    file: SourceFile,
    document: Any,
    line: int,
    inventory: Inventory,
    seen: dict[CiId, str],
) -> None:
    where = f"{file.name}:{line}"
    if not isinstance(document, dict):
        raise ValidationError("a Compose file is a mapping", location=where)
    services = document.get("services")
    if not isinstance(services, dict):
        raise ValidationError(
            "no services mapping (Compose file format v1 is not read: convert it with "
            "`docker compose config`)",
            field="services",
            location=f"{file.name}:{key_line(document, 'services', line)}",
        )
    project = _project_name(file, document, line)
    names = {str(n) for n in services}
    rels: dict[tuple[str, str], tuple[str, list[str]]] = {}

    def depend(source: str, target: str, location: str, via: str) -> None:
        if target == source:
            return
        key = (compose_id(project, source), compose_id(project, target))
        if key not in rels:
            rels[key] = (location, [via])
        elif via not in rels[key][1]:
            rels[key][1].append(via)

    for raw_name, raw_service in services.items():
        name = str(raw_name)
        service_line = key_line(services, raw_name, line)
        location = f"{file.name}:{service_line}"
        service = {} if raw_service is None else raw_service
        if not isinstance(service, dict):
            raise ValidationError(
                "a service is a mapping", item=name, field=f"services.{name}", location=location
            )
        ci_id = compose_id(project, name)
        if ci_id in seen:
            raise ValidationError(
                f"defined twice (first at {seen[ci_id]}); merge override files with "
                "`docker compose config` and import the result",
                item=ci_id,
                location=location,
            )
        seen[ci_id] = location

        def at(key: str, service: dict[Any, Any] = service, default: int = service_line) -> str:
            return f"{file.name}:{key_line(service, key, default)}"

        for target in _depends_on(service, name, at("depends_on")):
            depend(name, target, at("depends_on"), "depends_on")
        for link in _strings(service.get("links"), name, "links", at("links")):
            depend(name, link.split(":", 1)[0], at("links"), "links")
        network_mode = service.get("network_mode")
        if isinstance(network_mode, str) and network_mode.startswith("service:"):
            depend(name, network_mode.removeprefix("service:"), at("network_mode"), "network_mode")
        for source in _strings(
            service.get("volumes_from"), name, "volumes_from", at("volumes_from")
        ):
            if not source.startswith("container:"):
                depend(name, source.split(":", 1)[0], at("volumes_from"), "volumes_from")
        for env_name, value, env_line in _environment(service, name, file.name, service_line):
            if value is None or CREDENTIAL_NAME.search(env_name):
                continue
            for ref in host_references(
                value,
                _NAMESPACE,
                is_service=lambda _ns, host: host in names,
                allow_dangling=False,
            ):
                depend(name, ref.name, f"{file.name}:{env_line}", f"env {env_name}")

        inventory.cis.append(ParsedCi(_ci(ci_id, name, project, service, location), location))

    inventory.relationships.extend(
        ParsedRelationship(s, "DEPENDS_ON", t, loc, {"via": text_list(sorted(vias))})
        for (s, t), (loc, vias) in rels.items()
    )


def _depends_on(service: dict[Any, Any], name: str, location: str) -> list[str]:
    raw = service.get("depends_on")
    if isinstance(raw, dict):
        return [str(k) for k in raw]
    return _strings(raw, name, "depends_on", location)


def _strings(raw: object, service: str, field: str, location: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise ValidationError(
            "expected a list of service names", item=service, field=field, location=location
        )
    return list(raw)


def _environment(
    service: dict[Any, Any], name: str, file: str, default_line: int
) -> list[tuple[str, str | None, int]]:
    """(name, value, line) of each variable; values are stringified, never kept."""
    raw = service.get("environment")
    env_line = key_line(service, "environment", default_line)
    found: list[tuple[str, str | None, int]] = []
    if raw is None:
        return found
    if isinstance(raw, dict):
        for key, value in raw.items():
            text = None if value is None else str(value)
            found.append((str(key), text, key_line(raw, key, env_line)))
        return found
    if isinstance(raw, list):
        for index, entry in enumerate(raw):
            line = item_line(raw, index, env_line)
            if not isinstance(entry, str):
                raise ValidationError(
                    "environment entries are KEY=VALUE strings",
                    item=name,
                    field="environment",
                    location=f"{file}:{line}",
                )
            key, sep, value = entry.partition("=")
            found.append((key, value if sep else None, line))
        return found
    raise ValidationError(
        "environment is a mapping or a list",
        item=name,
        field="environment",
        location=f"{file}:{env_line}",
    )


def _ci(
    ci_id: CiId, name: str, project: str, service: dict[Any, Any], location: str
) -> ConfigurationItem:
    attributes: dict[str, AttributeValue] = {"kind": "compose_service", "project": project}
    image = service.get("image")
    if isinstance(image, str):
        attributes["image"] = image
    build = service.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    if isinstance(context, str):
        attributes["build"] = context
    replicas = (
        service.get("deploy", {}).get("replicas")
        if isinstance(service.get("deploy"), dict)
        else None
    )
    if isinstance(replicas, int) and not isinstance(replicas, bool):
        attributes["replicas"] = replicas
    profiles = service.get("profiles")
    if isinstance(profiles, list):
        attributes["profiles"] = text_list(sorted(str(p) for p in profiles))
    try:
        return ConfigurationItem(id=ci_id, ci_class="workload", name=name, attributes=attributes)
    except pydantic.ValidationError as exc:
        raise model_error(exc, ci_id, location) from None
