"""The errors every layer raises and catches.

CmdbError
├── ValidationError          bad input: names the item and field (and file/line when known)
│   ├── UnknownClassError
│   ├── UnknownRelationshipTypeError
│   └── LimitExceededError   a size, depth or count over an explicit limit
├── NotFoundError            an id or name that matches nothing
├── AmbiguousReferenceError  a name that matches several CIs
├── ConfigurationError       bad settings; the message says how to fix them
└── StoreError               the backing store failed
    └── StoreUnavailableError   it cannot be reached (after retries)
"""

from __future__ import annotations


class CmdbError(Exception):
    """Root of every error this project raises on purpose."""


class ValidationError(CmdbError):
    """Bad input. Nothing of the batch that carried it was written.

    ``item`` and ``field`` say where; ``location`` is ``file:line`` when the input came from
    a file.
    """

    def __init__(
        self,
        message: str,
        *,
        item: str | None = None,
        field: str | None = None,
        location: str | None = None,
    ) -> None:
        self.message = message
        self.item = item
        self.field = field
        self.location = location
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.location:
            where.append(self.location)
        if self.item:
            where.append(f"item {self.item!r}")
        if self.field:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class UnknownClassError(ValidationError):
    """A CI class that is not in the class registry."""


class UnknownRelationshipTypeError(ValidationError):
    """A relationship type that is not in the relationship-type registry."""


class LimitExceededError(ValidationError):
    """A value over one of the explicit limits in ``graph.model.Limits``."""


class NotFoundError(CmdbError):
    """No CI (or incident, or window) with that id or name."""


class AmbiguousReferenceError(CmdbError):
    """A name that several CIs share; use the id instead."""

    def __init__(self, reference: str, candidates: list[str]) -> None:
        self.reference = reference
        self.candidates = candidates
        shown = ", ".join(candidates[:10])
        super().__init__(
            f"{reference!r} names {len(candidates)} CIs ({shown}); use one of their ids"
        )


class ConfigurationError(CmdbError):
    """Settings that cannot work; the message says how to fix them."""


class StoreError(CmdbError):
    """The backing store failed in a way the caller cannot fix by changing its input."""


class StoreUnavailableError(StoreError):
    """The backing store cannot be reached, even after retries."""
