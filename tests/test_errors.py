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
    registry_error_text,
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
    words = code.lower().replace("_", " ")
    expected = f"reading x: {words}: msg (HTTP {status})" if code else f"reading x: msg (HTTP {status})"
    assert str(err) == expected


def test_registry_error_message_without_body_uses_status_text() -> None:
    assert str(registry_error(404, what="w")) == "w: not found (HTTP 404)"


@pytest.mark.parametrize(
    ("status", "code", "message", "text"),
    [
        # skopeo's (containers/image's) words, which scripts grep, then the status.
        (404, "MANIFEST_UNKNOWN", "manifest unknown", "manifest unknown: manifest unknown (HTTP 404)"),
        (401, "UNAUTHORIZED", "authentication required", "unauthorized: authentication required (HTTP 401)"),
        (404, "NAME_UNKNOWN", "", "name unknown: repository name not known to registry (HTTP 404)"),
        (401, "", "", "unauthorized: authentication required (HTTP 401)"),  # a HEAD's 401: no body
        (403, "", "", "denied: requested access to the resource is denied (HTTP 403)"),
        (400, "SOMETHING_NEW", "", "something new (HTTP 400)"),
        (502, "", "", "bad gateway (HTTP 502)"),
    ],
)
def test_registry_error_text_is_skopeos(status: int, code: str, message: str, text: str) -> None:
    assert registry_error_text(status, code, message, what="op") == f"op: {text}"


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
