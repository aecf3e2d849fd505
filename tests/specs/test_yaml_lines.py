"""Line-aware safe YAML: lines of keys and values, duplicates, merge keys, aliases, typed readers."""

from __future__ import annotations

import pytest

from asyncsync.errors import SpecError
from asyncsync.specs.yaml_lines import MAX_NODES, Doc, YMap, YNode, YScalar, YSeq, did_you_mean, parse_yaml


def parse_map(text: str) -> YMap:
    tree = parse_yaml(text, "f.yaml")
    assert isinstance(tree, YMap)
    return tree


def value(tree: YMap, key: str) -> YNode:
    node = tree.value(key)
    assert node is not None
    return node


def test_lines_of_keys_values_and_items() -> None:
    tree = parse_map("a: 1\nb:\n  - x\n  -\n    c: 'y'\n")
    a, b = tree.entries
    assert (a.key, a.key_line, a.value.line) == ("a", 1, 1)
    assert isinstance(b.value, YSeq) and b.key_line == 2
    first, second = b.value.items
    assert isinstance(first, YScalar) and (first.value, first.line) == ("x", 3)
    assert isinstance(second, YMap) and second.line == 5 and second.entries[0].key_line == 5


def test_scalars_keep_their_text() -> None:
    tree = parse_map("v: 1.10\nw: 010\nb: yes\nn:\nd: 2024-01-02\n")
    doc = Doc("f.yaml")
    texts = [doc.string(value(tree, k), k) for k in ("v", "w", "b", "d")]
    assert texts == ["1.10", "010", "yes", "2024-01-02"]
    v = value(tree, "v")
    assert isinstance(v, YScalar) and v.value == 1.1
    n = tree.value("n")
    assert isinstance(n, YScalar) and n.is_null


def test_duplicate_keys_name_both_lines() -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml("top:\n  a: 1\n  b: 2\n  a: 3\n", "f.yaml")
    assert str(info.value) == "f.yaml:4: duplicate key 'a' (first at line 2)"


def test_merge_keys_and_overrides() -> None:
    tree = parse_map("base: &b\n  x: 1\n  y: 2\nuse:\n  <<: *b\n  y: 3\n")
    use = tree.value("use")
    assert isinstance(use, YMap)
    assert {e.key: (e.value, e.key_line) for e in use} == {
        "x": (YScalar(1, "1", "tag:yaml.org,2002:int", 2), 2),
        "y": (YScalar(3, "3", "tag:yaml.org,2002:int", 6), 6),
    }


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml("a: &x\n  - *x\n", "f.yaml")
    assert str(info.value) == "f.yaml:1: recursive alias"


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    with pytest.raises(SpecError) as info:
        parse_yaml("\n".join(lines) + "\n", "f.yaml")
    assert f"expands to more than {MAX_NODES} nodes" in str(info.value)


def test_non_scalar_keys_are_refused() -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml("? [a, b]\n: 1\n", "f.yaml")
    assert str(info.value) == "f.yaml:1: mapping keys must be plain strings"


def test_typed_readers_messages() -> None:
    doc = Doc("f.yaml")
    tree = parse_map("m: {a: 1}\nl: [1]\ns: text\nmulti: |\n  a\n  b\nnum: 3\nneg: -2\nf: .inf\nt: true\n")
    with pytest.raises(SpecError, match=r"^f.yaml:1: thing must be a list, not a mapping$"):
        doc.sequence(value(tree, "m"), "thing")
    with pytest.raises(SpecError, match=r"^f.yaml:2: thing must be a string, not a list$"):
        doc.string(value(tree, "l"), "thing")
    with pytest.raises(SpecError, match=r"^f.yaml:4: thing must be a single line$"):
        doc.string(value(tree, "multi"), "thing")
    with pytest.raises(SpecError, match=r"^f.yaml:8: thing must be at least 0, not -2$"):
        doc.integer(value(tree, "neg"), "thing")
    with pytest.raises(SpecError, match=r"^f.yaml:9: thing must be a positive number, not inf$"):
        doc.number(value(tree, "f"), "thing")
    with pytest.raises(SpecError, match=r"^f.yaml:7: thing must be true or false, not a number '3'$"):
        doc.boolean(value(tree, "num"), "thing")
    with pytest.raises(SpecError, match=r"^f.yaml:1: unknown key 'a' in thing \(did you mean 'b'\?\)$"):
        doc.mapping(value(tree, "m"), "thing", ("b",))
    assert doc.boolean(value(tree, "t"), "thing") is True
    assert doc.strings(value(tree, "l"), "thing") == [("1", 2)]


def test_did_you_mean() -> None:
    assert did_you_mean("form", ["from", "format", "to"]) == " (did you mean 'from'?)"
    assert did_you_mean("tls-verfy", ["tls-verify", "cert-dir"]) == " (did you mean 'tls-verify'?)"
    assert did_you_mean("zzz", ["from", "to"]) == ""


def test_merge_of_a_non_mapping_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml("a:\n  <<: 1\n  b: 2\n", "f.yaml")
    assert str(info.value).startswith("f.yaml:2: invalid merge key: expected a mapping or list of mappings")
