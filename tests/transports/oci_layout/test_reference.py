"""``oci:PATH[:NAME]`` parsing, as containers/image splits it."""

from __future__ import annotations

import pytest

from asyncsync.errors import InvalidReferenceError
from asyncsync.transports import parse_image_name
from asyncsync.transports.oci_layout.reference import OCIReference


def test_path_and_name_split_on_the_first_colon() -> None:
    ref = parse_image_name("oci:/tmp/layout:v1.0")
    assert ref == OCIReference("/tmp/layout", "v1.0")
    assert ref.transport_name == "oci"
    assert ref.within_transport() == "/tmp/layout:v1.0"
    assert str(ref) == "oci:/tmp/layout:v1.0"
    assert ref.docker_reference() is None
    # A name may itself contain colons and slashes (OCI ref-name grammar).
    assert parse_image_name("oci:rel/dir:example.com/app:1.2") == OCIReference(
        "rel/dir", "example.com/app:1.2"
    )


def test_name_is_optional() -> None:
    assert parse_image_name("oci:/tmp/layout") == OCIReference("/tmp/layout", None)
    assert parse_image_name("oci:/tmp/layout:") == OCIReference("/tmp/layout", None)
    assert str(parse_image_name("oci:x")) == "oci:x"


@pytest.mark.parametrize("text", ["oci:", "oci::tag", "oci:/p:bad name", "oci:/p:-leading", "oci:/p:a//b"])
def test_bad_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        parse_image_name(text)
