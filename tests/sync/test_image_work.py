"""``SyncRun``: one image's work against real registries (copy, skip, a destination that cannot be
checked), and the mount index it keeps in the state directory between runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncsync.copy.progress import NullProgress
from asyncsync.digest import Digest
from asyncsync.registry.client import RegistrySession
from asyncsync.specs.load import load_spec
from asyncsync.specs.model import SyncSpec
from asyncsync.sync.decisions import REASON_EQUAL, DestinationCheck
from asyncsync.sync.hooks import HookChain, RunContext
from asyncsync.sync.image_work import MOUNT_INDEX_FILE, SyncRun
from asyncsync.sync.registry_lister import RegistryLister
from asyncsync.sync.report import ImageResult, Outcome
from asyncsync.sync.settings import CommandLine, RunSettings, resolve_settings
from asyncsync.sync.spec_plan import build_plan
from tests.helpers.images import make_image, push_image
from tests.helpers.registry import RegistryFactory, free_port
from tests.helpers.specs import write_native_spec

pytestmark = pytest.mark.anyio


def _spec(tmp_path: Path, source: str, target: str) -> SyncSpec:
    spec = tmp_path / "spec.yaml"
    return load_spec(
        write_native_spec(spec, source, target, source_path="work/app", target_path="mirror/app")
    )


async def _process_all(spec: SyncSpec, settings: RunSettings) -> list[ImageResult]:
    """Plan ``spec`` and hand every image to :meth:`SyncRun.process`, as a pool worker does."""
    async with RegistrySession(retry=settings.retry) as session:
        run = SyncRun(settings, session)
        try:
            ctx = RunContext(spec, session, settings.registry_options)
            lister = RegistryLister(session, lambda host: settings.registry_options(host, "source"))
            plan = await build_plan(spec, lister)
            check = DestinationCheck(
                RegistryLister(session, lambda host: settings.registry_options(host, "dest")),
                on_new=run.repository_is_new,
                memory=run.results,
            )
            return [
                await run.process(image, NullProgress(), check, HookChain(()), ctx) for image in plan.images
            ]
        finally:
            run.close()


async def test_an_image_is_copied_then_skipped_as_present(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, target = make_registry("anon"), make_registry("anon")
    digest = await push_image(source, "work/app", "v1", make_image("image-work", layers=2))
    spec = _spec(tmp_path, source.host, target.host)
    settings = resolve_settings(spec, CommandLine())

    first = await _process_all(spec, settings)
    again = await _process_all(spec, settings)

    assert [(r.outcome, r.digest) for r in first] == [(Outcome.COPIED, digest)]
    assert first[0].blobs_copied == 3  # two layers and the config
    assert [(r.outcome, r.reason, r.digest) for r in again] == [(Outcome.SKIPPED, REASON_EQUAL, digest)]


async def test_a_destination_that_cannot_be_checked_fails_the_image_in_one_line(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source = make_registry("anon")
    await push_image(source, "work/app", "v1", make_image("image-work-down", layers=1))
    spec = _spec(tmp_path, source.host, f"127.0.0.1:{free_port()}")  # nothing listens there
    settings = resolve_settings(spec, CommandLine(retry_times=0))

    [result] = await _process_all(spec, settings)

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("checking the destination: ")
    assert "\n" not in result.reason


async def test_the_mount_index_is_kept_in_the_state_directory_between_runs(tmp_path: Path) -> None:
    settings = resolve_settings(
        _spec(tmp_path, "a.example", "b.example"), CommandLine(mount_index_dir=tmp_path)
    )
    blob = Digest.of(b"a layer")
    async with RegistrySession() as session:
        first = SyncRun(settings, session)
        first.load()
        first.coordinator.record("b.example", "mirror/app", blob)
        first.finish()
        second = SyncRun(settings, session)
        second.load()
        second.close()
    assert second.coordinator.export() == {"b.example": {str(blob): ["mirror/app"]}}


async def test_a_damaged_mount_index_only_costs_mounts(tmp_path: Path) -> None:
    (tmp_path / MOUNT_INDEX_FILE).write_bytes(b"{not json")
    settings = resolve_settings(
        _spec(tmp_path, "a.example", "b.example"), CommandLine(mount_index_dir=tmp_path)
    )
    async with RegistrySession() as session:
        run = SyncRun(settings, session)
        run.load()
        run.close()
    assert run.coordinator.export() == {}
