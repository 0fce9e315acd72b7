"""Importers: parse inventories into batches of ``graph.model`` objects.

:data:`FORMATS` names every format ``cmdb import FORMAT`` reads: its parser (the contract in
``importers.base``: files in, one ``Inventory`` out) and the file suffixes a directory is
searched for. :data:`ALIASES` are other names people type for the same formats.

Adding a format: write ``importers/<name>.py`` with a ``parse_<name>`` function and a
``SUFFIXES`` constant, and add one line below (``docs/importing.md``).
"""

from __future__ import annotations

from typing import Final

from importers import backstage, compose, generic, kubernetes, netbox, servicenow, terraform
from importers.base import Parser

FORMATS: Final[dict[str, tuple[Parser, tuple[str, ...]]]] = {
    # Our own formats (importers/generic.py; docs/import-formats.md).
    "csv": (generic.parse_csv, generic.CSV_SUFFIXES),
    "json": (generic.parse_json, generic.JSON_SUFFIXES),
    "yaml": (generic.parse_yaml, generic.YAML_SUFFIXES),
    # Adapters for other tools' inventories.
    "backstage": (backstage.parse_backstage, tuple(backstage.SUFFIXES)),
    "compose": (compose.parse_compose, tuple(compose.SUFFIXES)),
    "kubernetes": (kubernetes.parse_kubernetes, tuple(kubernetes.SUFFIXES)),
    "netbox": (netbox.parse_netbox, tuple(netbox.SUFFIXES)),
    "servicenow": (servicenow.parse_servicenow, tuple(servicenow.SUFFIXES)),
    "terraform": (terraform.parse_terraform_state, tuple(terraform.SUFFIXES)),
}

ALIASES: Final[dict[str, str]] = {
    "yml": "yaml",
    "k8s": "kubernetes",
    "docker-compose": "compose",
    "tfstate": "terraform",
    "snow": "servicenow",
}

DESCRIPTIONS: Final[dict[str, str]] = {
    "csv": "our CSV: a CI file (id,class,name,...) and a relationship file (source,target,type)",
    "json": 'our JSON: {"cis": [...], "relationships": [...]}',
    "yaml": "our YAML: cis and relationships, like importers/data/demo.yaml",
    "backstage": "Backstage catalog-info.yaml files (entities and their relations)",
    "compose": "Docker Compose files (services, depends_on, networks)",
    "kubernetes": "Kubernetes manifests or `kubectl get -o yaml/json` output",
    "netbox": "NetBox REST API exports (devices, racks, sites, cables)",
    "servicenow": "ServiceNow CMDB exports (Table API JSON or list CSV, cmdb_rel_ci)",
    "terraform": "Terraform state files (.tfstate)",
}


def format_name(name: str) -> str:
    """The canonical name of a format or alias (unknown names come back unchanged)."""
    return ALIASES.get(name, name)
