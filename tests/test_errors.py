"""The error tree: classification, retry predicate and URL redaction."""

from __future__ import annotations

import pytest

from asyncsync.errors import (
    AuthenticationError,
    ImmutableTagError,
    NotFoundError,
    PermissionDeniedError,
    RegistryError,
    redact_url,
    registry_error,
)


@pytest.mark.parametrize(
    ("status", "code", "cls", "temporary"),
    [
        (401, "UNAUTHORIZED", AuthenticationError, False),
        (403, "DENIED", PermissionDeniedError, False),
        (404, "MANIFEST_UNKNOWN", NotFoundError, False),
        (400, "BLOB_UNKNOWN", NotFoundError, False),
        (412, "", ImmutableTagError, False),
        (429, "TOOMANYREQUESTS", RegistryError, True),
        (503, "", RegistryError, True),
        (500, "", RegistryError, True),
        (408, "", RegistryError, True),
        (400, "UNAVAILABLE", RegistryError, True),
        (400, "MANIFEST_INVALID", RegistryError, False),
    ],
)
def test_registry_error_class_and_temporary(status: int, code: str, cls: type, temporary: bool) -> None:
    err = registry_error(status, code, "msg", what="reading x")
    assert type(err) is cls
    assert err.temporary is temporary
    assert str(err).startswith("reading x: msg (HTTP ")


def test_registry_error_message_without_body_uses_status_text() -> None:
    assert str(registry_error(404, what="w")) == "w: not found (HTTP 404)"


@pytest.mark.parametrize(
    "url",
    [
        "https://reg.example/v2/a/blobs/uploads/abc?_state=SECRETSTATE&digest=sha256:00",
        "https://cdn.example/x?X-Amz-Signature=SECRETSIG&X-Amz-Credential=SECRETCRED&ok=1",
        "https://user:SECRETPASS@reg.example/v2/",
        "https://cdn.example/x?sig=SECRETSIG&se=2020",
    ],
)
def test_redact_url_hides_secrets(url: str) -> None:
    redacted = redact_url(url)
    assert "SECRET" not in redacted
    assert redacted.startswith("https://")


def test_redact_url_keeps_harmless_query() -> None:
    assert redact_url("https://r/v2/x/tags/list?n=2&last=b") == "https://r/v2/x/tags/list?n=2&last=b"
