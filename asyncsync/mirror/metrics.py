"""Mirror metrics, exposed with ``prometheus_client``, and the ``/metrics`` + ``/healthz`` HTTP server.

:class:`MirrorMetrics` accumulates what the mirror loop reports after each cycle; its
:meth:`~MirrorMetrics.collect` turns that state into ``prometheus_client`` metric families (a
custom collector on a registry of its own, not the process-wide default one), and
``prometheus_client`` writes the exposition (text format, or OpenMetrics when the scraper asks
for it: escaping, number formatting, histogram series). Families (all prefixed
``asyncsync_mirror_``):

=========================================  =========  ==============================================
``cycles_total{result}``                   counter    cycles finished: ``success`` / ``failure``
``images_total{outcome}``                  counter    images ``copied`` / ``skipped`` / ``failed``
``bytes_uploaded_total``                   counter    bytes uploaded to destinations
``bytes_reused_total``                     counter    bytes not uploaded thanks to existing/mounted blobs
``pruned_tags_total``                      counter    destination tags deleted by ``--prune``
``missed_cycles_total``                    counter    scheduled starts skipped (a cycle overran)
``cycle_duration_seconds``                 histogram  wall time of each cycle
``last_cycle_duration_seconds``            gauge      wall time of the last cycle
``last_cycle_timestamp_seconds``           gauge      end of the last cycle (Unix time)
``last_success_timestamp_seconds``         gauge      end of the last successful cycle
``next_cycle_timestamp_seconds``           gauge      when the next cycle is due
``cycle_running``                          gauge      1 while a cycle runs
``entry_images{entry,from,to,outcome}``    gauge      per spec entry, images of the last cycle
``entry_last_success_timestamp_seconds``   gauge      per spec entry, end of its last clean cycle
``pull_quota_remaining{host}``             gauge      pulls left in the window (``ratelimit-remaining``)
``pull_quota_limit{host}``                 gauge      pulls per window (``ratelimit-limit``)
``deferred_images``                        gauge      images the last cycle deferred for a pull quota
``last_progress_timestamp_seconds``        gauge      last time a cycle moved (image, blob, manifest)
=========================================  =========  ==============================================

and ``pull_quota_reset_timestamp_seconds{host}`` (gauge): when the window of a host that now
refuses pulls resets.

(``images_total`` counts ``deferred`` images too.) An entry is clean in a cycle when none of its
images failed and it had no plan error. The quota gauges are live: they read the mirror's
:class:`~asyncsync.quota.PullQuotas`, kept across cycles.

:class:`MetricsServer` serves ``GET /metrics`` and ``GET /healthz`` with aiohttp.web on the
loop's own event loop. ``/healthz`` (:meth:`MirrorMetrics.health`) answers ``status``:

* ``ok`` (200);
* ``quota-deferred`` (200: the mirror is waiting for a pull quota's window, as designed) with
  ``deferred_images`` and ``quota_resets`` (host -> reset time);
* ``stalled`` (503) when a cycle has run without progress for ``stall_after`` seconds
  (``--stall-after``), with ``stalled_seconds``;
* ``stopping`` (503) once it is shutting down.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from aiohttp import web
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from asyncsync.errors import UsageError
from asyncsync.quota import PullQuotas
from asyncsync.sync.report import Outcome

PREFIX = "asyncsync_mirror_"
#: ``--stall-after`` default: a cycle without any progress for this long is reported stalled.
DEFAULT_STALL_AFTER = 900.0
DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0)


@dataclass(frozen=True, slots=True)
class EntryLabel:
    """How a spec entry is named in metrics: its 1-based position, first source and destination."""

    index: int
    source: str
    destination: str

    def values(self) -> list[str]:
        """Label values, in the order ``entry``, ``from``, ``to``."""
        return [str(self.index), self.source, self.destination]


@dataclass(slots=True)
class CycleOutcome:
    """What one cycle did, as the loop tells it to :meth:`MirrorMetrics.record`."""

    ok: bool
    started: float
    finished: float
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    bytes_uploaded: int = 0
    bytes_reused: int = 0
    pruned: int = 0
    #: per entry: image outcomes of this cycle, and whether the entry was clean
    entries: dict[EntryLabel, tuple[Counter[Outcome], bool]] = field(default_factory=dict)


class MirrorMetrics(Collector):
    """Counters and gauges of one mirror process (see the module docstring); a
    ``prometheus_client`` collector, registered on :attr:`registry`."""

    def __init__(self, *, stall_after: float = DEFAULT_STALL_AFTER, quotas: PullQuotas | None = None) -> None:
        self.stall_after = stall_after
        #: the mirror's pull quotas, kept across cycles (read live at each scrape)
        self.quotas = quotas or PullQuotas()
        self.last_progress: float | None = None
        #: images the last cycle deferred, and the reset time of each host that deferred them
        self.deferred_images = 0
        self.quota_resets: dict[str, float | None] = {}
        self.cycles: Counter[str] = Counter()
        self.images: Counter[Outcome] = Counter()
        self.bytes_uploaded = 0
        self.bytes_reused = 0
        self.pruned = 0
        self.missed = 0
        self.bucket_counts = [0] * len(DURATION_BUCKETS)
        self.duration_sum = 0.0
        self.duration_count = 0
        self.last_duration: float | None = None
        self.last_cycle: float | None = None
        self.last_success: float | None = None
        self.next_cycle: float | None = None
        self.running = False
        self.stopping = False
        self.consecutive_failures = 0
        self.entry_images: dict[EntryLabel, Counter[Outcome]] = {}
        self.entry_success: dict[EntryLabel, float] = {}
        #: the registry ``/metrics`` exposes (this collector only)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def touch(self) -> None:
        """The running cycle made progress (see :mod:`asyncsync.mirror.progress`)."""
        self.last_progress = time.time()

    def record_deferred(self, images: int, resets: dict[str, float | None]) -> None:
        """What the last cycle deferred for pull quotas (0 and ``{}``: nothing)."""
        self.deferred_images = images
        self.quota_resets = dict(resets)

    def record(self, cycle: CycleOutcome) -> None:
        duration = max(0.0, cycle.finished - cycle.started)
        self.cycles["success" if cycle.ok else "failure"] += 1
        self.consecutive_failures = 0 if cycle.ok else self.consecutive_failures + 1
        self.images.update(cycle.outcomes)
        self.bytes_uploaded += cycle.bytes_uploaded
        self.bytes_reused += cycle.bytes_reused
        self.pruned += cycle.pruned
        for index, bound in enumerate(DURATION_BUCKETS):
            if duration <= bound:
                self.bucket_counts[index] += 1
        self.duration_sum += duration
        self.duration_count += 1
        self.last_duration = duration
        self.last_cycle = cycle.finished
        if cycle.ok:
            self.last_success = cycle.finished
        # Entries of the current spec only: a reloaded spec may have dropped some.
        self.entry_images = {label: counts for label, (counts, _) in cycle.entries.items()}
        for label, (_, clean) in cycle.entries.items():
            if clean:
                self.entry_success[label] = cycle.finished
        self.entry_success = {k: v for k, v in self.entry_success.items() if k in cycle.entries}

    def collect(self) -> Iterator[Metric]:
        """The families of the module docstring, from the state now (``prometheus_client`` calls
        this on every scrape)."""
        cycles = CounterMetricFamily(
            f"{PREFIX}cycles", "Mirror cycles finished, by result.", labels=["result"]
        )
        for result in ("success", "failure"):
            cycles.add_metric([result], self.cycles[result])
        images = CounterMetricFamily(f"{PREFIX}images", "Images handled, by outcome.", labels=["outcome"])
        for outcome in Outcome:
            images.add_metric([outcome.value], self.images[outcome])
        yield cycles
        yield images
        for name, help_text, total in (
            ("bytes_uploaded", "Bytes uploaded to destinations.", self.bytes_uploaded),
            (
                "bytes_reused",
                "Bytes not uploaded because the blob existed or was mounted.",
                self.bytes_reused,
            ),
            ("pruned_tags", "Destination tags deleted by --prune.", self.pruned),
            ("missed_cycles", "Scheduled cycle starts skipped because a cycle overran.", self.missed),
        ):
            yield CounterMetricFamily(f"{PREFIX}{name}", help_text, value=total)
        cumulative = [
            (str(bound), count)  # 5.0, as prometheus_client's own histograms write `le`
            for bound, count in zip(DURATION_BUCKETS, self.bucket_counts, strict=True)
        ]
        yield HistogramMetricFamily(
            f"{PREFIX}cycle_duration_seconds",
            "Wall time of mirror cycles.",
            buckets=[*cumulative, ("+Inf", self.duration_count)],
            sum_value=round(self.duration_sum, 6),
        )
        for name, help_text, value in (
            ("last_cycle_duration_seconds", "Wall time of the last cycle.", self.last_duration),
            ("last_cycle_timestamp_seconds", "End of the last cycle (Unix time).", self.last_cycle),
            ("last_success_timestamp_seconds", "End of the last successful cycle.", self.last_success),
            ("next_cycle_timestamp_seconds", "When the next cycle is due.", self.next_cycle),
        ):
            if value is not None:  # absent until known, rather than a misleading 0
                yield GaugeMetricFamily(f"{PREFIX}{name}", help_text, value=round(value, 3))
        yield GaugeMetricFamily(f"{PREFIX}cycle_running", "1 while a cycle runs.", value=int(self.running))
        entry_labels = ["entry", "from", "to"]
        entry_images = GaugeMetricFamily(
            f"{PREFIX}entry_images",
            "Images of each spec entry in the last cycle, by outcome.",
            labels=[*entry_labels, "outcome"],
        )
        for label, counts in sorted(self.entry_images.items(), key=lambda item: item[0].index):
            for outcome in Outcome:
                entry_images.add_metric([*label.values(), outcome.value], counts[outcome])
        entry_success = GaugeMetricFamily(
            f"{PREFIX}entry_last_success_timestamp_seconds",
            "End of the last cycle in which the spec entry had no failure.",
            labels=entry_labels,
        )
        for label, when in sorted(self.entry_success.items(), key=lambda item: item[0].index):
            entry_success.add_metric(label.values(), round(when, 3))
        yield entry_images
        yield entry_success
        yield from self._quota_families()

    def _quota_families(self) -> Iterator[Metric]:
        labels = ["host"]
        remaining = GaugeMetricFamily(
            f"{PREFIX}pull_quota_remaining", "Pulls left in the host's quota window.", labels=labels
        )
        limit = GaugeMetricFamily(f"{PREFIX}pull_quota_limit", "Pulls per quota window.", labels=labels)
        reset = GaugeMetricFamily(
            f"{PREFIX}pull_quota_reset_timestamp_seconds",
            "When the window of a host that refuses pulls resets (Unix time).",
            labels=labels,
        )
        deferred = self.quotas.deferred_hosts()
        for host, quota in sorted(self.quotas.hosts.items()):
            if quota.reading is not None:
                remaining.add_metric([host], quota.reading.remaining)
                limit.add_metric([host], quota.reading.limit)
            if deferred.get(host) is not None:
                reset.add_metric([host], round(deferred[host] or 0.0, 3))
        yield remaining
        yield limit
        yield reset
        yield GaugeMetricFamily(
            f"{PREFIX}deferred_images",
            "Images the last cycle deferred because a pull quota was spent.",
            value=self.deferred_images,
        )
        if self.last_progress is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}last_progress_timestamp_seconds",
                "The last time a cycle made progress (Unix time).",
                value=round(self.last_progress, 3),
            )

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The body and content type of a ``/metrics`` answer for an ``Accept`` header."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    def health(self) -> tuple[int, dict[str, object]]:
        """``/healthz``: its HTTP status and body (the states in the module docstring)."""
        now = time.time()
        body: dict[str, object] = {
            "status": "ok",
            "cycles": sum(self.cycles.values()),
            "running": self.running,
            "consecutive_failures": self.consecutive_failures,
            "last_success": self.last_success,
            "last_progress": self.last_progress,
            "time": round(now, 3),
        }
        if self.deferred_images:
            body["deferred_images"] = self.deferred_images
            body["quota_resets"] = {host: _utc(at) for host, at in sorted(self.quota_resets.items())}
        idle = now - self.last_progress if self.last_progress is not None else 0.0
        if self.stopping:
            body["status"] = "stopping"
            return 503, body
        if self.running and idle > self.stall_after:
            body["status"] = "stalled"
            body["stalled_seconds"] = round(idle, 1)
            return 503, body
        if self.deferred_images:
            body["status"] = "quota-deferred"
        return 200, body


def _utc(at: float | None) -> str | None:
    return None if at is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


class MetricsServer:
    """``/metrics`` and ``/healthz`` on ``host:port`` (port 0 = any free port; see :attr:`port`)."""

    def __init__(self, metrics: MirrorMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.requested_port = port
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> MetricsServer:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._health)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.requested_port)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            where = f"{self.host}:{self.requested_port}"
            raise UsageError(f"--metrics-port: cannot listen on {where}: {exc.strerror or exc}") from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.metrics.exposition(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _health(self, request: web.Request) -> web.Response:
        status, body = self.metrics.health()
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
