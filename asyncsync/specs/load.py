"""Loading a sync spec: YAML -> a frozen, validated ``SyncSpec``; errors as ``file:line: message``.

Two formats are read, told apart by a top-level ``version`` key (skopeo's format cannot have
one: its top-level values are registry mappings, never numbers):

* **skopeo's sync YAML** (``asyncsync sync --src yaml --dest docker SPEC.yaml DEST``), accepted
  unchanged, with skopeo's destination naming (:mod:`asyncsync.specs.skopeo`);
* **the native format** (``asyncsync sync SPEC.yaml``), documented in :mod:`asyncsync.specs.native`.

This module only tells them apart; each parser builds the shared model
(:mod:`asyncsync.specs.model`) and neither imports this module.

Every check that needs no network happens at load: unknown keys (with a suggestion), types,
regexes, version ranges, names, conflicting options, missing secrets, and destinations
written twice by explicit tags. Duplicates that only appear after tag listing are found by
the plan (:mod:`asyncsync.sync.plan`), which names both spec lines.
"""

from __future__ import annotations

from pathlib import Path

from asyncsync.errors import SpecError, UsageError
from asyncsync.specs import native, skopeo
from asyncsync.specs.model import CopySettings, SyncSpec
from asyncsync.specs.yaml_lines import YMap, YScalar, load_yaml


def load_spec(
    path: str | Path,
    *,
    destination: str | None = None,
    scoped: bool = False,
    append_suffix: str = "",
    settings: CopySettings | None = None,
) -> SyncSpec:
    """Load either format. A skopeo-format spec needs ``destination`` (the DEST argument) and
    takes ``scoped``/``append_suffix``/``settings`` from the command line; a native spec names its
    own destinations and must not get one."""
    tree, file = load_yaml(path)
    if tree is None or (isinstance(tree, YScalar) and tree.is_null):
        raise SpecError(file, 1, "the spec is empty")
    if isinstance(tree, YMap) and "version" in tree:
        if destination is not None:
            raise UsageError(
                f"{file}: a native asyncsync spec names its destinations; drop the DEST argument"
            )
        return native.parse_native(tree, file, base_dir=Path(path).parent)
    if destination is None:
        raise UsageError(
            f"{file}: a skopeo-format spec needs a DEST argument (or add 'version: 1' for native)"
        )
    return skopeo.parse_skopeo(
        tree, file, destination=destination, scoped=scoped, append_suffix=append_suffix, settings=settings
    )
