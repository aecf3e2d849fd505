"""The main job on an embedded default: two local registries, a seeded sample workload, one sync.

Starts a source and a destination ``docker-registry`` on free loopback ports, seeds the source
with the bench's small Harbor-like workload (10 tags in 5 repositories, shared base layers, a
multi-arch index, Docker and OCI manifests), runs ``asyncsync sync`` with skopeo's YAML, shows
the destination (``list-tags`` and ``inspect``), then runs the sync again to show that an
unchanged mirror costs only HEAD requests. Registries stop at the end; nothing is left behind.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.push import push_workload
from bench.registries import running_registry
from bench.workload import generate, params_from, write_skopeo_yaml


def _asyncsync(*args: str) -> None:
    command = [sys.executable, "-m", "asyncsync", *args]
    print(f"\n$ asyncsync {' '.join(args)}", flush=True)
    subprocess.run(command, check=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="asyncsync-demo-") as tmp:
        work = Path(tmp)
        with (
            running_registry(work / "source", name="source") as source,
            running_registry(work / "destination", name="destination") as destination,
        ):
            workload = generate(params_from("small"))
            asyncio.run(push_workload(workload, source.url))
            repos = len(workload.repos())
            print(f"source registry {source.host}: seeded {len(workload.tags)} tags in {repos} repos")
            print(f"destination registry {destination.host}: empty")
            spec = write_skopeo_yaml(workload, source.host, work / "sync.yaml")
            print(f"\nspec {spec}:\n{spec.read_text()}")
            _asyncsync(
                "sync",
                "--src",
                "yaml",
                "--dest",
                "docker",
                "--all",
                "--dest-tls-verify=false",
                "--no-mount-cache",
                str(spec),
                f"{destination.host}/mirror",
            )
            first_repo = sorted(workload.repos())[0]
            name = first_repo.rsplit("/", 1)[-1]
            _asyncsync("list-tags", "--tls-verify=false", f"docker://{destination.host}/mirror/{name}")
            tag = workload.repos()[first_repo][0]
            _asyncsync("inspect", "--tls-verify=false", f"docker://{destination.host}/mirror/{name}:{tag}")
            print("\nRe-running the same sync: every image is unchanged; HEAD requests only, no writes.")
            _asyncsync(
                "sync",
                "--src",
                "yaml",
                "--dest",
                "docker",
                "--all",
                "--dest-tls-verify=false",
                "--quiet",
                "--no-mount-cache",
                str(spec),
                f"{destination.host}/mirror",
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
