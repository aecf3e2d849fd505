"""policy.json parsing: every requirement and identity type, and file:line errors for bad input."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from asyncsync.errors import PolicyError
from asyncsync.reference import parse_reference
from asyncsync.signature.identity import (
    ExactReference,
    ExactRepository,
    MatchExact,
    MatchRepoDigestOrExact,
    MatchRepository,
    RemapIdentity,
)
from asyncsync.signature.policy import (
    SYSTEM_POLICY_PATH,
    InsecureAcceptAnything,
    Reject,
    SignedBaseLayer,
    SignedBy,
    SigstoreSigned,
    insecure_policy,
    load_policy,
    parse_policy,
    policy_path,
)

FULL = """{
    "default": [{"type": "reject"}],
    "transports": {
        "docker": {
            "example.com/a": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}],
            "example.com/b": [{"type": "signedBy", "keyType": "GPGKeys", "keyPaths": ["/1", "/2"],
                               "signedIdentity": {"type": "matchExact"}}],
            "example.com/c": [{"type": "signedBy", "keyType": "GPGKeys", "keyData": "a2V5",
                               "signedIdentity": {"type": "matchRepository"}}],
            "example.com/d": [{"type": "sigstoreSigned", "keyPath": "/c.pub",
                               "signedIdentity": {"type": "exactReference", "dockerReference": "busybox:1"}}],
            "example.com/e": [{"type": "sigstoreSigned", "keyData": "cHVi",
                               "signedIdentity": {"type": "exactRepository",
                                                  "dockerRepository": "quay.io/x/y"}}],
            "example.com/f": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg",
                               "signedIdentity": {"type": "remapIdentity", "prefix": "example.com",
                                                  "signedPrefix": "quay.io/mirror"}}],
            "example.com/g": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg",
                               "signedIdentity": {"type": "matchRepoDigestOrExact"}}],
            "example.com/h": [{"type": "signedBaseLayer", "baseLayerIdentity": {"type": "matchRepository"}}],
            "": [{"type": "insecureAcceptAnything"}]
        },
        "dir": {"/srv/images": [{"type": "insecureAcceptAnything"}]},
        "docker-archive": {"": [{"type": "reject"}]}
    }
}"""


def test_every_requirement_and_identity_type() -> None:
    policy = parse_policy(FULL, "/p.json")
    assert policy.default == (Reject(line=2),)
    docker = policy.transports["docker"]
    a = docker["example.com/a"][0]
    assert (
        isinstance(a, SignedBy) and a.key_path == "/k.gpg" and a.signed_identity == MatchRepoDigestOrExact()
    )
    b = docker["example.com/b"][0]
    assert isinstance(b, SignedBy) and b.key_paths == ("/1", "/2") and b.signed_identity == MatchExact()
    c = docker["example.com/c"][0]
    assert isinstance(c, SignedBy) and c.key_data == b"key" and c.signed_identity == MatchRepository()
    d = docker["example.com/d"][0]
    assert isinstance(d, SigstoreSigned) and d.key_path == "/c.pub"
    assert d.signed_identity == ExactReference(parse_reference("busybox:1", default_tag=False))
    e = docker["example.com/e"][0]
    assert isinstance(e, SigstoreSigned) and e.key_data == b"pub"
    assert e.signed_identity == ExactRepository(parse_reference("quay.io/x/y", default_tag=False))
    f = docker["example.com/f"][0]
    assert isinstance(f, SignedBy) and f.signed_identity == RemapIdentity("example.com", "quay.io/mirror")
    assert isinstance(docker["example.com/h"][0], SignedBaseLayer)
    assert docker[""] == (InsecureAcceptAnything(line=21),)
    assert policy.transports["dir"]["/srv/images"][0] == InsecureAcceptAnything(line=23)
    with pytest.raises(TypeError):
        policy.transports["docker"]["new"] = ()  # type: ignore[index]


BAD = [
    ('{"default": [{"type": "reject"}]', 1, "Expecting ',' delimiter"),
    ('{\n "default": [\n  {"type": "signedby"}\n ]\n}', 3, 'Unknown policy requirement type "signedby"'),
    ('{\n "default": [{"type": "reject",\n   "keyPath": "/x"}]}', 3, 'Unknown key "keyPath" in reject'),
    ('{"default": []}', 1, "List of verification policy requirements must not be empty"),
    ('{"transports": {}}', 1, "Default policy is missing"),
    ('{"default": [{"type": "reject"}],\n "default": []}', 2, 'Duplicate key "default"'),
    (
        '{"default": [{"type": "reject"}], "transports": {"dir": {\n"relative": [{"type": "reject"}]}}}',
        2,
        "Invalid scope relative: must be an absolute path",
    ),
    (
        '{"default": [{"type": "reject"}], "transports": {"dir": {"/a/../b": [{"type": "reject"}]}}}',
        1,
        "non-canonical",
    ),
    (
        '{"default": [{"type": "reject"}], "transports": {"docker-archive": {"/x": [{"type": "reject"}]}}}',
        1,
        'does not support any scopes except the default ""',
    ),
    ('{"default": [{"type": "signedBy", "keyType": "GPGKeys"}]}', 1, "none of them present"),
    (
        '{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/a", "keyData": "YQ=="}]}',
        1,
        "more than one present",
    ),
    (
        '{"default": [{"type": "signedBy", "keyType": "PGP", "keyPath": "/a"}]}',
        1,
        'Unrecognized keyType value "PGP"',
    ),
    (
        '{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyData": "not base64!"}]}',
        1,
        "not valid base64",
    ),
    (
        '{"default": [{"type": "sigstoreSigned", "keyPath": "/a", "keyData": "YQ=="}]}',
        1,
        "cannot be used simultaneously",
    ),
    ('{"default": [{"type": "sigstoreSigned"}]}', 1, "At least one of keyPath and keyData"),
    (
        '{"default": [{"type": "sigstoreSigned",\n "fulcio": {}}]}',
        2,
        "Fulcio certificates and Rekor) is not supported",
    ),
    (
        '{"default": [{"type": "sigstoreSigned", "keyPath": "/a",\n "rekorPublicKeyPath": "/r"}]}',
        2,
        "not supported",
    ),
    (
        '{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/a",\n'
        ' "signedIdentity": {"type": "x"}}]}',
        2,
        'Unknown policy reference match type "x"',
    ),
    (
        '{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/a", "signedIdentity":'
        ' {"type": "exactReference", "dockerReference": "busybox"}}]}',
        1,
        "contains neither a tag nor digest",
    ),
    (
        '{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/a", "signedIdentity":'
        ' {"type": "exactRepository", "dockerRepository": "Not/Valid"}}]}',
        1,
        "Invalid format of dockerRepository",
    ),
    (
        '{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/a", "signedIdentity":'
        ' {"type": "remapIdentity", "prefix": "example.com/Bad", "signedPrefix": "quay.io"}}]}',
        1,
        'prefix "example.com/Bad" is not valid',
    ),
    (
        '{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/a", "signedIdentity":'
        ' {"type": "matchExact", "extra": 1}}]}',
        1,
        'Unknown key "extra" in matchExact',
    ),
    ('{"default": {"type": "reject"}}', 1, "must be a list of requirements"),
    ('{"default": ["reject"]}', 1, "must be a JSON object"),
    ("[]", 1, "the policy must be a JSON object"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_bad_policy_is_one_line_naming_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "/etc/p.json")
    text_of_error = str(caught.value)
    assert text_of_error.startswith(f"/etc/p.json:{line}: invalid policy: "), text_of_error
    assert message in text_of_error
    assert "\n" not in text_of_error


def test_load_policy_files(tmp_path: Path) -> None:
    missing = tmp_path / "none.json"
    with pytest.raises(PolicyError, match=f"open {missing}: no such file or directory"):
        load_policy(str(missing))
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(str(binary))
    good = tmp_path / "good.json"
    good.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    assert load_policy(str(good)).path == str(good)
    key = base64.b64encode(b"k").decode()
    good.write_text(f'{{"default": [{{"type": "signedBy", "keyType": "GPGKeys", "keyData": "{key}"}}]}}')
    assert load_policy(str(good)).default[0] == SignedBy(
        "GPGKeys", MatchRepoDigestOrExact(), key_data=b"k", line=1
    )


def test_policy_path_order(tmp_path: Path) -> None:
    assert policy_path("/given.json", home=str(tmp_path)) == "/given.json"
    assert policy_path(None, home=str(tmp_path)) == SYSTEM_POLICY_PATH
    user = tmp_path / ".config" / "containers" / "policy.json"
    user.parent.mkdir(parents=True)
    user.write_text("{}")
    assert policy_path(None, home=str(tmp_path)) == str(user)
    assert insecure_policy().default == (InsecureAcceptAnything(),)
