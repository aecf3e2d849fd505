"""Mirror metrics in the Prometheus text format, and the ``/metrics`` + ``/healthz`` HTTP server.

:class:`MirrorMetrics` accumulates what the mirror loop reports after each cycle and renders
the text exposition format 0.0.4 (``# HELP``/``# TYPE`` lines, escaped label values,
cumulative histogram buckets). Families (all prefixed ``asyncsync_mirror_``):

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
=========================================  =========  ==============================================

An entry is clean in a cycle when none of its images failed and it had no plan error.
:class:`MetricsServer` serves ``GET /metrics`` and ``GET /healthz`` (200 ``ok`` while the loop
runs, 503 once it is shutting down) with aiohttp.web on the loop's own event loop.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from asyncsync.errors import UsageError
from asyncsync.sync.report import Outcome

PREFIX = "asyncsync_mirror_"
DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}"


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


@dataclass(frozen=True, slots=True)
class EntryLabel:
    """How a spec entry is named in metrics: its 1-based position, first source and destination."""

    index: int
    source: str
    destination: str

    def labels(self) -> dict[str, str]:
        return {"entry": str(self.index), "from": self.source, "to": self.destination}


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


class MirrorMetrics:
    """Counters and gauges of one mirror process (see the module docstring)."""

    def __init__(self) -> None:
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

    def render(self) -> str:
        """The whole exposition, one family after another."""
        out: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
            out.append(f"# HELP {PREFIX}{name} {help_text}")
            out.append(f"# TYPE {PREFIX}{name} {kind}")
            out.extend(f"{PREFIX}{name}{_labels(labels)} {_number(value)}" for labels, value in samples)

        family(
            "cycles_total",
            "counter",
            "Mirror cycles finished, by result.",
            [({"result": r}, self.cycles[r]) for r in ("success", "failure")],
        )
        family(
            "images_total",
            "counter",
            "Images handled, by outcome.",
            [({"outcome": o.value}, self.images[o]) for o in Outcome],
        )
        family(
            "bytes_uploaded_total", "counter", "Bytes uploaded to destinations.", [({}, self.bytes_uploaded)]
        )
        family(
            "bytes_reused_total",
            "counter",
            "Bytes not uploaded because the blob existed or was mounted.",
            [({}, self.bytes_reused)],
        )
        family("pruned_tags_total", "counter", "Destination tags deleted by --prune.", [({}, self.pruned)])
        family(
            "missed_cycles_total",
            "counter",
            "Scheduled cycle starts skipped because a cycle overran.",
            [({}, self.missed)],
        )
        out.append(f"# HELP {PREFIX}cycle_duration_seconds Wall time of mirror cycles.")
        out.append(f"# TYPE {PREFIX}cycle_duration_seconds histogram")
        for bound, count in zip(DURATION_BUCKETS, self.bucket_counts, strict=True):
            out.append(f'{PREFIX}cycle_duration_seconds_bucket{{le="{_number(bound)}"}} {count}')
        out.append(f'{PREFIX}cycle_duration_seconds_bucket{{le="+Inf"}} {self.duration_count}')
        out.append(f"{PREFIX}cycle_duration_seconds_sum {_number(round(self.duration_sum, 6))}")
        out.append(f"{PREFIX}cycle_duration_seconds_count {self.duration_count}")
        for name, help_text, value in (
            ("last_cycle_duration_seconds", "Wall time of the last cycle.", self.last_duration),
            ("last_cycle_timestamp_seconds", "End of the last cycle (Unix time).", self.last_cycle),
            ("last_success_timestamp_seconds", "End of the last successful cycle.", self.last_success),
            ("next_cycle_timestamp_seconds", "When the next cycle is due.", self.next_cycle),
        ):
            if value is not None:
                family(name, "gauge", help_text, [({}, round(value, 3))])
        family("cycle_running", "gauge", "1 while a cycle runs.", [({}, 1 if self.running else 0)])
        family(
            "entry_images",
            "gauge",
            "Images of each spec entry in the last cycle, by outcome.",
            [
                ({**label.labels(), "outcome": o.value}, counts[o])
                for label, counts in sorted(self.entry_images.items(), key=lambda item: item[0].index)
                for o in Outcome
            ],
        )
        family(
            "entry_last_success_timestamp_seconds",
            "gauge",
            "End of the last cycle in which the spec entry had no failure.",
            [
                (label.labels(), round(when, 3))
                for label, when in sorted(self.entry_success.items(), key=lambda item: item[0].index)
            ],
        )
        return "\n".join(out) + "\n"

    def health(self) -> tuple[int, dict[str, object]]:
        """``/healthz``: 200 while the loop serves, 503 when it is shutting down."""
        status = 503 if self.stopping else 200
        return status, {
            "status": "stopping" if self.stopping else "ok",
            "cycles": sum(self.cycles.values()),
            "running": self.running,
            "consecutive_failures": self.consecutive_failures,
            "last_success": self.last_success,
            "time": round(time.time(), 3),
        }


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
        return web.Response(body=self.metrics.render().encode(), headers={"Content-Type": CONTENT_TYPE})

    async def _health(self, request: web.Request) -> web.Response:
        status, body = self.metrics.health()
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
