"""Stand-ins for the quay.io images skopeo 1.9.3's system tests pull, seeded into a local registry.

skopeo's ``systemtest/*.bats`` read ``docker://quay.io/libpod/...`` and ``docker://quay.io/fedora/fedora``.
This module builds small deterministic images with the test image generator (:mod:`tests.helpers.images`)
under the same repository names and tags, with the properties the tests check:

* ``libpod/busybox:latest``: a Docker manifest list (linux/amd64, linux/arm64/v8), as the real one is
  multi-arch; copies without ``--all`` take the host's instance, a v2s2 manifest (060-delete greps it).
* ``libpod/alpine_labels:latest``: one Docker v2s2 image (its Digest must match between a registry and a
  ``dir:`` copy, so not a list) with ``Labels`` mentioning ``PODMAN``/``podman``, a ``docker_version`` and a
  ``created`` time with fractional seconds, as 010-inspect's table expects.
* ``libpod/fedora:31``: ``Env`` holding ``FGC=f31`` and ``DISTTAG=f31container``.
* ``libpod/notmyarch:20210121``: a Docker manifest list whose only entry claims amigaos/mc68000 variant
  1000 while its image is an ordinary one, as upstream's ``make-noarch-manifest`` makes it
  (``buildah manifest add --os --arch --variant`` changes only the list entry).
* ``fedora/fedora``: an OCI index (linux/amd64, linux/arm64/v8) under ``latest`` and two more tags, so that
  ``inspect --no-tags`` has tags to leave out.
* ``libpod/alpine:latest``: a Docker manifest list (linux/amd64, linux/arm64/v8).

:func:`seed` pushes them with the generator's own Distribution API pusher (never with the tool under test)
into a fresh registry data directory, which the runner then serves as ``quay.io`` over TLS.
``python -m tests.systemtest.standin_images DATA_DIR`` seeds a directory by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.images import (
    GeneratedImage,
    GeneratedIndex,
    digest_of,
    make_image,
    make_index,
    make_multiarch,
    push_image_sync,
    push_index_sync,
)
from tests.helpers.registry import RegistryServer, run_registry

__all__ = ["STANDINS", "StandIn", "seed"]

_SEED = "skopeo-systemtest-standin"
_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MULTIARCH = (("linux", "amd64", None), ("linux", "arm64", "v8"))


@dataclass(frozen=True)
class StandIn:
    """One stand-in: ``repo`` (on quay.io), its ``tags`` and the image or index they all point at."""

    repo: str
    tags: tuple[str, ...]
    build: Callable[[], GeneratedImage | GeneratedIndex]


def _busybox() -> GeneratedIndex:
    return make_multiarch(f"{_SEED}/busybox", _MULTIARCH, fmt="docker", layers=1, env=[_PATH])


def _alpine_labels() -> GeneratedImage:
    labels = {
        "INSTALL": "podman run --rm --privileged -v /:/host IMAGE /bin/install.sh",
        "PODMAN": "podman run -it --name NAME -e NAME=NAME -e IMAGE=IMAGE IMAGE echo install",
        "RUN": "podman run -it --name NAME --privileged --ipc=host --net=host --pid=host IMAGE",
    }
    return make_image(
        f"{_SEED}/alpine_labels",
        layers=1,
        labels=labels,
        env=[_PATH],
        config_overrides={"docker_version": "18.09.7", "created": "2021-01-21T14:34:16.123456789Z"},
    )


def _fedora31() -> GeneratedImage:
    env = ["DISTTAG=f31container", "FGC=f31", "FBR=f31", _PATH]
    return make_image(f"{_SEED}/fedora31", layers=1, env=env)


def _notmyarch() -> GeneratedIndex:
    image = make_image(f"{_SEED}/notmyarch", layers=1)
    entry = {
        "mediaType": image.media_type,
        "size": image.size,
        "digest": image.digest,
        "platform": {"architecture": "mc68000", "os": "amigaos", "variant": "1000"},
    }
    body = {"schemaVersion": 2, "mediaType": make_index([image]).media_type, "manifests": [entry]}
    manifest = json.dumps(body, indent=3).encode()
    return GeneratedIndex(
        fmt="docker",
        images=(image,),
        manifest=manifest,
        media_type=body["mediaType"],
        digest=digest_of(manifest),
    )


def _fedora_latest() -> GeneratedIndex:
    return make_multiarch(f"{_SEED}/fedora", _MULTIARCH, fmt="oci", layers=1, env=[_PATH])


def _alpine() -> GeneratedIndex:
    return make_multiarch(f"{_SEED}/alpine", _MULTIARCH, fmt="docker", layers=1, env=[_PATH])


STANDINS: tuple[StandIn, ...] = (
    StandIn("libpod/busybox", ("latest",), _busybox),
    StandIn("libpod/alpine_labels", ("latest",), _alpine_labels),
    StandIn("libpod/fedora", ("31",), _fedora31),
    StandIn("libpod/notmyarch", ("20210121",), _notmyarch),
    StandIn("fedora/fedora", ("latest", "40", "41"), _fedora_latest),
    StandIn("libpod/alpine", ("latest",), _alpine),
)


def push_standins(server: RegistryServer) -> list[str]:
    """Push every stand-in to ``server``; returns ``repo:tag@digest`` lines, one per tag."""
    pushed: list[str] = []
    for standin in STANDINS:
        built = standin.build()
        for tag in standin.tags:
            if isinstance(built, GeneratedIndex):
                digest = push_index_sync(server, standin.repo, tag, built)
            else:
                digest = push_image_sync(server, standin.repo, tag, built)
            pushed.append(f"{standin.repo}:{tag}@{digest}")
    return pushed


def seed(base_dir: Path) -> tuple[Path, list[str]]:
    """Seed a fresh registry under ``base_dir`` (a plain anonymous one, stopped afterwards); returns its
    storage root (serve it with any ``docker-registry`` config) and the pushed ``repo:tag@digest`` lines."""
    with run_registry("anon", base_dir=base_dir) as server:
        pushed = push_standins(server)
        return server.data_dir, pushed


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.systemtest.standin_images DIR``: seed ``DIR`` and print what was pushed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("base_dir", type=Path, help="directory for the registry's config and storage")
    args = parser.parse_args(argv)
    data_dir, pushed = seed(args.base_dir)
    print("\n".join(f"quay.io/{line}" for line in pushed))
    print(f"storage root: {data_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
