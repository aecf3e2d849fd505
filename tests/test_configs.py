"""The examples in configs/: every YAML parses, every spec loads, the Kubernetes manifests agree with
the command line they run (known flags, paths, shard counts) and the Dockerfile builds the tool.

There is no Docker engine and no cluster here: the image is not built and the manifests are not
applied; these checks are what can be verified without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from asyncsync.specs.load import load_spec

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SPECS = ("harbor-migration.yaml", "harbor-to-harbor.yaml", "mirror.yaml", "upstream-mirror.yaml")


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HARBOR_A_PASSWORD", "HARBOR_B_PASSWORD", "HARBOR_OLD_PASSWORD", "HARBOR_NEW_PASSWORD"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("MIRROR_PASSWORD", "x")


def _documents(path: Path) -> list[Any]:
    return list(yaml.safe_load_all(path.read_text()))


def test_every_yaml_file_parses() -> None:
    files = sorted(CONFIGS.rglob("*.yaml"))
    assert len(files) >= 8
    for path in files:
        assert _documents(path), path


@pytest.mark.usefixtures("secrets")
@pytest.mark.parametrize("name", SPECS)
def test_native_specs_load(name: str) -> None:
    spec = load_spec(CONFIGS / name)
    assert spec.kind == "native" and spec.entries


@pytest.mark.usefixtures("secrets")
def test_harbor_examples_use_the_harbor_keys() -> None:
    migration = load_spec(CONFIGS / "harbor-to-harbor.yaml")
    old, new = migration.registry("harbor-old.example.com"), migration.registry("harbor-new.example.com")
    assert old is not None and old.kind == "harbor" and old.credentials is not None
    assert old.credentials.username == "robot$migration-reader"
    assert new is not None and (new.kind, new.create_projects) == ("harbor", True)
    mirror = load_spec(CONFIGS / "mirror.yaml")
    target = mirror.registry("harbor.example.com")
    assert target is not None and target.create_projects


def _command_options(name: str) -> set[str]:
    from asyncsync.cli.app import _register_commands, app

    _register_commands()
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def _container(manifest: dict[str, Any]) -> dict[str, Any]:
    spec = manifest["spec"]
    if manifest["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    containers = spec["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _check_args(container: dict[str, Any], mounts_from: str) -> list[str]:
    args = [str(a) for a in container["args"]]
    known = _command_options(args[0])
    for arg in args[1:]:
        if arg.startswith("--"):
            assert arg.split("=", 1)[0] in known, f"{arg} is not an option of {args[0]}"
    spec_path = args[1]
    mount = next(m for m in container["volumeMounts"] if spec_path.startswith(m["mountPath"] + "/"))
    assert mount["name"] == mounts_from
    return args


def test_indexed_job_shards_match_its_completions() -> None:
    (job,) = _documents(CONFIGS / "k8s" / "migration-indexed-job.yaml")
    assert (job["kind"], job["spec"]["completionMode"]) == ("Job", "Indexed")
    args = _check_args(_container(job), "spec")
    assert args[0] == "sync"
    (count,) = [int(a.split("=", 1)[1]) for a in args if a.startswith("--shard-count=")]
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == count


def test_cronjob_runs_one_cycle_and_never_overlaps() -> None:
    (cron,) = _documents(CONFIGS / "k8s" / "mirror-cronjob.yaml")
    assert cron["kind"] == "CronJob" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    from asyncsync.mirror.cron import CronSchedule

    CronSchedule.parse(cron["spec"]["schedule"])  # the same five-field grammar
    args = _check_args(_container(cron), "spec")
    assert args[0] == "mirror" and "--once" in args


def test_deployment_probes_and_scrapes_the_metrics_port() -> None:
    (deployment,) = _documents(CONFIGS / "k8s" / "mirror-deployment.yaml")
    container = _container(deployment)
    args = _check_args(container, "spec")
    (port,) = [int(a.split("=", 1)[1]) for a in args if a.startswith("--metrics-port=")]
    assert container["ports"][0]["containerPort"] == port
    assert "--listen=0.0.0.0" in args
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)


def test_dockerfile_installs_the_package_on_python_311_slim() -> None:
    lines = [line.strip() for line in (CONFIGS / "Dockerfile").read_text().splitlines()]
    assert "FROM python:3.11-slim" in lines
    assert any(line.startswith("RUN pip install /src") for line in lines)
    assert 'ENTRYPOINT ["asyncsync"]' in lines
    copied = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    root = CONFIGS.parent
    for sources in copied:
        for source in sources:
            assert (root / source).exists(), f"COPY {source}: missing from the build context"
