"""Mirror metrics: Prometheus text format (families, escaping, histogram), health, and the HTTP server."""

from __future__ import annotations

import re
from collections import Counter

import aiohttp
import pytest

from asyncsync.errors import UsageError
from asyncsync.mirror.metrics import CONTENT_TYPE, CycleOutcome, EntryLabel, MetricsServer, MirrorMetrics
from asyncsync.sync.report import Outcome

_SAMPLE = re.compile(r'^([a-z_]+)(\{(?:[a-z_]+="(?:[^"\\\n]|\\.)*"(?:,|(?=\})))*\})? (-?[0-9.e+]+|\+Inf)$')


def parse(text: str) -> dict[str, float]:
    """Samples keyed by ``name{labels}``; asserts every line is HELP, TYPE or a valid sample."""
    samples: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        match = _SAMPLE.match(line)
        assert match is not None, f"not a sample line: {line!r}"
        family = re.sub(r"_(bucket|sum|count)$", "", match.group(1))
        assert family in typed or match.group(1) in typed, f"no TYPE before {line!r}"
        samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


ENTRY = EntryLabel(1, 'quay.io/org/"odd"\\name', "mirror.example/\nx/")


def test_exposition_after_two_cycles_is_valid_and_cumulative() -> None:
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

    samples = parse(metrics.render())

    p = "asyncsync_mirror_"
    assert samples[f'{p}cycles_total{{result="success"}}'] == 1
    assert samples[f'{p}cycles_total{{result="failure"}}'] == 1
    assert samples[f'{p}images_total{{outcome="copied"}}'] == 3
    assert samples[f'{p}images_total{{outcome="skipped"}}'] == 5
    assert samples[f'{p}images_total{{outcome="failed"}}'] == 1
    assert samples[f"{p}bytes_uploaded_total"] == 2048
    assert samples[f"{p}pruned_tags_total"] == 2
    assert samples[f'{p}cycle_duration_seconds_bucket{{le="5"}}'] == 1
    assert samples[f'{p}cycle_duration_seconds_bucket{{le="60"}}'] == 2
    assert samples[f'{p}cycle_duration_seconds_bucket{{le="+Inf"}}'] == 2
    assert samples[f"{p}cycle_duration_seconds_count"] == 2
    assert samples[f"{p}cycle_duration_seconds_sum"] == 23.5
    assert samples[f"{p}last_success_timestamp_seconds"] == 103.5
    assert samples[f"{p}last_cycle_timestamp_seconds"] == 220
    assert samples[f"{p}next_cycle_timestamp_seconds"] == 400
    labels = 'entry="1",from="quay.io/org/\\"odd\\"\\\\name",to="mirror.example/\\nx/"'
    assert samples[f'{p}entry_images{{{labels},outcome="failed"}}'] == 1
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
            assert response.headers["Content-Type"] == CONTENT_TYPE
            assert "asyncsync_mirror_cycles_total" in await response.text()
        async with http.get(f"http://127.0.0.1:{server.port}/healthz") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "ok"
        with pytest.raises(UsageError, match="cannot listen"):
            async with MetricsServer(metrics, "127.0.0.1", server.port):
                pass
