"""The tag-selection values both spec formats write, one reader each, errors as ``file:line``.

skopeo's YAML and the native spec select tags with the same three kinds of value: a list of
tags and ``algo:hex`` digests (skopeo's ``images:`` lists; a native entry's ``tags:`` or
``include:`` list), an RE2 tag regex (:func:`~asyncsync.specs.filters.compile_tag_regex`) and a
semver range (:mod:`asyncsync.specs.semver_range`). Each is read here, so the formats accept the
same values and word their errors alike.
"""

from __future__ import annotations

from asyncsync.digest import Digest
from asyncsync.errors import InvalidReferenceError
from asyncsync.reference import validate_tag
from asyncsync.specs.filters import TagFilter, TagRegex, TagRegexError, compile_tag_regex
from asyncsync.specs.semver_range import VersionError, VersionRange
from asyncsync.specs.yaml_lines import Doc, YNode


def reference_list(doc: Doc, node: YNode, what: str) -> TagFilter:
    """The tags and digests of a list, each with its line; an item with a ``:`` is a digest (skopeo
    tries each as a digest first, and a tag has no ``:``). An empty list gives an empty filter:
    whether that means "every tag" is the caller's rule."""
    tags: list[tuple[str, int]] = []
    digests: list[tuple[Digest, int]] = []
    for text, line in doc.strings(node, what):
        try:
            if ":" in text:
                digests.append((Digest.parse(text), line))
            else:
                tags.append((validate_tag(text), line))
        except InvalidReferenceError as exc:
            raise doc.error(line, f"{exc} in {what}") from None
    return TagFilter(tags=tuple(tags), digests=tuple(digests))


def tag_regex(doc: Doc, node: YNode, what: str, *, allow_empty: bool = False) -> TagRegex:
    """A tag regex (RE2, unanchored); an error names the regex and what RE2 refused."""
    text = doc.string(node, what, allow_empty=allow_empty)
    try:
        return compile_tag_regex(text)
    except TagRegexError as exc:
        raise doc.error(node.line, f"invalid regex {text!r} in {what}: {exc}") from None


def version_range(doc: Doc, node: YNode, what: str, *, within: str = "") -> VersionRange:
    """A semver range (skopeo's ``images-by-semver`` syntax). An error says it stands in ``within``
    (default: ``what``), the block a reader looks for."""
    text = doc.string(node, what)
    try:
        return VersionRange.parse(text)
    except VersionError as exc:
        raise doc.error(node.line, f"invalid semver range {text!r} in {within or what}: {exc}") from None
