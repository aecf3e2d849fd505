"""Pull quotas per registry host: read ``ratelimit-*`` headers, never spend the last pulls blindly.

Docker Hub counts a GET of a manifest as one pull and tells what is left in every manifest
answer (HEADs included, and HEADs cost nothing)::

    ratelimit-limit: 100;w=21600
    ratelimit-remaining: 76;w=21600

:class:`PullQuotas` is the run's one tracker (held by the
:class:`~asyncsync.http.session.HttpSession`, used by
:meth:`~asyncsync.registry.client.RegistryClient.open`, the one place requests leave):

* :meth:`PullQuotas.observe` reads the headers of every manifest answer; a malformed value is
  ignored with a debug line;
* :meth:`PullQuotas.begin_pull` / :meth:`PullQuotas.end_pull` bracket each manifest GET. A GET
  is refused (:class:`~asyncsync.errors.QuotaDeferredError`, never retried) when the pulls
  left, minus those already in flight, would not stay above the reserve: the work already
  started finishes, nothing new starts;
* :meth:`PullQuotas.exhausted` records a 429 ``TOOMANYREQUESTS``: from then on the host gets no
  manifest GET at all until the window resets (no retry storm).

A host that never sent ``ratelimit-*`` headers is not limited. The reset time is the
server's ``Retry-After`` when a 429 gave one, else the time of the reading plus its window
(``w=``): Docker Hub's window is rolling, so this is the latest the quota can still be short.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from asyncsync.errors import QuotaDeferredError

log = logging.getLogger("asyncsync.quota")


@dataclass(frozen=True, slots=True)
class QuotaReading:
    """One answer's ``ratelimit-*`` values; ``window`` in seconds (``None`` when not given)."""

    limit: int
    remaining: int
    window: float | None
    observed_at: float


def _parse_value(value: str) -> tuple[int, float | None]:
    """``"100;w=21600"`` -> ``(100, 21600.0)``; raises ValueError for anything else."""
    count_text, *params = (part.strip() for part in value.split(";"))
    count = int(count_text)
    if count < 0:
        raise ValueError("negative count")
    window: float | None = None
    for param in params:
        key, _, raw = param.partition("=")
        if key.strip().lower() == "w":
            window = float(int(raw.strip()))
            if window <= 0:
                raise ValueError("window must be positive")
    return count, window


def parse_ratelimit(headers: Mapping[str, str], *, now: float | None = None) -> QuotaReading | None:
    """The reading in ``headers``, or ``None`` when absent or malformed (logged at debug level)."""
    limit_text = headers.get("ratelimit-limit")
    remaining_text = headers.get("ratelimit-remaining")
    if limit_text is None or remaining_text is None:
        return None
    try:
        limit, window = _parse_value(limit_text)
        remaining, remaining_window = _parse_value(remaining_text)
    except ValueError:
        log.debug(
            "ignoring malformed ratelimit headers: limit=%r remaining=%r",
            limit_text[:80],
            remaining_text[:80],
        )
        return None
    return QuotaReading(limit, remaining, window or remaining_window, time.time() if now is None else now)


@dataclass(slots=True)
class HostQuota:
    """What is known of one host's quota (a snapshot is what health and metrics show)."""

    reading: QuotaReading | None = None
    in_flight: int = 0
    #: Wall-clock time until which the host is exhausted (a 429 or the reserve was reached).
    blocked_until: float | None = None
    blocked_reason: str = ""
    deferred: int = 0

    def reset_at(self) -> float | None:
        if self.blocked_until is not None:
            return self.blocked_until
        reading = self.reading
        if reading is None or reading.window is None:
            return None
        return reading.observed_at + reading.window


@dataclass(slots=True)
class PullQuotas:
    """The run's pull quotas, per host. ``reserve`` pulls are never spent (``--pull-quota-reserve``)."""

    reserve: int = 0
    hosts: dict[str, HostQuota] = field(default_factory=dict)

    def _host(self, host: str) -> HostQuota:
        quota = self.hosts.get(host)
        if quota is None:
            quota = self.hosts[host] = HostQuota()
        return quota

    def observe(self, host: str, headers: Mapping[str, str]) -> None:
        """Record the ``ratelimit-*`` reading of a manifest answer (GET or HEAD), if any."""
        reading = parse_ratelimit(headers)
        if reading is None:
            return
        quota = self._host(host)
        quota.reading = reading
        # A 429's block holds until its time; a reserve stop ends with any reading that leaves
        # pulls above the reserve (a new window), whether or not the window's end was known.
        lifted = bool(quota.blocked_reason) and (
            quota.blocked_until is None
            or time.time() >= quota.blocked_until
            or not quota.blocked_reason.startswith("429")
        )
        if reading.remaining > self.reserve and lifted:
            quota.blocked_until = None  # a new window: the registry says pulls are left again
            quota.blocked_reason = ""

    def begin_pull(self, host: str) -> None:
        """Claim one pull for a manifest GET; raises :class:`QuotaDeferredError` when refused."""
        quota = self.hosts.get(host)
        if quota is None:
            return  # a host that never sent ratelimit headers has no known quota
        now = time.time()
        if quota.blocked_until is not None and now < quota.blocked_until:
            quota.deferred += 1
            raise QuotaDeferredError(host, quota.blocked_reason, quota.blocked_until)
        reading = quota.reading
        if reading is not None and reading.remaining - quota.in_flight <= self.reserve:
            expires = quota.reset_at()
            if expires is None or now < expires:
                reason = (
                    f"{reading.remaining} of {reading.limit} pulls left, "
                    f"{quota.in_flight} in flight, reserve {self.reserve}"
                )
                quota.blocked_until, quota.blocked_reason = expires, reason
                quota.deferred += 1
                raise QuotaDeferredError(host, reason, expires)
        quota.in_flight += 1

    def end_pull(self, host: str, headers: Mapping[str, str] | None) -> None:
        """The GET claimed by :meth:`begin_pull` has its answer (``headers``; ``None``: it failed)."""
        quota = self.hosts.get(host)
        if quota is None:
            if headers is not None:
                self.observe(host, headers)
            return
        quota.in_flight = max(0, quota.in_flight - 1)
        if headers is not None:
            self.observe(host, headers)

    def exhausted(self, host: str, retry_after: float | None) -> QuotaDeferredError:
        """A 429 ``TOOMANYREQUESTS`` from ``host``: no more manifest GETs until the reset."""
        quota = self._host(host)
        now = time.time()
        until = now + retry_after if retry_after is not None else quota.reset_at()
        if until is None or until <= now:
            until = now + 60.0  # the registry gave no time: assume at least a minute
        quota.blocked_until = until
        quota.blocked_reason = "429 TOOMANYREQUESTS: pull quota exhausted"
        quota.deferred += 1
        return QuotaDeferredError(host, quota.blocked_reason, until)

    def deferred_hosts(self) -> dict[str, float | None]:
        """Hosts refusing pulls now, with their reset times (``None``: unknown). A host whose
        block ended (its time passed, or a new window's reading lifted it) is not listed, however
        many images it deferred before (``HostQuota.deferred`` counts those)."""
        now = time.time()
        return {
            host: quota.blocked_until
            for host, quota in self.hosts.items()
            if quota.blocked_reason and (quota.blocked_until is None or quota.blocked_until > now)
        }
