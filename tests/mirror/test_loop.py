"""The mirror loop against real registries: cycles, new tags, metrics per cycle, reloads, stopping."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import anyio
import pytest

from asyncsync.mirror.cron import CronSchedule
from asyncsync.mirror.loop import Cron, Every, MirrorLoop, auto_jitter
from asyncsync.mirror.metrics import MetricsServer, MirrorMetrics
from asyncsync.specs.load import load_spec
from asyncsync.sync.report import Outcome, SyncReport
from asyncsync.sync.settings import CommandLine
from tests.helpers.images import list_tags, make_image, push_image
from tests.helpers.quota_proxy import QuotaProxy
from tests.helpers.registry import RegistryFactory
from tests.helpers.specs import write_native_spec
from tests.mirror.test_metrics import parse

P = "asyncsync_mirror_"


def _spec(tmp_path: Path, source: str, target: str) -> Path:
    return write_native_spec(tmp_path / "mirror.yaml", source, target)


def test_every_keeps_a_grid_and_counts_missed_starts() -> None:
    every = Every(10.0)
    assert every.next_start(None, 100.0) == (100.0, 0)
    assert every.next_start(100.0, 105.0) == (110.0, 0)
    assert every.next_start(100.0, 125.0) == (130.0, 2)  # 110 and 120 passed during the cycle
    assert auto_jitter(every, 0.0) == 1.0
    assert auto_jitter(Every(7200.0), 0.0) == 300.0


def test_cron_waits_for_fire_times_and_counts_missed_ones() -> None:
    cron = Cron(CronSchedule.parse("0 * * * *"))
    hour = 3600.0
    base = 1_800_000_000.0 - (1_800_000_000.0 % hour)  # a whole hour
    assert cron.next_start(None, base + 70) == (base + hour, 0)
    assert cron.next_start(None, base + 10) == (base, 0)  # started in a fire's minute: run now
    # The cycle of base+1h ran until base+3.5h: the fires at 2h and 3h were missed.
    assert cron.next_start(base + hour, base + 3.5 * hour) == (base + 4 * hour, 2)
    assert cron.period(base) == hour


@pytest.mark.anyio
async def test_three_cycles_pick_up_a_new_tag_and_metrics_follow_each_cycle(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, target = make_registry("anon"), make_registry("anon")
    await push_image(source, "team/app", "v1", make_image("mirror-app-v1", layers=1))
    await push_image(source, "team/lib", "v1", make_image("mirror-lib-v1", layers=1))
    spec = _spec(tmp_path, source.host, target.host)
    metrics = MirrorMetrics()
    reports: list[SyncReport | None] = []
    scraped: list[dict[str, float]] = []
    health: list[int] = []
    lines: list[str] = []

    async with MetricsServer(metrics, "127.0.0.1", 0) as server, aiohttp.ClientSession() as http:

        async def on_cycle(number: int, report: SyncReport | None) -> None:
            reports.append(report)
            async with http.get(f"http://127.0.0.1:{server.port}/metrics") as response:
                scraped.append(parse(await response.text()))
            async with http.get(f"http://127.0.0.1:{server.port}/healthz") as response:
                health.append(response.status)
            if number == 1:
                await push_image(source, "team/app", "v2", make_image("mirror-app-v2", layers=1))

        loop = MirrorLoop(
            lambda: load_spec(spec),
            CommandLine(),
            Every(0.3),
            jitter=0.0,
            metrics=metrics,
            echo=lines.append,
            max_cycles=3,
            on_cycle=on_cycle,
        )
        started = time.monotonic()
        assert await loop.run(handle_signals=False) is True
        elapsed = time.monotonic() - started

    copied = [r.counts[Outcome.COPIED] for r in reports if r is not None]
    skipped = [r.counts[Outcome.SKIPPED] for r in reports if r is not None]
    assert (copied, skipped) == ([2, 1, 0], [0, 2, 3])
    assert await list_tags(target, "mirror/app") == ["v1", "v2"]
    assert elapsed >= 0.6  # three starts on a 0.3 s grid: never two cycles at once
    for number, samples in enumerate(scraped, 1):
        assert samples[f'{P}cycles_total{{result="success"}}'] == number
        assert samples[f'{P}cycles_total{{result="failure"}}'] == 0
        assert samples[f"{P}cycle_running"] == 0
    assert [s[f'{P}images_total{{outcome="copied"}}'] for s in scraped] == [2, 3, 3]
    assert [s[f'{P}images_total{{outcome="skipped"}}'] for s in scraped] == [0, 2, 5]
    successes = [s[f"{P}last_success_timestamp_seconds"] for s in scraped]
    assert successes == sorted(successes) and len(set(successes)) == 3
    entry = f'entry="1",from="{source.host}/team/*",to="{target.host}/mirror/"'
    copied = f'entry="1",from="{source.host}/team/*",outcome="copied",to="{target.host}/mirror/"'
    copied_key = f"{P}entry_images{{{copied}}}"
    assert [s[copied_key] for s in scraped] == [2, 1, 0]
    assert scraped[-1][f"{P}entry_last_success_timestamp_seconds{{{entry}}}"] == successes[-1]
    assert scraped[1][f"{P}bytes_uploaded_total"] > scraped[0][f"{P}bytes_uploaded_total"] > 0
    assert health == [200, 200, 200]
    assert lines.count("mirror: cycle 2 started") == 1


@pytest.mark.anyio
async def test_a_spec_that_stops_loading_fails_its_cycle_and_the_loop_goes_on(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, target = make_registry("anon"), make_registry("anon")
    await push_image(source, "team/app", "v1", make_image("mirror-reload", layers=1))
    spec = _spec(tmp_path, source.host, target.host)
    good = spec.read_text()
    lines: list[str] = []

    async def on_cycle(number: int, report: SyncReport | None) -> None:
        if number == 1:
            spec.write_text(good + "  - from: nowhere\n")
        elif number == 2:
            spec.write_text(good)

    metrics = MirrorMetrics()
    loop = MirrorLoop(
        lambda: load_spec(spec),
        CommandLine(),
        Every(0.2),
        jitter=0.0,
        metrics=metrics,
        echo=lines.append,
        max_cycles=3,
        on_cycle=on_cycle,
    )
    assert await loop.run(handle_signals=False) is True
    assert metrics.cycles["success"] == 2 and metrics.cycles["failure"] == 1
    failed = [line for line in lines if line.startswith("mirror: cycle 2 failed: ")]
    assert len(failed) == 1 and "mirror.yaml:8: sync entry 2 needs a 'to' key" in failed[0]


@pytest.mark.anyio
async def test_a_stop_request_ends_the_wait_between_cycles_at_once(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, target = make_registry("anon"), make_registry("anon")
    spec = _spec(tmp_path, source.host, target.host)
    await push_image(source, "team/app", "v1", make_image("mirror-stop", layers=1))
    lines: list[str] = []
    metrics = MirrorMetrics()
    loop = MirrorLoop(
        lambda: load_spec(spec), CommandLine(), Every(3600.0), metrics=metrics, echo=lines.append
    )

    cycle_done = anyio.Event()

    async def on_cycle(number: int, report: SyncReport | None) -> None:
        cycle_done.set()

    loop.on_cycle = on_cycle

    async def stop_soon() -> None:
        await cycle_done.wait()
        await anyio.sleep(0.2)  # now waiting for the next start, an hour away
        loop.request_stop("SIGTERM received")

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            group.start_soon(stop_soon)
            await loop.run(handle_signals=False)
    assert loop.cycles == 1
    assert metrics.health()[0] == 503
    assert lines[-1] == "mirror: stopped (SIGTERM received)"


@pytest.mark.anyio
async def test_a_quota_deferred_cycle_resumes_when_the_window_resets(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    """The scripted quota proxy (tests/helpers/quota_proxy.py; no real registry has a pull quota)
    allows 2 pulls in a 3 s window; 4 images to mirror, --every 1h. The second cycle starts when
    the window resets, not an hour later, and pulls only the 2 deferred images."""
    source, target = make_registry("anon"), make_registry("anon")
    for name in ("a", "b", "c", "d"):
        await push_image(source, f"team/{name}", "v1", make_image(f"quota-loop-{name}", layers=1))
    reports: list[SyncReport] = []
    health: list[tuple[int, str]] = []
    lines: list[str] = []
    metrics = MirrorMetrics()
    with QuotaProxy(source.host, limit=2, window=3) as proxy:
        spec = _spec(tmp_path, proxy.host, target.host)
        gets: list[int] = []

        async def on_cycle(number: int, report: SyncReport | None) -> None:
            assert report is not None
            reports.append(report)
            status, body = metrics.health()
            health.append((status, str(body["status"])))
            gets.append(proxy.manifest_gets())
            if number == 1:
                proxy.new_window()  # the registry's window turns over while the mirror waits

        loop = MirrorLoop(
            lambda: load_spec(spec),
            CommandLine(),
            Every(3600.0),
            jitter=0.0,
            metrics=metrics,
            echo=lines.append,
            max_cycles=2,
            on_cycle=on_cycle,
        )
        started = time.monotonic()
        with anyio.fail_after(60):
            assert await loop.run(handle_signals=False) is True
        elapsed = time.monotonic() - started

    assert [(r.counts[Outcome.COPIED], r.counts[Outcome.DEFERRED]) for r in reports] == [(2, 2), (2, 0)]
    assert gets == [2, 4]  # the second cycle pulled only the two deferred images
    assert health == [(200, "quota-deferred"), (200, "ok")]
    assert any("images deferred by a pull quota; resuming at" in line for line in lines)
    assert elapsed < 60
    for name in ("a", "b", "c", "d"):
        assert await list_tags(target, f"mirror/{name}") == ["v1"]
    samples = parse(metrics.exposition()[0].decode())
    assert samples[f'{P}pull_quota_remaining{{host="{proxy.host}"}}'] == 0
    assert samples[f"{P}deferred_images"] == 0
    assert samples[f'{P}images_total{{outcome="deferred"}}'] == 2


@pytest.mark.anyio
async def test_a_stop_request_abandons_in_flight_images_after_the_grace() -> None:
    """The mirror runs its pool without signal handling of its own: its stop request caps the
    in-flight images' time (a job that never ends stands for a stuck upload)."""
    from asyncsync.sync.scheduler import PoolControl, run_pool

    loop = MirrorLoop(lambda: load_spec(Path("never-loaded.yaml")), CommandLine(), None, echo=print)
    loop.stop_grace = 0.2
    control = loop._control = PoolControl()
    started = anyio.Event()

    async def stuck(job: int) -> None:
        started.set()
        await anyio.sleep(3600)

    async def stop_when_started() -> None:
        await started.wait()
        loop.request_stop("SIGTERM received")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(stop_when_started)
            await run_pool([1], stuck, parallel=1, control=control)
    assert "finishing in-flight images for up to 0.2s" in control.reason
