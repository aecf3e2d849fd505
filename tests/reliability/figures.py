"""Print the reliability figures of issue 6 as markdown: ``python tests/reliability/figures.py [--seed N]``.

It starts its own registries (anonymous, htpasswd and token; nothing from the internet), points HOME
and the XDG directories at a temporary directory, and runs the same code the test suite runs:

* every fault scenario of :mod:`tests.helpers.fault_catalogue` (a copy of a mixed workload through the
  fault proxies, a crawl of the destination, a re-run without faults);
* every kill -9 point of :mod:`tests.helpers.crash` (a killed ``asyncsync sync``, a crawl, a re-run);
* the bad-input corpus of :mod:`tests.helpers.bad_inputs`.

Then it prints three tables. "Corrupt/incomplete tags" counts destination tags that reference a missing
or wrong manifest or blob; it must be 0 in every row. The exit status is 1 if any invariant broke.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from tests.helpers.bad_inputs import Outcome, build_cases, run_cases
from tests.helpers.crash import KillRun, failures, kill_points, run_kill_points
from tests.helpers.fake_registry import FakeRegistry
from tests.helpers.fault_catalogue import SCENARIOS
from tests.helpers.fault_scenarios import ScenarioRun, run_scenario
from tests.helpers.registry import RegistryServer, run_registry

SECRETS = ("canary", "_state=", "Bearer ", "Basic ")


def _clear(reason: str) -> bool:
    return bool(reason) and "\n" not in reason and not any(s in reason for s in SECRETS)


def fault_table(runs: list[ScenarioRun]) -> tuple[list[str], bool]:
    lines = [
        "| Fault | Injected | Images | Completed | Failed, clear reason | Corrupt/incomplete tags "
        "| Re-run converged | Blobs re-uploaded |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    good = True
    for run in runs:
        clear = sum(1 for reason in run.failed.values() if _clear(reason))
        ok = (
            run.injected > 0
            and not run.corrupt
            and not run.problems
            and clear == len(run.failed)
            and len(run.completed) + len(run.failed) == run.images
            and (not run.scenario.must_complete or not run.failed)
            and run.converged
            and not run.reuploaded
        )
        good &= ok
        lines.append(
            f"| {run.scenario.name} | {run.injected} | {run.images} | {len(run.completed)} | {clear} "
            f"| {len(run.corrupt)} | {'yes' if run.converged else 'NO'} | {len(run.reuploaded)} |"
            + ("" if ok else " **invariant broken** |")
        )
    return lines, good


def kill_table(runs: list[KillRun]) -> tuple[list[str], bool]:
    groups: dict[str, list[KillRun]] = {}
    for run in runs:
        label = run.point.label
        group = "blob upload" if label.startswith(("blob", "destination")) else label.split(" (")[0]
        group = "tag / index PUT" if "tag PUT" in group else group
        group = "child manifest PUT" if group.startswith("child manifest") else group
        groups.setdefault(group, []).append(run)
    lines = [
        "| kill -9 during | Points | Killed there | Corrupt/incomplete tags after the kill "
        "| Re-run converged (digest-equal) | Blobs re-uploaded |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for group, members in groups.items():
        lines.append(
            f"| {group} | {len(members)} | {sum(r.killed for r in members)} "
            f"| {sum(len(r.corrupt_after_kill) for r in members)} | {sum(r.converged for r in members)} "
            f"| {sum(len(r.reuploaded) for r in members)} |"
        )
    return lines, all(not failures(run) for run in runs)


def input_table(outcomes: list[Outcome]) -> tuple[list[str], bool]:
    tried = Counter(o.case.category for o in outcomes)
    clean = Counter(o.case.category for o in outcomes if o.problem is None)
    lines = ["| Bad input | Tried | One-line error, no traceback |", "|---|---:|---:|"]
    for category in ("reference", "spec", "manifest", "layout"):
        lines.append(f"| {category}s | {tried[category]} | {clean[category]} |")
    lines.append(f"| **total** | {sum(tried.values())} | {sum(clean.values())} |")
    return lines, tried == clean


async def _faults(
    basic: RegistryServer, anon: RegistryServer, token: RegistryServer, seed: int
) -> list[ScenarioRun]:
    runs = []
    for index, scenario in enumerate(SCENARIOS):
        destination = token if scenario.destination == "token" else anon
        runs.append(await run_scenario(scenario, basic, destination, seed + index, f"figures-{seed}-{index}"))
        print(f"  {scenario.name}: done", file=sys.stderr)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=6, help="seed of workloads, faults and kill points")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="asyncsync-figures-") as scratch:
        home = Path(scratch) / "home"
        for variable, sub in (("HOME", ""), ("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache"),
                              ("XDG_RUNTIME_DIR", "run"), ("DOCKER_CONFIG", ".docker")):  # fmt: skip
            (home / sub).mkdir(parents=True, exist_ok=True)
            os.environ[variable] = str(home / sub)
        os.environ.pop("REGISTRY_AUTH_FILE", None)
        started = time.monotonic()
        with run_registry("basic") as basic, run_registry("anon") as anon, run_registry("token") as token:
            print("fault scenarios...", file=sys.stderr)
            fault_runs = anyio.run(_faults, basic, anon, token, args.seed)
            print("kill -9 points...", file=sys.stderr)
            points = kill_points(args.seed)
            kill_runs = anyio.run(run_kill_points, points, basic, anon, args.seed, Path(scratch) / "kills")
        print("bad inputs...", file=sys.stderr)
        with FakeRegistry() as fake:
            work = Path(scratch) / "inputs"
            outcomes = run_cases(build_cases(work, fake), work)
        faults, faults_ok = fault_table(fault_runs)
        kills, kills_ok = kill_table(kill_runs)
        inputs, inputs_ok = input_table(outcomes)
        print(f"Seed {args.seed}; {len(fault_runs)} fault scenarios, {len(kill_runs)} kill points, "
              f"{len(outcomes)} bad inputs; {time.monotonic() - started:.0f} s.\n")  # fmt: skip
        print("\n".join(faults), "\n", "\n".join(kills), "\n", "\n".join(inputs), sep="\n")
    return 0 if faults_ok and kills_ok and inputs_ok else 1


if __name__ == "__main__":
    sys.exit(main())
