"""Every fault kind of issue 6 against a real copy between real registries, checked end to end.

Invariants, per scenario: no tag at the destination references anything missing or wrong; every image
is either complete (digest-equal to the source) or reported failed with a one-line reason free of
secrets; faults that retries can absorb leave no failure at all; the per-host request limit holds; a
re-run without faults converges and does not upload again a blob that had fully arrived.
"""

from __future__ import annotations

import pytest

from tests.helpers.fault_catalogue import SCENARIOS
from tests.helpers.fault_scenarios import HOST_LIMIT, Scenario, run_scenario
from tests.helpers.registry import RegistryServer

SECRETS = ("canary", "_state", "Bearer ", "Basic ")


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_fault_scenario(
    scenario: Scenario,
    registry_basic: RegistryServer,
    registry_anon: RegistryServer,
    registry_token: RegistryServer,
    rng_seed: int,
) -> None:
    destination = registry_token if scenario.destination == "token" else registry_anon
    prefix = f"matrix-{rng_seed % 100_000}"
    run = await run_scenario(scenario, registry_basic, destination, rng_seed, prefix)
    assert run.injected > 0, "the fault never fired: the scenario tests nothing"
    assert run.corrupt == [], f"corrupt or incomplete tags: {run.corrupt}"
    assert run.problems == []
    assert len(run.completed) + len(run.failed) == run.images
    for reason in run.failed.values():
        assert reason and "\n" not in reason and "Traceback" not in reason
        assert not any(secret in reason for secret in SECRETS), reason
    if scenario.must_complete:
        assert run.failed == {}, run.failed
    assert run.peak_in_flight <= HOST_LIMIT
    assert run.converged, "a re-run without faults did not converge"
    assert run.reuploaded == [], f"blobs uploaded again although complete: {run.reuploaded}"
