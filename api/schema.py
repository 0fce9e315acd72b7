"""The GraphQL schema. For now it describes the vocabulary (the registry); the CI, impact and
map fields come with the API issue. ``schema.graphql`` is exported from here
(``python -m api.schema > schema.graphql``) and a test fails when the two drift.

Nothing serves this schema over HTTP yet: the API issue adds the starlette app together with
tokens and roles, so no field is ever reachable without authentication.
"""

from __future__ import annotations

from enum import Enum

import strawberry

from graph.model import DEFAULT_REGISTRY
from graph.model import Propagation as ModelPropagation


@strawberry.enum(description="Which way a failure travels along (source)-[type]->(target).")
class Propagation(Enum):
    TO_SOURCE = ModelPropagation.TO_SOURCE.value
    TO_TARGET = ModelPropagation.TO_TARGET.value
    BOTH = ModelPropagation.BOTH.value
    NONE = ModelPropagation.NONE.value


@strawberry.type(description="A relationship type of the registry.")
class RelationshipType:
    name: str
    forward: str = strawberry.field(description='How the source reads it: "Depends on".')
    reverse: str = strawberry.field(description='How the target reads it: "Used by".')
    propagation: Propagation
    description: str


@strawberry.type(description="A CI class of the registry.")
class CiClass:
    name: str
    label: str
    category: str
    description: str


def _relationship_types() -> list[RelationshipType]:
    return [
        RelationshipType(
            name=t.name,
            forward=t.forward,
            reverse=t.reverse,
            propagation=Propagation(t.propagation.value),
            description=t.description,
        )
        for t in DEFAULT_REGISTRY.relationship_types.values()
    ]


def _ci_classes() -> list[CiClass]:
    return [
        CiClass(name=c.name, label=c.label, category=c.category, description=c.description)
        for c in DEFAULT_REGISTRY.classes.values()
    ]


@strawberry.type
class Query:
    relationship_types: list[RelationshipType] = strawberry.field(
        resolver=_relationship_types, description="Every relationship type this CMDB accepts."
    )
    ci_classes: list[CiClass] = strawberry.field(
        resolver=_ci_classes, description="Every CI class this CMDB accepts."
    )


schema = strawberry.Schema(query=Query)

if __name__ == "__main__":
    print(schema.as_str())
