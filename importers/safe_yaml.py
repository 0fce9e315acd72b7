"""Bounded, safe YAML loading for every importer that reads YAML (or JSON, which is YAML).

The documents are built here from the parser's event stream instead of by PyYAML's
constructor, so that nothing untrusted can pick a Python type, and every size is capped:

- file size (:data:`MAX_YAML_BYTES`) and number of documents (:data:`MAX_DOCUMENTS`);
- nesting depth (:data:`MAX_DEPTH`);
- aliases: uses per document (:data:`MAX_ALIASES`) and the nodes they stand for
  (:data:`MAX_ALIAS_EXPANSION`). A "billion laughs" file is a few hundred bytes whose aliases
  stand for 10^9 nodes: PyYAML shares them so loading is cheap, but anything that walks the
  result afterwards (JSON, hashing, a store) explodes. Counting the nodes behind each alias
  rejects it after a few thousand.

Scalars follow the YAML 1.2 core schema, not PyYAML's YAML 1.1 one: ``no``, ``on``, ``y``,
``1_000``, ``12:30`` and dates stay strings. A plain scalar becomes a number only when it
reads back exactly as written, so ``1.10``, ``007`` and ``0x1F`` stay the strings the author
wrote (versions and names keep their spelling). Tags other than the core ones
(``!!python/...``, ``!!binary``, ``!Ref``) are refused.

Every mapping is a :class:`YamlMapping`, a ``dict`` that also knows its line and the line of
each key, and every sequence a :class:`YamlSequence`, a ``list`` that knows the line of each
item, so parsers can name ``file:line`` in errors. Duplicate keys are refused (YAML forbids
them; PyYAML silently keeps the last). Merge keys (``<<: *defaults``) are applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from graph.errors import LimitExceededError, ValidationError
from importers.base import SourceFile

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_YAML_BYTES: Final = 64 * 1024 * 1024
MAX_DOCUMENTS: Final = 10_000
MAX_DEPTH: Final = 100
MAX_ALIASES: Final = 1_000  # alias uses in one document
MAX_ALIAS_EXPANSION: Final = 100_000  # nodes reached through aliases in one document

_CORE = "tag:yaml.org,2002:"
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUES = frozenset({"true", "True", "TRUE"})
_FALSES = frozenset({"false", "False", "FALSE"})


class YamlMapping(dict[Any, Any]):
    """A YAML mapping: a plain ``dict`` that remembers where it and each of its keys were."""

    __slots__ = ("key_lines", "line")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line  # 1-based line of the mapping's first key
        self.key_lines: dict[Any, int] = {}


class YamlSequence(list[Any]):
    """A YAML sequence: a plain ``list`` that remembers where it and each of its items were."""

    __slots__ = ("item_lines", "line")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line  # 1-based line of the sequence's first item
        self.item_lines: list[int] = []


def line_of(value: object, default: int) -> int:
    """The line a mapping or sequence started on, or ``default`` for anything else."""
    return value.line if isinstance(value, YamlMapping | YamlSequence) else default


def key_line(mapping: object, key: str, default: int) -> int:
    """The line of ``key`` in ``mapping`` when known, else the mapping's line or ``default``."""
    if isinstance(mapping, YamlMapping):
        return mapping.key_lines.get(key, mapping.line)
    return default


def item_line(sequence: object, index: int, default: int) -> int:
    """The line of item ``index`` of ``sequence`` when known, else ``default``."""
    if isinstance(sequence, YamlSequence) and 0 <= index < len(sequence.item_lines):
        return sequence.item_lines[index]
    return default


def load_documents(file: SourceFile) -> list[tuple[Any, int]]:
    """Every document of ``file`` with the 1-based line its content starts on.

    Empty documents come back as ``None``. Raises :class:`ValidationError` (or
    :class:`LimitExceededError`) naming ``file:line`` for syntax errors, invalid UTF-8,
    unsupported tags, duplicate keys and any exceeded cap.
    """
    _check_size(file)
    text = file.read_text()
    loader = _Loader(text)
    builder = _Builder(file.name)
    try:
        while True:
            try:
                event = loader.get_event()
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                line = 1 if mark is None else mark.line + 1
                problem = exc.problem or exc.context or "invalid YAML"
                raise ValidationError(
                    f"invalid YAML: {problem}", location=f"{file.name}:{line}"
                ) from None
            except yaml.reader.ReaderError as exc:
                line = text[: exc.position].count("\n") + 1
                raise ValidationError(
                    f"invalid YAML: {exc.reason} (character {exc.character!r})",
                    location=f"{file.name}:{line}",
                ) from None
            except yaml.YAMLError as exc:
                raise ValidationError(f"invalid YAML: {exc}", location=file.name) from None
            if isinstance(event, yaml.StreamEndEvent):
                break
            builder.feed(event)
    finally:
        loader.dispose()
    return builder.documents


def _check_size(file: SourceFile) -> None:
    if file.data is not None:
        size = len(file.data)
    elif file.path is not None:
        size = file.path.stat().st_size
    else:  # pragma: no cover - SourceFile guarantees one of the two
        size = 0
    if size > MAX_YAML_BYTES:
        raise LimitExceededError(
            f"YAML file is {size} bytes; the limit is {MAX_YAML_BYTES}: split it",
            location=file.name,
        )


_NO_KEY: Final = object()
_MERGE: Final = object()


@dataclass(slots=True)
class _Frame:
    container: YamlMapping | YamlSequence
    anchor: str | None
    nodes: int = 1  # this node and everything under it, aliases expanded
    key: Any = _NO_KEY
    key_line: int = 0
    merges: list[tuple[YamlMapping, int]] = field(default_factory=list)
    line: int = 0


class _Builder:
    """Turns parser events into Python values, counting and checking as it goes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.documents: list[tuple[Any, int]] = []
        self._stack: list[_Frame] = []
        self._anchors: dict[str, tuple[Any, int]] = {}
        self._aliases = 0
        self._expansion = 0
        self._root: Any = None
        self._root_line = 0

    def _where(self, event: Any) -> str:
        return f"{self.name}:{_line(event)}"

    def feed(self, event: Any) -> None:
        if isinstance(event, yaml.DocumentStartEvent):
            if len(self.documents) >= MAX_DOCUMENTS:
                raise LimitExceededError(
                    f"more than {MAX_DOCUMENTS} YAML documents in one file: split it",
                    location=self._where(event),
                )
            self._anchors.clear()
            self._aliases = self._expansion = 0
            self._root, self._root_line = None, _line(event)
        elif isinstance(event, yaml.DocumentEndEvent):
            self.documents.append((self._root, self._root_line))
        elif isinstance(event, yaml.ScalarEvent):
            is_merge = event.value == "<<" and event.tag is None and event.implicit[0]
            line = _line(event)
            self._deliver(self._scalar(event), 1, event.anchor, line, merge=is_merge)
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self._start(event)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            self._end(event)
        # StreamStartEvent needs nothing.

    def _start(self, event: Any) -> None:
        is_map = isinstance(event, yaml.MappingStartEvent)
        expected = _CORE + ("map" if is_map else "seq")
        if event.tag not in (None, "!", expected):
            raise ValidationError(
                f"unsupported YAML tag {event.tag!r}", location=self._where(event)
            )
        if len(self._stack) >= MAX_DEPTH:
            raise LimitExceededError(
                f"YAML nested deeper than {MAX_DEPTH} levels", location=self._where(event)
            )
        line = _line(event)
        container: YamlMapping | YamlSequence = YamlMapping(line) if is_map else YamlSequence(line)
        self._stack.append(_Frame(container, event.anchor, line=line))

    def _end(self, event: Any) -> None:
        frame = self._stack.pop()
        value = frame.container
        if frame.merges and isinstance(value, YamlMapping):
            value = _merged(value, frame.merges)
        self._deliver(value, frame.nodes, frame.anchor, frame.line)

    def _alias(self, event: Any) -> None:
        try:
            value, nodes = self._anchors[event.anchor]
        except KeyError:
            raise ValidationError(
                f"alias *{event.anchor} names no anchor defined before it",
                location=self._where(event),
            ) from None
        self._aliases += 1
        self._expansion += nodes
        if self._aliases > MAX_ALIASES:
            raise LimitExceededError(
                f"more than {MAX_ALIASES} aliases in one YAML document",
                location=self._where(event),
            )
        if self._expansion > MAX_ALIAS_EXPANSION:
            raise LimitExceededError(
                f"aliases in this YAML document stand for more than {MAX_ALIAS_EXPANSION} "
                "nodes (a 'billion laughs' document?)",
                location=self._where(event),
            )
        self._deliver(value, nodes, None, _line(event))

    def _deliver(
        self, value: Any, nodes: int, anchor: str | None, line: int, *, merge: bool = False
    ) -> None:
        if anchor is not None:
            self._anchors[anchor] = (value, nodes)
        if not self._stack:
            self._root, self._root_line = value, line
            return
        top = self._stack[-1]
        top.nodes += nodes
        if isinstance(top.container, YamlSequence):
            top.container.append(value)
            top.container.item_lines.append(line)
            return
        if top.key is _NO_KEY:
            if isinstance(value, dict | list):
                raise ValidationError(
                    "mappings and sequences cannot be mapping keys",
                    location=f"{self.name}:{line}",
                )
            top.key = _MERGE if merge else value
            top.key_line = line
            return
        key, top.key = top.key, _NO_KEY
        if key is _MERGE:
            sources = value if isinstance(value, list) else [value]
            for source in sources:
                if not isinstance(source, YamlMapping):
                    raise ValidationError(
                        "a merge key (<<) takes a mapping or a list of mappings",
                        location=f"{self.name}:{top.key_line}",
                    )
                top.merges.append((source, top.key_line))
            return
        mapping = top.container
        if key in mapping:
            raise ValidationError(
                f"duplicate key {key!r} (first on line {mapping.key_lines[key]})",
                location=f"{self.name}:{top.key_line}",
            )
        mapping[key] = value
        mapping.key_lines[key] = top.key_line

    def _scalar(self, event: Any) -> Any:
        tag, text = event.tag, event.value
        if tag is None:
            return _resolve_plain(text) if event.implicit[0] else text
        if tag in ("!", _CORE + "str"):
            return text
        try:
            if tag == _CORE + "int":
                return int(text)
            if tag == _CORE + "float":
                return float(text)
        except ValueError:
            raise ValidationError(
                f"{text!r} is not a valid {tag}", location=self._where(event)
            ) from None
        if tag == _CORE + "bool" and (text in _TRUES or text in _FALSES):
            return text in _TRUES
        if tag == _CORE + "null" and text in _NULLS:
            return None
        raise ValidationError(f"unsupported YAML tag {tag!r}", location=self._where(event))


def _line(event: Any) -> int:
    """The 1-based line an event starts on (PyYAML counts from 0)."""
    return int(event.start_mark.line) + 1


def _resolve_plain(text: str) -> Any:
    """YAML 1.2 core schema, keeping any number that would not read back as written."""
    if text in _NULLS:
        return None
    if text in _TRUES:
        return True
    if text in _FALSES:
        return False
    if len(text) <= 40:
        if _INT.fullmatch(text):
            number = int(text)
            return number if str(number) == text else text
        if _FLOAT.fullmatch(text):
            real = float(text)
            return real if repr(real) == text else text
    return text


def _merged(own: YamlMapping, merges: list[tuple[YamlMapping, int]]) -> YamlMapping:
    """``own`` with the keys of each merged mapping it lacks (earlier merges win)."""
    result = YamlMapping(own.line)
    result.update(own)
    result.key_lines.update(own.key_lines)
    for source, line in merges:
        for key, value in source.items():
            if key not in result:
                result[key] = value
                result.key_lines[key] = line
    return result
