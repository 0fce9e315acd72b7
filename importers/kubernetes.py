"""Kubernetes manifests and ``kubectl get -o json`` output to CIs and dependencies.

Read: Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, Services, Ingresses, ConfigMaps and
Namespaces, from multi-document YAML, JSON, and ``List`` objects (``kubectl get -o json``).
Secrets are dropped the moment their kind is read: no field of a Secret is looked at.
Other kinds are skipped with one warning per kind and file.

Identity: ``k8s:<namespace>/<Kind>/<name>`` (namespace ``default`` when absent) and
``k8s:<Kind>/<name>`` for Namespaces. Dependencies (``source -[TYPE]-> target``):

- Service ``DEPENDS_ON`` each workload its selector matches (same namespace);
- Ingress ``DEPENDS_ON`` each backend Service;
- workload ``DEPENDS_ON`` each ConfigMap it reads (``envFrom``, ``configMapKeyRef``, volumes);
- workload ``DEPENDS_ON`` each Service named by a host in its environment values
  (``redis-cart:6379``, ``http://orders/``, ``zipkin.jaeger.svc.cluster.local``) or in the
  ConfigMap keys it reads;
- Namespace ``CONTAINS`` each object in it.

See ``docs/importers/kubernetes.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
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
from importers.redact import CREDENTIAL_NAME
from importers.safe_yaml import YamlMapping, key_line, line_of, load_documents

SUFFIXES: Final = (".yaml", ".yml", ".json")

WORKLOAD_KINDS: Final = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"})
IMPORTED_KINDS: Final = WORKLOAD_KINDS | {"Service", "Ingress", "ConfigMap", "Namespace"}
_CLASSES: Final = {
    "Service": "kubernetes_service",
    "Ingress": "load_balancer",
    "ConfigMap": "config",
    "Namespace": "namespace",
} | dict.fromkeys(WORKLOAD_KINDS, "workload")

# An env var whose name says it holds a credential is not even scanned for host names: a
# password shaped like ``word:1234`` must not become a Service name in the CMDB.
_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_TOKEN_SPLIT = re.compile(r"[\s,;'\"()\[\]{}<>=|]+")
_ADDRESS = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)?(?:[^@/\s]*@)?"
    r"(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*?)\.?(?::(?P<port>[0-9]{1,5}))?(?P<path>/.*)?",
    re.I,
)
_NOT_SERVICES: Final = frozenset({"localhost"})


@dataclass(frozen=True, slots=True)
class HostRef:
    """A Service named in a configuration value: ``name`` in ``namespace``."""

    namespace: str
    name: str


def host_references(
    text: str,
    namespace: str,
    *,
    is_service: Callable[[str, str], bool],
    known_namespaces: Iterable[str] = (),
    allow_dangling: bool = True,
) -> list[HostRef]:
    """The Services a configuration value names, in order of appearance, without repeats.

    A token names a Service when it is a cluster DNS name (``svc.ns.svc[.cluster.local]``),
    ``svc.ns`` for a namespace we know, or a single DNS label that is a known Service
    (``is_service(namespace, name)``) or, with ``allow_dangling``, sits in a URL or
    ``host:port`` (``shoppingassistantservice:80``). ``localhost``, IP addresses and other
    dotted names are external.
    """
    namespaces = set(known_namespaces)
    found: list[HostRef] = []
    for token in _TOKEN_SPLIT.split(text):
        match = _ADDRESS.fullmatch(token)
        if match is None:
            continue
        addressed = bool(match["scheme"] or match["port"])
        if match["path"] and not match["scheme"]:
            continue  # "a/b" is a path, not a host
        labels = match["host"].lower().split(".")
        if labels[-2:] == ["cluster", "local"]:
            labels = labels[:-2]
            if len(labels) != 3 or labels[2] != "svc":
                continue
        ref: HostRef | None = None
        explicit = False
        if (len(labels) == 3 and labels[2] == "svc") or (
            len(labels) == 2 and labels[1] in namespaces
        ):
            ref, explicit = HostRef(labels[1], labels[0]), True
        elif len(labels) == 1 and labels[0] not in _NOT_SERVICES:
            ref = HostRef(namespace, labels[0])
        if ref is None or not _LABEL.fullmatch(ref.name) or not _LABEL.fullmatch(ref.namespace):
            continue
        if (
            is_service(ref.namespace, ref.name) or explicit or (addressed and allow_dangling)
        ) and ref not in found:
            found.append(ref)
    return found


def k8s_id(kind: str, name: str, namespace: str | None) -> CiId:
    """The CI id of a Kubernetes object (``namespace`` None for cluster-scoped kinds)."""
    if namespace is None:
        return CiId(f"k8s:{kind}/{name}")
    return CiId(f"k8s:{namespace}/{kind}/{name}")


@dataclass(slots=True)
class _Object:
    kind: str
    name: str
    namespace: str | None
    body: YamlMapping
    file: str
    line: int

    @property
    def id(self) -> CiId:
        return k8s_id(self.kind, self.name, self.namespace)

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    def at(self, node: object) -> str:
        return f"{self.file}:{line_of(node, self.line)}"


@dataclass(slots=True)
class _Relationships:
    """Relationships in first-seen order; a repeat adds its ``via`` to the first."""

    items: dict[tuple[str, str, str], tuple[str, list[str]]] = field(default_factory=dict)

    def add(self, source: str, rel_type: str, target: str, location: str, via: str) -> None:
        key = (source, rel_type, target)
        if key not in self.items:
            self.items[key] = (location, [via])
        elif via not in self.items[key][1]:
            self.items[key][1].append(via)

    def parsed(self) -> list[ParsedRelationship]:
        return [
            ParsedRelationship(source, rel_type, target, location, {"via": text_list(sorted(vias))})
            for (source, rel_type, target), (location, vias) in self.items.items()
        ]


def parse_kubernetes(files: Sequence[SourceFile]) -> Inventory:
    """Kubernetes objects of ``files`` as one inventory (see the module docstring)."""
    inventory = Inventory()
    objects: list[_Object] = []
    for file in files:
        skipped: dict[str, list[tuple[str, int]]] = {}
        for number, (document, line) in enumerate(load_documents(file), start=1):
            if document is None:
                continue
            _collect(
                document,
                file.name,
                line,
                item=f"document {number}",
                objects=objects,
                skipped=skipped,
                inventory=inventory,
            )
        for kind, seen in skipped.items():
            first_name, first_line = seen[0]
            more = f" and {len(seen) - 1} more" if len(seen) > 1 else ""
            reason = "never imported" if kind == "Secret" else "not imported"
            inventory.warnings.append(
                f"{file.name}:{first_line}: {kind} {first_name!r}{more} skipped: "
                f"kind {kind} is {reason}"
            )

    by_id: dict[CiId, _Object] = {}
    for obj in objects:
        if obj.id in by_id:
            raise ValidationError(
                f"defined twice (first at {by_id[obj.id].location})",
                item=obj.id,
                location=obj.location,
            )
        by_id[obj.id] = obj

    namespaces = {o.namespace for o in objects if o.namespace is not None}
    declared = {o.name for o in objects if o.kind == "Namespace"}
    services = {(o.namespace, o.name) for o in objects if o.kind == "Service"}
    config_maps = {o.id: o for o in objects if o.kind == "ConfigMap"}
    workloads = [o for o in objects if o.kind in WORKLOAD_KINDS]
    # (namespace, label, value) -> workloads whose pods carry that label: selectors check a
    # handful of candidates instead of every workload of a large cluster.
    labelled: dict[tuple[str | None, str, str], list[_Object]] = {}
    for workload in workloads:
        for key, value in _pod_labels(workload).items():
            labelled.setdefault((workload.namespace, str(key), str(value)), []).append(workload)
    selected_by: dict[CiId, set[CiId]] = {}  # workload -> the Services selecting it
    rels = _Relationships()

    for obj in objects:
        inventory.cis.append(ParsedCi(_ci(obj), obj.location))
    for namespace in sorted(namespaces - declared):
        ci = _make_ci(
            k8s_id("Namespace", namespace, None),
            "namespace",
            namespace,
            {"kind": "Namespace", "declared": False},
            location="",
        )
        first = next(o for o in objects if o.namespace == namespace)
        inventory.cis.append(ParsedCi(ci, first.location))

    for obj in objects:
        if obj.namespace is not None:
            rels.add(
                k8s_id("Namespace", obj.namespace, None),
                "CONTAINS",
                obj.id,
                obj.location,
                "namespace",
            )
        if obj.kind == "Service":
            for backend in _service_backends(obj, labelled, rels):
                selected_by.setdefault(backend, set()).add(obj.id)
        elif obj.kind == "Ingress":
            _ingress_backends(obj, rels)

    def is_service(namespace: str, name: str) -> bool:
        return (namespace, name) in services

    for workload in workloads:
        _workload_dependencies(
            workload,
            config_maps=config_maps,
            is_service=is_service,
            namespaces=namespaces,
            selected_by=selected_by.get(workload.id, set()),
            rels=rels,
        )

    inventory.relationships.extend(rels.parsed())
    return inventory


def _collect(
    document: Any,
    file: str,
    line: int,
    *,
    item: str,
    objects: list[_Object],
    skipped: dict[str, list[tuple[str, int]]],
    inventory: Inventory,
    list_kind: str | None = None,
) -> None:
    location = f"{file}:{line}"
    if not isinstance(document, dict):
        raise ValidationError("a Kubernetes object is a mapping", item=item, location=location)
    kind = document.get("kind", list_kind)
    if kind is None and "apiVersion" not in document:
        inventory.warnings.append(f"{location}: {item} skipped: not a Kubernetes object")
        return
    if not isinstance(kind, str) or not kind:
        raise ValidationError(
            "every Kubernetes object has a kind", item=item, field="kind", location=location
        )
    if kind == "Secret":  # never look further into a Secret
        skipped.setdefault(kind, []).append((_name_or(document, "?"), line))
        return
    if kind == "List" or (kind.endswith("List") and "items" in document):
        items = document.get("items")
        if not isinstance(items, list):
            raise ValidationError(
                f"a {kind} has a list of items", item=item, field="items", location=location
            )
        element_kind = None if kind == "List" else kind.removesuffix("List")
        for index, element in enumerate(items):
            _collect(
                element,
                file,
                line_of(element, line),
                item=f"{item} items[{index}]",
                objects=objects,
                skipped=skipped,
                inventory=inventory,
                list_kind=element_kind,
            )
        return
    if kind not in IMPORTED_KINDS:
        skipped.setdefault(kind, []).append((_name_or(document, "?"), line))
        return
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        raise ValidationError(
            f"a {kind} needs a name (a non-empty string)",
            item=f"{kind} ({item})",
            field="metadata.name",
            location=f"{file}:{key_line(metadata, 'name', line)}",
        )
    namespace: str | None = None
    if kind != "Namespace":
        raw_ns = metadata.get("namespace", "default") if isinstance(metadata, dict) else "default"
        if not isinstance(raw_ns, str) or not raw_ns:
            raise ValidationError(
                "a namespace is a non-empty string",
                item=f"{kind} {name}",
                field="metadata.namespace",
                location=f"{file}:{key_line(metadata, 'namespace', line)}",
            )
        namespace = raw_ns
    owners = metadata.get("ownerReferences") if isinstance(metadata, dict) else None
    if kind in WORKLOAD_KINDS and _controlled(owners):
        # A Job run by a CronJob (as `kubectl get jobs` lists them) comes and goes: its
        # controller is the CI.
        skipped.setdefault(f"{kind} (controlled by another object)", []).append((name, line))
        return
    body = document if isinstance(document, YamlMapping) else YamlMapping(line)
    if body is not document:
        body.update(document)
    objects.append(_Object(kind, name, namespace, body, file, line))


def _name_or(document: dict[Any, Any], default: str) -> str:
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else default


def _controlled(owners: object) -> bool:
    return isinstance(owners, list) and any(
        isinstance(o, dict) and o.get("controller") is True for o in owners
    )


def _path(node: object, *keys: str) -> Any:
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _make_ci(
    ci_id: CiId, ci_class: str, name: str, attributes: dict[str, AttributeValue], location: str
) -> ConfigurationItem:
    try:
        return ConfigurationItem(id=ci_id, ci_class=ci_class, name=name, attributes=attributes)
    except pydantic.ValidationError as exc:
        raise model_error(exc, ci_id, location) from None


def _ci(obj: _Object) -> ConfigurationItem:
    spec = obj.body.get("spec")
    attributes: dict[str, AttributeValue] = {"kind": obj.kind}
    if obj.namespace is not None:
        attributes["namespace"] = obj.namespace
    if obj.kind == "Namespace":
        attributes["declared"] = True
    elif obj.kind in WORKLOAD_KINDS:
        pod = _pod_spec(obj)
        images = [c["image"] for c in _containers(pod) if isinstance(c.get("image"), str)]
        attributes["images"] = text_list(images)
        replicas = _path(spec, "replicas")
        if isinstance(replicas, int) and not isinstance(replicas, bool):
            attributes["replicas"] = replicas
        schedule = _path(spec, "schedule")
        if obj.kind == "CronJob" and isinstance(schedule, str):
            attributes["schedule"] = schedule
    elif obj.kind == "Service":
        service_type = _path(spec, "type")
        attributes["type"] = service_type if isinstance(service_type, str) else "ClusterIP"
        selector = _path(spec, "selector")
        if isinstance(selector, dict):
            attributes["selector"] = text_list(sorted(f"{k}={v}" for k, v in selector.items()))
        ports = _path(spec, "ports")
        if isinstance(ports, list):
            attributes["ports"] = text_list(
                f"{p.get('port')}/{p.get('protocol', 'TCP')}"
                for p in ports
                if isinstance(p, dict) and p.get("port") is not None
            )
        external = _path(spec, "externalName")
        if isinstance(external, str):
            attributes["external_name"] = external
    elif obj.kind == "Ingress":
        rules = _path(spec, "rules")
        hosts = sorted(
            {r["host"] for r in rules if isinstance(r, dict) and isinstance(r.get("host"), str)}
            if isinstance(rules, list)
            else set()
        )
        attributes["hosts"] = text_list(hosts)
        ingress_class = _path(spec, "ingressClassName")
        if isinstance(ingress_class, str):
            attributes["ingress_class"] = ingress_class
    elif obj.kind == "ConfigMap":
        # Keys only: values are configuration, sometimes misused for credentials.
        keys = [str(k) for k in _config_data(obj)]
        attributes["keys"] = text_list(sorted(keys))
    return _make_ci(obj.id, _CLASSES[obj.kind], obj.name, attributes, obj.location)


def _pod_spec(obj: _Object) -> Any:
    if obj.kind == "CronJob":
        return _path(obj.body, "spec", "jobTemplate", "spec", "template", "spec")
    return _path(obj.body, "spec", "template", "spec")


def _pod_labels(obj: _Object) -> dict[Any, Any]:
    if obj.kind == "CronJob":
        labels = _path(obj.body, "spec", "jobTemplate", "spec", "template", "metadata", "labels")
    else:
        labels = _path(obj.body, "spec", "template", "metadata", "labels")
    return labels if isinstance(labels, dict) else {}


def _containers(pod: Any) -> list[dict[Any, Any]]:
    found: list[dict[Any, Any]] = []
    for key in ("initContainers", "containers"):
        items = _path(pod, key)
        if isinstance(items, list):
            found.extend(c for c in items if isinstance(c, dict))
    return found


def _config_data(obj: _Object) -> dict[Any, Any]:
    data = obj.body.get("data")
    return data if isinstance(data, dict) else {}


def _service_backends(
    service: _Object,
    labelled: dict[tuple[str | None, str, str], list[_Object]],
    rels: _Relationships,
) -> list[CiId]:
    """Relate ``service`` to the workloads (of its namespace) its selector matches."""
    selector = _path(service.body, "spec", "selector")
    if not isinstance(selector, dict) or not selector:
        return []  # ExternalName, or Endpoints managed by hand
    matched: list[CiId] = []
    first_key, first_value = next(iter(selector.items()))
    for workload in labelled.get((service.namespace, str(first_key), str(first_value)), []):
        labels = _pod_labels(workload)
        if all(k in labels and str(labels[k]) == str(v) for k, v in selector.items()):
            rels.add(service.id, "DEPENDS_ON", workload.id, service.at(selector), "selector")
            matched.append(workload.id)
    return matched


def _ingress_backends(ingress: _Object, rels: _Relationships) -> None:
    spec = ingress.body.get("spec")
    backends: list[Any] = [_path(spec, "defaultBackend"), _path(spec, "backend")]
    rules = _path(spec, "rules")
    for rule in rules if isinstance(rules, list) else []:
        paths = _path(rule, "http", "paths")
        for entry in paths if isinstance(paths, list) else []:
            backends.append(_path(entry, "backend"))
    for backend in backends:
        name = _path(backend, "service", "name") or _path(backend, "serviceName")
        if isinstance(name, str) and name:
            target = k8s_id("Service", name, ingress.namespace)
            rels.add(ingress.id, "DEPENDS_ON", target, ingress.at(backend), "ingress backend")


def _workload_dependencies(
    workload: _Object,
    *,
    config_maps: dict[CiId, _Object],
    is_service: Callable[[str, str], bool],
    namespaces: set[str],
    selected_by: set[CiId],
    rels: _Relationships,
) -> None:
    namespace = workload.namespace or "default"
    pod = _pod_spec(workload)

    def depend_on_hosts(text: str, location: str, via: str, *, dangling: bool) -> None:
        for ref in host_references(
            text,
            namespace,
            is_service=is_service,
            known_namespaces=namespaces,
            allow_dangling=dangling,
        ):
            target = k8s_id("Service", ref.name, ref.namespace)
            if target not in selected_by:  # a workload naming its own Service is no dependency
                rels.add(workload.id, "DEPENDS_ON", target, location, via)

    def depend_on_config(name: object, node: object, via: str, keys: set[str] | None) -> None:
        if not isinstance(name, str) or not name:
            return
        target = k8s_id("ConfigMap", name, namespace)
        location = workload.at(node)
        rels.add(workload.id, "DEPENDS_ON", target, location, via)
        config = config_maps.get(target)
        if config is None:
            return
        for key, value in _config_data(config).items():
            if (keys is None or key in keys) and isinstance(value, str):
                if CREDENTIAL_NAME.search(str(key)):
                    continue
                depend_on_hosts(value, location, f"configmap {name} key {key}", dangling=False)

    for container in _containers(pod):
        for source in _list(container.get("envFrom")):
            depend_on_config(_path(source, "configMapRef", "name"), source, "envFrom", None)
        for env in _list(container.get("env")):
            if not isinstance(env, dict) or not isinstance(env.get("name"), str):
                continue
            env_name = env["name"]
            ref = _path(env, "valueFrom", "configMapKeyRef")
            if isinstance(ref, dict):
                key = ref.get("key")
                depend_on_config(
                    ref.get("name"),
                    env,
                    f"env {env_name}",
                    {key} if isinstance(key, str) else set(),
                )
            value = env.get("value")
            if isinstance(value, str) and not CREDENTIAL_NAME.search(env_name):
                depend_on_hosts(value, workload.at(env), f"env {env_name}", dangling=True)
    for volume in _list(_path(pod, "volumes")):
        volume_name = _path(volume, "name")
        via = f"volume {volume_name}"
        depend_on_config(_path(volume, "configMap", "name"), volume, via, None)
        for source in _list(_path(volume, "projected", "sources")):
            depend_on_config(_path(source, "configMap", "name"), volume, via, None)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
