"""What every importer produces: an :class:`Inventory` of parsed items, each with the place
in its file it came from, ready for the import engine (``graph.sync``) to reconcile and load.

Importers parse and transform only; they never touch a store.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pydantic

from graph.errors import LimitExceededError, ValidationError
from graph.model import AttributeValue, ConfigurationItem, ExternalChange, Limits, Scalar


@dataclass(frozen=True, slots=True)
class ParsedCi:
    """One CI as the source reports it. ``ci.id`` is the source's identity for it."""

    ci: ConfigurationItem
    location: str  # "path:line" of the item (line of its first key where known)


@dataclass(frozen=True, slots=True)
class ParsedRelationship:
    """``source_ref -[type]-> target_ref``; each ref is a CI id or a unique CI name."""

    source_ref: str
    type: str
    target_ref: str
    location: str
    attributes: dict[str, AttributeValue] = field(default_factory=dict)


@dataclass(slots=True)
class Inventory:
    """The result of parsing one or more files of one format."""

    cis: list[ParsedCi] = field(default_factory=list)
    relationships: list[ParsedRelationship] = field(default_factory=list)
    changes: list[ExternalChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # each names file:line and item
    # False when the parser knows it saw only part of the source's inventory; the engine then
    # marks nothing absent and retires nothing.
    complete: bool = True

    def extend(self, other: Inventory) -> None:
        self.cis.extend(other.cis)
        self.relationships.extend(other.relationships)
        self.changes.extend(other.changes)
        self.warnings.extend(other.warnings)
        self.complete = self.complete and other.complete


MAX_FILE_BYTES = 256 * 1024 * 1024  # one input file; larger inventories are split or streamed


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One input: a file on disk, or bytes read from stdin (``name`` is then ``<stdin>``)."""

    name: str  # what error messages call it
    path: Path | None = None
    data: bytes | None = None

    def open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None, "a SourceFile has a path or data"
        return self.path.open("rb")

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None, "a SourceFile has a path or data"
        size = self.path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise LimitExceededError(
                f"file is {size} bytes; the limit is {MAX_FILE_BYTES}", location=self.name
            )
        return self.path.read_bytes()

    def read_text(self) -> str:
        """The file as UTF-8; invalid UTF-8 is reported with its line, never guessed."""
        data = self.read_bytes()
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ValidationError(
                f"invalid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                location=f"{self.name}:{line}",
            ) from None


def expand_paths(paths: Sequence[str | Path], suffixes: tuple[str, ...]) -> list[SourceFile]:
    """Files as given, directories walked for ``suffixes`` (sorted, so runs are repeatable).
    ``-`` reads stdin once."""
    files: list[SourceFile] = []
    for raw in paths:
        if str(raw) == "-":
            files.append(SourceFile(name="<stdin>", data=sys.stdin.buffer.read()))
            continue
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(suffixes))
            if not found:
                raise ValidationError(
                    f"no {'/'.join(suffixes)} files in this directory", location=str(path)
                )
            files.extend(SourceFile(name=str(p), path=p) for p in found)
        elif path.is_file():
            files.append(SourceFile(name=str(path), path=path))
        else:
            raise ValidationError("no such file or directory", location=str(path))
    return files


Parser = Callable[[Sequence[SourceFile]], Inventory]
"""A format's entry point: the files of one run to one Inventory. Raises
``graph.errors.ValidationError`` naming file, line, item and field on bad input; nothing is
loaded from a run whose parse failed."""


def text_list(values: Iterable[str]) -> list[Scalar]:
    """A list attribute, capped at the model's list limit."""
    capped: list[Scalar] = []
    capped.extend(values)
    return capped[: Limits.MAX_LIST_ITEMS]


def model_error(exc: pydantic.ValidationError, item: str, location: str) -> ValidationError:
    """A model's first complaint about an item, as our error naming the item and field."""
    error = exc.errors()[0]
    return ValidationError(
        error["msg"],
        item=item,
        field=".".join(str(p) for p in error["loc"]) or None,
        location=location or None,
    )
