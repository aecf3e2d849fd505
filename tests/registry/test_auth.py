"""WWW-Authenticate parsing, credential origin binding, and the bearer token cache (unit level)."""

from __future__ import annotations

import time

import pytest

from asyncsync.registry.auth import (
    BearerToken,
    Challenge,
    TokenCache,
    basic_header,
    may_send_basic_to,
    parse_challenges,
    repository_scope,
    token_expiry,
)
from asyncsync.registry.credentials import Credentials


def test_bearer_challenge_with_quoted_commas_and_scopes() -> None:
    header = (
        'Bearer realm="https://auth.example/token?x=1,y=2",service="registry.example",'
        'scope="repository:a/b:pull,push repository:c:pull",error="invalid_token"'
    )
    (challenge,) = parse_challenges(header)
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.example/token?x=1,y=2"
    assert challenge.service == "registry.example"
    assert challenge.scopes == ("repository:a/b:pull,push", "repository:c:pull")
    assert challenge.error == "invalid_token"


def test_multiple_challenges_in_one_header_and_escapes() -> None:
    header = 'Basic realm="basic \\"realm\\"", Bearer realm="https://a.example/t", service=svc'
    challenges = parse_challenges(header)
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[0].realm == 'basic "realm"'
    assert challenges[1].service == "svc"


def test_scheme_is_case_insensitive_and_empty_header() -> None:
    assert parse_challenges('BASIC realm="r"')[0].scheme == "basic"
    assert parse_challenges("") == []


def test_basic_header_and_scope() -> None:
    assert basic_header(Credentials("u", "p")) == "Basic dTpw"
    assert repository_scope("a/b", "pull", "push") == "repository:a/b:pull,push"


@pytest.mark.parametrize(
    ("target", "registry", "allowed"),
    [
        ("https://reg.example/v2/", "https://reg.example", True),
        ("https://auth.example/token", "https://reg.example", True),
        ("http://auth.example/token", "https://reg.example", False),
        ("http://127.0.0.1:9000/token", "http://127.0.0.1:5000", True),
        ("http://other.example/token", "http://127.0.0.1:5000", True),  # plain-http registry: clear anyway
    ],
)
def test_basic_credentials_bound_to_origin(target: str, registry: str, allowed: bool) -> None:
    assert may_send_basic_to(target, registry) is allowed


def test_token_cache_keys_by_realm_service_and_sorted_scopes() -> None:
    cache = TokenCache()
    challenge = Challenge("bearer", {"realm": "https://a/t", "service": "s"})
    token = BearerToken("tok", expires_at=time.monotonic() + 60, refresh_token="rt")
    cache.put(challenge, ("b", "a", "a"), token)
    assert cache.get(challenge, ("a", "b")) is token
    assert cache.get(challenge, ("a",)) is None
    assert cache.get(Challenge("bearer", {"realm": "https://a/t", "service": "other"}), ("a", "b")) is None
    assert cache.refresh_token() == "rt"
    cache.invalidate(challenge, ("a", "b"))
    assert cache.get(challenge, ("a", "b")) is None


def test_expired_tokens_are_not_served() -> None:
    cache = TokenCache()
    challenge = Challenge("bearer", {"realm": "https://a/t"})
    cache.put(challenge, (), BearerToken("old", expires_at=time.monotonic() - 1))
    assert cache.get(challenge, ()) is None


def test_token_expiry_renews_early() -> None:
    now = 1000.0
    assert token_expiry(300, now) == now + 300 - 30  # 30 s margin
    assert token_expiry(10, now) == pytest.approx(now + 9)  # 10% of a short life
    assert token_expiry(None, now) == now + 60 - 6  # default lifetime 60 s
    assert "tok" not in repr(BearerToken("tok", 0.0, "refresh"))
