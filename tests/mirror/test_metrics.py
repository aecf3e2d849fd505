"""Mirror metrics through prometheus_client: families, escaping, histogram, health, the HTTP server.

Every exposition is scraped over HTTP from a real :class:`MetricsServer` and read back with
prometheus_client's own parsers (text format and OpenMetrics), not with string matching.
"""

from __future__ import annotations

from collections import Counter

import aiohttp
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from asyncsync.errors import UsageError
from asyncsync.mirror.metrics import CycleOutcome, EntryLabel, MetricsServer, MirrorMetrics
from asyncsync.sync.report import Outcome

TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


def _key(name: str, labels: dict[str, str]) -> str:
    """``name{a="x",b="y"}`` in the exposition's escaping, label names sorted (as
    prometheus_client writes them)."""
    if not labels:
        return name
    pairs = sorted(labels.items())
    escaped = (v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') for _, v in pairs)
    return name + "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(pairs, escaped, strict=True)) + "}"


def parse(text: str) -> dict[str, float]:
    """Samples keyed by ``name{labels}``, read with prometheus_client's text-format parser (which
    raises on anything malformed); every family has a type and help."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        assert family.type in ("counter", "gauge", "histogram") and family.documentation
        for sample in family.samples:
            samples[_key(sample.name, sample.labels)] = sample.value
    return samples


async def scrape(port: int, accept: str | None = None) -> tuple[str, str]:
    """``GET /metrics``: (content type, body)."""
    headers = {"Accept": accept} if accept else {}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as response,
    ):
        assert response.status == 200
        return response.headers["Content-Type"], await response.text()


ENTRY = EntryLabel(1, 'quay.io/org/"odd"\\name', "mirror.example/\nx/")


@pytest.mark.anyio
async def test_exposition_after_two_cycles_is_valid_and_cumulative() -> None:
    metrics = MirrorMetrics()
    metrics.record(
        CycleOutcome(
            ok=True,
            started=100.0,
            finished=103.5,
            outcomes=Counter({Outcome.COPIED: 3, Outcome.SKIPPED: 1}),
            bytes_uploaded=2048,
            bytes_reused=512,
            entries={ENTRY: (Counter({Outcome.COPIED: 3, Outcome.SKIPPED: 1}), True)},
        )
    )
    metrics.record(
        CycleOutcome(
            ok=False,
            started=200.0,
            finished=220.0,
            outcomes=Counter({Outcome.FAILED: 1, Outcome.SKIPPED: 4}),
            pruned=2,
            entries={ENTRY: (Counter({Outcome.FAILED: 1, Outcome.SKIPPED: 4}), False)},
        )
    )
    metrics.next_cycle = 400.0

    async with MetricsServer(metrics, "127.0.0.1", 0) as server:
        content_type, body = await scrape(server.port)
    assert content_type == TEXT_FORMAT
    samples = parse(body)

    p = "asyncsync_mirror_"
    assert samples[f'{p}cycles_total{{result="success"}}'] == 1
    assert samples[f'{p}cycles_total{{result="failure"}}'] == 1
    assert samples[f'{p}images_total{{outcome="copied"}}'] == 3
    assert samples[f'{p}images_total{{outcome="skipped"}}'] == 5
    assert samples[f'{p}images_total{{outcome="failed"}}'] == 1
    assert samples[f"{p}bytes_uploaded_total"] == 2048
    assert samples[f"{p}pruned_tags_total"] == 2
    assert samples[f'{p}cycle_duration_seconds_bucket{{le="5.0"}}'] == 1
    assert samples[f'{p}cycle_duration_seconds_bucket{{le="60.0"}}'] == 2
    assert samples[f'{p}cycle_duration_seconds_bucket{{le="+Inf"}}'] == 2
    assert samples[f"{p}cycle_duration_seconds_count"] == 2
    assert samples[f"{p}cycle_duration_seconds_sum"] == 23.5
    assert samples[f"{p}last_success_timestamp_seconds"] == 103.5
    assert samples[f"{p}last_cycle_timestamp_seconds"] == 220
    assert samples[f"{p}next_cycle_timestamp_seconds"] == 400
    source, target = 'from="quay.io/org/\\"odd\\"\\\\name"', 'to="mirror.example/\\nx/"'
    assert samples[f'{p}entry_images{{entry="1",{source},outcome="failed",{target}}}'] == 1
    labels = f'entry="1",{source},{target}'
    # The entry failed in the second cycle: its last success stays at the first.
    assert samples[f"{p}entry_last_success_timestamp_seconds{{{labels}}}"] == 103.5
    buckets = [v for k, v in samples.items() if k.startswith(f"{p}cycle_duration_seconds_bucket")]
    assert buckets == sorted(buckets)  # cumulative


def test_health_turns_503_when_stopping() -> None:
    metrics = MirrorMetrics()
    assert metrics.health()[0] == 200
    metrics.stopping = True
    status, body = metrics.health()
    assert (status, body["status"]) == (503, "stopping")


@pytest.mark.anyio
async def test_server_serves_metrics_and_health_and_refuses_a_busy_port() -> None:
    metrics = MirrorMetrics()
    async with MetricsServer(metrics, "127.0.0.1", 0) as server, aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{server.port}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == TEXT_FORMAT
            assert "asyncsync_mirror_cycles_total" in await response.text()
        async with http.get(f"http://127.0.0.1:{server.port}/healthz") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "ok"
        with pytest.raises(UsageError, match="cannot listen"):
            async with MetricsServer(metrics, "127.0.0.1", server.port):
                pass


@pytest.mark.anyio
async def test_gauges_not_yet_known_are_absent_and_a_scraper_may_ask_for_openmetrics() -> None:
    metrics = MirrorMetrics()
    async with MetricsServer(metrics, "127.0.0.1", 0) as server:
        _, body = await scrape(server.port)
        samples = parse(body)
        assert "asyncsync_mirror_last_success_timestamp_seconds" not in samples
        assert samples['asyncsync_mirror_cycles_total{result="success"}'] == 0
        assert samples["asyncsync_mirror_cycle_running"] == 0
        metrics.running = True
        content_type, body = await scrape(server.port, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    families = {family.name: family for family in openmetrics_families(body)}
    assert families["asyncsync_mirror_cycles"].type == "counter"
    assert families["asyncsync_mirror_cycle_running"].samples[0].value == 1


def test_each_mirror_has_its_own_registry() -> None:
    """Two MirrorMetrics in one process (tests, or a library user) never collide in a global registry."""
    first, second = MirrorMetrics(), MirrorMetrics()
    first.missed = 3
    assert first.registry.get_sample_value("asyncsync_mirror_missed_cycles_total") == 3
    assert second.registry.get_sample_value("asyncsync_mirror_missed_cycles_total") == 0


def test_health_reports_a_stalled_cycle_and_recovers_on_progress() -> None:
    metrics = MirrorMetrics(stall_after=60)
    metrics.running = True
    metrics.touch()
    assert metrics.health()[0] == 200
    assert metrics.last_progress is not None
    metrics.last_progress -= 61
    status, body = metrics.health()
    assert (status, body["status"]) == (503, "stalled")
    assert isinstance(body["stalled_seconds"], float) and body["stalled_seconds"] >= 61
    metrics.touch()
    assert metrics.health()[0] == 200
    metrics.last_progress -= 3600
    metrics.running = False  # between cycles, waiting is not stalling
    assert metrics.health()[0] == 200


def test_health_reports_quota_deferred_and_metrics_show_quota_per_host() -> None:
    metrics = MirrorMetrics()
    metrics.quotas.observe(
        "registry-1.docker.io", {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "0;w=21600"}
    )
    metrics.quotas.observe("quay.io", {"ratelimit-limit": "500", "ratelimit-remaining": "450"})
    error = metrics.quotas.exhausted("registry-1.docker.io", 3600.0)
    metrics.record_deferred(7, {"registry-1.docker.io": error.reset_at})
    status, body = metrics.health()
    assert (status, body["status"], body["deferred_images"]) == (200, "quota-deferred", 7)
    resets = body["quota_resets"]
    assert isinstance(resets, dict) and str(resets["registry-1.docker.io"]).endswith("Z")
    samples = parse(metrics.exposition()[0].decode())
    hub, quay = {"host": "registry-1.docker.io"}, {"host": "quay.io"}
    assert samples[_key("asyncsync_mirror_pull_quota_remaining", hub)] == 0
    assert samples[_key("asyncsync_mirror_pull_quota_limit", hub)] == 100
    assert samples[_key("asyncsync_mirror_pull_quota_remaining", quay)] == 450
    assert samples[_key("asyncsync_mirror_pull_quota_reset_timestamp_seconds", hub)] == pytest.approx(
        error.reset_at, abs=0.01
    )
    assert _key("asyncsync_mirror_pull_quota_reset_timestamp_seconds", quay) not in samples
    assert samples["asyncsync_mirror_deferred_images"] == 7
    metrics.record_deferred(0, {})
    assert metrics.health()[1]["status"] == "ok"
