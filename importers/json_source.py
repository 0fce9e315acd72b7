"""JSON with the line of every record, for error messages that name ``file:line``."""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graph.errors import ValidationError
from importers.base import SourceFile

JsonPath = tuple[str | int, ...]

# --------------------------------------------------------------------------------------------
# JSON with line numbers. The stdlib parser gives no positions, so after a normal (validating)
# parse we walk the text once more down to ``depth`` levels, skipping deeper values with the C
# decoder, and note the line each value starts on.

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True, slots=True)
class JsonDocument:
    source: SourceFile
    value: Any
    lines: Mapping[JsonPath, int] = field(default_factory=dict)

    def where(self, path: JsonPath) -> str:
        """``file:line`` of the value at ``path`` (or of its nearest recorded ancestor)."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return f"{self.source.name}:{line}"
        return self.source.name


def load_json(source: SourceFile, *, depth: int) -> JsonDocument:
    """Parse ``source`` as JSON, failing with ``file:line:col`` on malformed input, and record
    the line of every value down to ``depth`` levels (``("resources", 3)`` is depth 2)."""
    text = source.read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"malformed JSON: {exc.msg}", location=f"{source.name}:{exc.lineno}:{exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:  # int digit limit, absurd nesting
        raise ValidationError(f"unreadable JSON: {exc}", location=source.name) from None
    return JsonDocument(source, value, _value_lines(text, depth))


def _value_lines(text: str, depth: int) -> dict[JsonPath, int]:
    newlines = [m.start() for m in re.finditer("\n", text)]
    out: dict[JsonPath, int] = {}

    def skip_ws(idx: int) -> int:
        match = _WS.match(text, idx)
        return match.end() if match else idx

    def walk(idx: int, path: JsonPath) -> int:
        idx = skip_ws(idx)
        out[path] = bisect_right(newlines, idx) + 1
        opener = text[idx]
        if len(path) >= depth or opener not in "[{":
            _, end = _DECODER.raw_decode(text, idx)
            return int(end)
        idx = skip_ws(idx + 1)
        closer = "]" if opener == "[" else "}"
        if text[idx] == closer:
            return idx + 1
        position = 0
        while True:
            if opener == "[":
                idx = walk(idx, (*path, position))
                position += 1
            else:
                key, idx = _DECODER.raw_decode(text, idx)
                idx = skip_ws(idx) + 1  # the colon
                idx = walk(idx, (*path, str(key)))
            idx = skip_ws(idx)
            if text[idx] == ",":
                idx = skip_ws(idx + 1)
                continue
            return idx + 1

    walk(0, ())
    return out
