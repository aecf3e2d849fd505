"""Pieces of the frozen spec model both formats build on (asyncsync.specs.model)."""

from __future__ import annotations

import pytest

from asyncsync.errors import SpecError
from asyncsync.specs.filters import TagFilter
from asyncsync.specs.model import (
    CopySettings,
    Destination,
    Origin,
    SourceSelector,
    SyncEntry,
    SyncSpec,
    split_host,
)


@pytest.mark.parametrize(
    ("name", "bare_host", "expected"),
    [
        ("quay.io/org/app", False, ("quay.io", "org/app")),
        ("localhost:5000/app", False, ("localhost:5000", "app")),
        ("org/app", False, ("docker.io", "org/app")),
        ("app", False, ("docker.io", "app")),
        ("localhost", False, ("docker.io", "localhost")),  # docker's rule: a host needs a "/"
        ("localhost", True, ("localhost", "")),
        ("quay.io", True, ("quay.io", "")),
        ("busybox", True, ("docker.io", "busybox")),
    ],
)
def test_split_host(name: str, bare_host: bool, expected: tuple[str, str]) -> None:
    assert split_host(name, bare_host=bare_host) == expected


def _entry(repository: str, line: int) -> SyncEntry:
    return SyncEntry(
        origin=Origin("spec.yaml", line),
        sources=(SourceSelector("quay.io", repository, line),),
        destination=Destination(kind="skopeo", registry="", path="reg.example/mirror"),
        tags=TagFilter(tags=(("1.0", line),)),
        settings=CopySettings(),
    )


def test_checked_spec_refuses_two_sources_for_one_destination() -> None:
    spec = SyncSpec.checked("spec.yaml", "skopeo", (_entry("a/app", 2),))
    assert spec.entries[0].sources[0].pattern == "a/app"
    with pytest.raises(SpecError, match=r"spec\.yaml:5: "):
        SyncSpec.checked("spec.yaml", "skopeo", (_entry("a/app", 2), _entry("b/app", 5)))
