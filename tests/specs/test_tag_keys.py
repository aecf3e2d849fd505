"""The tag-selection readers both spec formats use (asyncsync.specs.tag_keys)."""

from __future__ import annotations

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import SpecError
from asyncsync.specs.tag_keys import reference_list, tag_regex, version_range
from asyncsync.specs.yaml_lines import Doc, YMap, YNode, parse_yaml

DIGEST = "sha256:" + "a" * 64


def _value(text: str) -> YNode:
    tree = parse_yaml(f"key: {text}\n", "spec.yaml")
    assert isinstance(tree, YMap)
    node = tree.value("key")
    assert node is not None
    return node


def test_reference_list_splits_tags_and_digests_with_their_lines() -> None:
    doc = Doc("spec.yaml")
    found = reference_list(doc, _value(f'["1.0", "{DIGEST}", latest]'), "'tags' of entry 1")
    assert found.tags == (("1.0", 1), ("latest", 1))
    assert found.digests == ((Digest.parse(DIGEST), 1),)
    assert reference_list(doc, _value("[]"), "x").tags == ()


def test_reference_list_names_the_bad_item_and_where_it_stands() -> None:
    with pytest.raises(SpecError) as err:
        reference_list(Doc("spec.yaml"), _value('["sha256:zz"]'), "'tags' of entry 1")
    assert str(err.value).startswith("spec.yaml:1: ")
    assert str(err.value).endswith(" in 'tags' of entry 1")


def test_tag_regex_is_re2_and_unanchored() -> None:
    regex = tag_regex(Doc("spec.yaml"), _value(r"'1\.2'"), "'include' of entry 1")
    assert regex.search("v1.2.3")
    with pytest.raises(SpecError, match=r"spec.yaml:1: invalid regex '\(a' in 'include' of entry 1: "):
        tag_regex(Doc("spec.yaml"), _value("'(a'"), "'include' of entry 1")
    with pytest.raises(SpecError, match="must not be empty"):
        tag_regex(Doc("spec.yaml"), _value("''"), "'include' of entry 1")
    assert tag_regex(Doc("spec.yaml"), _value("''"), "x", allow_empty=True).search("any")


def test_version_range_error_names_the_enclosing_block() -> None:
    assert version_range(Doc("spec.yaml"), _value("'>=1.2 <2'"), "'semver'").matches("1.5.0")
    with pytest.raises(SpecError, match=r"invalid semver range '\^one' in 'tags' of entry 1: "):
        version_range(Doc("spec.yaml"), _value("'^one'"), "'semver' of entry 1", within="'tags' of entry 1")
