"""asyncsync.quota: Docker Hub's ratelimit headers and the per-host pull tracker."""

from __future__ import annotations

import logging
import time

import pytest

from asyncsync.errors import QuotaDeferredError
from asyncsync.quota import PullQuotas, parse_ratelimit


def _headers(limit: str, remaining: str) -> dict[str, str]:
    return {"ratelimit-limit": limit, "ratelimit-remaining": remaining}


def test_parse_docker_hub_format() -> None:
    reading = parse_ratelimit(_headers("100;w=21600", "76;w=21600"), now=1000.0)
    assert reading is not None
    assert (reading.limit, reading.remaining, reading.window, reading.observed_at) == (
        100,
        76,
        21600.0,
        1000.0,
    )
    plain = parse_ratelimit(_headers("100", "3"))
    assert plain is not None and plain.window is None and plain.remaining == 3


def test_absent_headers_mean_no_reading() -> None:
    assert parse_ratelimit({}) is None
    assert parse_ratelimit({"ratelimit-limit": "100;w=60"}) is None


@pytest.mark.parametrize(
    ("limit", "remaining"),
    [("lots", "1"), ("100;w=60", "-1;w=60"), ("100;w=soon", "5"), ("100;w=0", "5"), ("", ""), ("1e3", "5")],
)
def test_malformed_headers_are_ignored_with_a_debug_line(
    limit: str, remaining: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="asyncsync.quota"):
        assert parse_ratelimit(_headers(limit, remaining)) is None
    assert "ignoring malformed ratelimit headers" in caplog.text
    quotas = PullQuotas()
    quotas.observe("hub", _headers(limit, remaining))
    quotas.begin_pull("hub")  # no reading: nothing is limited


def test_unknown_host_is_not_limited() -> None:
    quotas = PullQuotas(reserve=5)
    for _ in range(10):
        quotas.begin_pull("registry.local")
        quotas.end_pull("registry.local", {})


def test_pulls_in_flight_count_against_what_is_left() -> None:
    quotas = PullQuotas()
    quotas.observe("hub", _headers("10;w=600", "2;w=600"))
    quotas.begin_pull("hub")
    quotas.begin_pull("hub")
    with pytest.raises(QuotaDeferredError) as caught:
        quotas.begin_pull("hub")
    assert caught.value.host == "hub"
    assert caught.value.reset_at is not None and caught.value.reset_at > time.time() + 500
    assert "pull quota of hub" in str(caught.value) and "2 of 10 pulls left" in str(caught.value)
    assert not caught.value.temporary  # never retried
    assert "hub" in quotas.deferred_hosts()


def test_reserve_is_never_spent() -> None:
    quotas = PullQuotas(reserve=3)
    quotas.observe("hub", _headers("10;w=600", "4;w=600"))
    quotas.begin_pull("hub")
    quotas.end_pull("hub", _headers("10;w=600", "3;w=600"))
    with pytest.raises(QuotaDeferredError):
        quotas.begin_pull("hub")


def test_a_new_window_lifts_a_reserve_stop() -> None:
    quotas = PullQuotas()
    quotas.observe("hub", _headers("10;w=600", "0;w=600"))
    with pytest.raises(QuotaDeferredError):
        quotas.begin_pull("hub")
    quotas.observe("hub", _headers("10;w=600", "10;w=600"))
    quotas.begin_pull("hub")


def test_429_blocks_the_host_until_retry_after_even_if_headers_disagree() -> None:
    quotas = PullQuotas()
    error = quotas.exhausted("hub", 21600.0)
    assert error.reset_at is not None and error.reset_at > time.time() + 21000
    assert "TOOMANYREQUESTS" in str(error)
    quotas.observe("hub", _headers("100;w=21600", "50;w=21600"))
    with pytest.raises(QuotaDeferredError):
        quotas.begin_pull("hub")
    quotas.begin_pull("other")  # other hosts are unaffected
    deferred = quotas.deferred_hosts()
    assert list(deferred) == ["hub"]
    assert (deferred["hub"] or 0) > time.time() + 21000


def test_a_recovered_host_is_no_longer_deferred() -> None:
    quotas = PullQuotas()
    quotas.observe("hub", _headers("10;w=600", "0;w=600"))
    with pytest.raises(QuotaDeferredError):
        quotas.begin_pull("hub")
    assert "hub" in quotas.deferred_hosts()
    quotas.observe("hub", _headers("10;w=600", "10;w=600"))  # a new window
    assert quotas.deferred_hosts() == {}
    assert quotas.hosts["hub"].deferred == 1  # what it deferred is still counted
    # A 429 whose time has passed is not listed either.
    quotas.exhausted("hub", 0.001)
    quotas.hosts["hub"].blocked_until = time.time() - 1
    assert quotas.deferred_hosts() == {}


def test_a_reserve_stop_without_a_known_window_is_lifted_by_a_reading_with_pulls_left() -> None:
    quotas = PullQuotas()
    quotas.observe("hub", _headers("10", "0"))
    with pytest.raises(QuotaDeferredError):
        quotas.begin_pull("hub")
    assert quotas.deferred_hosts() == {"hub": None}
    quotas.observe("hub", _headers("10", "9"))
    assert quotas.deferred_hosts() == {}
    quotas.begin_pull("hub")


def test_429_without_retry_after_still_blocks_for_a_while() -> None:
    quotas = PullQuotas()
    error = quotas.exhausted("hub", None)
    assert error.reset_at is not None and error.reset_at >= time.time() + 59
