"""importers.safe_yaml: safe types, line numbers, and every cap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from graph.errors import LimitExceededError, ValidationError
from importers import safe_yaml
from importers.base import SourceFile
from importers.safe_yaml import YamlMapping, item_line, key_line, line_of, load_documents


def load(text: str | bytes, name: str = "in.yaml") -> list[tuple[Any, int]]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return load_documents(SourceFile(name=name, data=data))


def test_documents_come_with_the_line_their_content_starts_on():
    docs = load("# header\n---\na: 1\n---\n\n- x\n- y\n---\n")
    assert [d for d, _ in docs] == [{"a": 1}, ["x", "y"], None]
    assert [line for _, line in docs[:2]] == [3, 6]


def test_mappings_know_their_line_and_the_line_of_each_key():
    [(doc, line)] = load("top:\n  inner:\n    k: v\n  other: 2\n")
    assert isinstance(doc, YamlMapping)
    top = doc["top"]
    assert line == 1
    assert line_of(top, 0) == 2
    assert key_line(top, "other", 0) == 4
    assert key_line(top["inner"], "k", 0) == 3
    assert line_of("scalar", 7) == 7
    assert key_line({"plain": "dict"}, "plain", 9) == 9


def test_yaml_1_1_surprises_stay_the_strings_the_author_wrote():
    [(doc, _)] = load(
        "a: [no, on, y, off, NO, 1.10, 007, 0x1F, 0o17, 1_000, 12:30, 2024-01-01, .inf, +1, 1e3]"
    )
    assert doc["a"] == [
        "no", "on", "y", "off", "NO", "1.10", "007", "0x1F", "0o17", "1_000", "12:30",
        "2024-01-01", ".inf", "+1", "1e3",
    ]  # fmt: skip


def test_core_scalars_still_resolve():
    [(doc, _)] = load(
        'a: [1, -2, 1.5, 0.25, true, False, null, ~, "3", \'true\', !!str 4, !!int "5"]'
    )
    assert doc["a"] == [1, -2, 1.5, 0.25, True, False, None, None, "3", "true", "4", 5]
    [(doc, _)] = load("a: !!float 1\nb: !!bool true\nc: !!null ''\nd: ! 7\ne:\n")
    assert doc == {"a": 1.0, "b": True, "c": None, "d": "7", "e": None}


def test_merge_keys_apply_and_explicit_keys_win():
    [(doc, _)] = load(
        "base: &b {x: 1, y: 2}\nother: &o {y: 20, z: 30}\nsvc:\n  <<: [*b, *o]\n  x: 10\n"
    )
    assert doc["svc"] == {"x": 10, "y": 2, "z": 30}
    with pytest.raises(ValidationError, match="merge key"):
        load("a: &a [1]\nb:\n  <<: *a\n")


def test_json_is_read_too_with_lines():
    [(doc, _)] = load(
        '{\n  "kind": "List",\n  "items": [\n    {"a": 1},\n    {"b": "no"}\n  ]\n}\n'
    )
    assert doc["items"] == [{"a": 1}, {"b": "no"}]
    assert line_of(doc["items"][1], 0) == 5


def test_syntax_errors_name_file_and_line():
    with pytest.raises(ValidationError) as exc:
        load("a: 1\nb: [unclosed\nc: 3\n", name="bad.yaml")
    assert exc.value.location is not None
    assert exc.value.location.startswith("bad.yaml:")
    assert "invalid YAML" in str(exc.value)


def test_invalid_utf8_names_the_line():
    with pytest.raises(ValidationError, match="invalid UTF-8") as exc:
        load(b"a: 1\nb: \xff\n", name="bin.yaml")
    assert exc.value.location == "bin.yaml:2"


def test_control_characters_are_refused_with_their_line():
    with pytest.raises(ValidationError) as exc:
        load("a: 1\nb: x\x00y\n", name="nul.yaml")
    assert exc.value.location == "nul.yaml:2"


def test_duplicate_keys_are_refused():
    with pytest.raises(ValidationError, match="duplicate key 'a' \\(first on line 1\\)") as exc:
        load("a: 1\nb: 2\na: 3\n", name="dup.yaml")
    assert exc.value.location == "dup.yaml:3"


@pytest.mark.parametrize(
    "text",
    [
        "!!python/object/apply:os.system ['echo pwned']",
        "a: !!python/name:os.system\n",
        "a: !!binary aGVsbG8=\n",
        "a: !!timestamp 2024-01-01\n",
        "a: !!set {x: null}\n",
        "a: !Ref Bucket\n",
        "a: !custom {b: 1}\n",
        "a: !!int x\n",
    ],
)
def test_only_core_tags_are_accepted(text):
    with pytest.raises(ValidationError):
        load(text)


def test_undefined_and_recursive_aliases_are_refused():
    with pytest.raises(ValidationError, match="names no anchor"):
        load("a: *nope\n")
    with pytest.raises(ValidationError, match="names no anchor"):
        load("a: &x [*x]\n")


def test_complex_keys_are_refused():
    with pytest.raises(ValidationError, match="cannot be mapping keys"):
        load("? [a, b]\n: 1\n")


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{','.join(['*' + prev] * 10)}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_fails_fast_naming_file_and_line():
    # The cap counts alias expansions before building anything: 10^9 items never exist.
    with pytest.raises(LimitExceededError, match="billion laughs") as exc:
        load(billion_laughs(), name="bomb.yaml")
    assert exc.value.location is not None
    assert exc.value.location.startswith("bomb.yaml:")


def test_a_few_aliases_are_fine():
    [(doc, _)] = load("x: &x {a: 1}\ny: [*x, *x]\n")
    assert doc["y"] == [{"a": 1}, {"a": 1}]


def test_alias_count_cap(monkeypatch):
    monkeypatch.setattr(safe_yaml, "MAX_ALIASES", 3)
    load("x: &x 1\ny: [*x, *x, *x]\n")
    with pytest.raises(LimitExceededError, match="more than 3 aliases") as exc:
        load("x: &x 1\ny: [*x, *x,\n *x, *x]\n", name="many.yaml")
    assert exc.value.location == "many.yaml:3"


def test_alias_counts_restart_with_each_document(monkeypatch):
    monkeypatch.setattr(safe_yaml, "MAX_ALIASES", 2)
    docs = load("x: &x 1\ny: [*x, *x]\n---\nx: &x 1\ny: [*x, *x]\n")
    assert len(docs) == 2


def test_depth_cap():
    load("[" * safe_yaml.MAX_DEPTH + "]" * safe_yaml.MAX_DEPTH)
    too_deep = safe_yaml.MAX_DEPTH + 1
    with pytest.raises(LimitExceededError, match="nested deeper"):
        load("[" * too_deep + "]" * too_deep)


def test_very_deep_nesting_is_rejected():
    with pytest.raises(ValidationError, match="nest"):  # ours, or libyaml's own limit
        load("[" * 100_000 + "]" * 100_000)
    with pytest.raises(LimitExceededError):
        load("".join(f"{'  ' * i}k:\n" for i in range(10_000)))


def test_document_count_cap(monkeypatch):
    monkeypatch.setattr(safe_yaml, "MAX_DOCUMENTS", 3)
    assert len(load("---\na: 1\n" * 3)) == 3
    with pytest.raises(LimitExceededError, match="more than 3 YAML documents"):
        load("---\na: 1\n" * 4)


def test_file_size_cap(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(safe_yaml, "MAX_YAML_BYTES", 10)
    load("a: 1234567")  # 10 bytes
    with pytest.raises(LimitExceededError, match="the limit is 10") as exc:
        load("a: 12345678", name="big.yaml")
    assert exc.value.location == "big.yaml"
    on_disk = tmp_path / "big.yaml"
    on_disk.write_text("a: 12345678")
    with pytest.raises(LimitExceededError):
        load_documents(SourceFile(name=str(on_disk), path=on_disk))


# PyYAML's emitter writes NEL and the Unicode line/paragraph separators raw, and YAML
# readers take them for line breaks: PyYAML cannot round-trip them, with or without us.
_TEXT = st.characters(codec="utf-8", exclude_characters="\x85\u2028\u2029")
json_scalars = st.none() | st.booleans() | st.integers() | st.text(_TEXT)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(_TEXT, max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_what_pyyaml_dumps_reads_back_the_same(value):
    [(doc, _)] = load(yaml.safe_dump(value, allow_unicode=True))
    assert doc == value


def test_sequences_know_the_line_of_each_item():
    [(doc, _)] = load("env:\n  - A=1\n\n  - B=2\n")
    env = doc["env"]
    assert env == ["A=1", "B=2"]
    assert [item_line(env, i, 0) for i in range(3)] == [2, 4, 0]
    assert line_of(env, 0) == 2
    assert item_line(["plain"], 0, 9) == 9
