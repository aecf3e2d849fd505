"""kill -9 of ``asyncsync sync`` at 22 seeded points; the destination is never corrupt and a re-run converges.

After every kill the destination is crawled: no tag may reference a missing manifest or blob. The re-run
(no kill) must exit 0, leave every tag complete and digest-equal to the source, and not upload again any
blob that had fully arrived before the kill. Points run three at a time, each on its own repositories.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.crash import failures, kill_points, run_kill_points
from tests.helpers.registry import RegistryServer

POINTS = kill_points(seed=6)


def test_at_least_twenty_points_across_the_protocol() -> None:
    labels = " ".join(p.label for p in POINTS)
    assert len(POINTS) >= 20
    assert all(word in labels for word in ("blob upload", "child manifest", "tag PUT", "index"))
    assert {p.when for p in POINTS} == {"before", "after"}


@pytest.mark.anyio
async def test_kill_9_at_every_point(
    registry_anon: RegistryServer, registry_basic: RegistryServer, rng_seed: int, tmp_path: Path
) -> None:
    runs = await run_kill_points(POINTS, registry_basic, registry_anon, rng_seed, tmp_path)
    assert len(runs) == len(POINTS)
    broken = {f"{i:02d} {run.point.label}": failures(run) for i, run in enumerate(runs) if failures(run)}
    details = "\n".join(f"{name}: {found}\n{runs[int(name[:2])].output}" for name, found in broken.items())
    assert not broken, details
    # The re-runs did real work: some kill points leave blobs, child manifests or tags to finish.
    assert sum(run.rerun_uploads for run in runs) > 0
