"""Cross-repository mounts on a fresh destination: one per blob and repository, never more.

A migration's images of one repository run side by side (8 in flight), and each needs the
shared base layers. Every such blob must reach each destination repository once: uploaded
into the first, mounted (``POST ?mount=`` answered 201) into each other, and found already
there by the other images of a repository that got it. Counted on the real registry's
access log.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.images import make_image, make_layer, push_image_sync
from tests.helpers.registry import RegistryFactory

REPOS = 3
TAGS = 6
BASES = 2
UPLOADS = r"/v2/.+/blobs/uploads/"


def test_each_shared_blob_is_mounted_once_per_repository(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, dest = make_registry("anon"), make_registry("anon")
    bases = [make_layer(f"mount-base-{n}", 32 * 1024) for n in range(BASES)]
    blobs: set[str] = set()
    lines = [f"{source.host}:", "  tls-verify: false", "  images:"]
    for r in range(REPOS):
        dependency = make_layer(f"mount-dep-{r}", 16 * 1024)
        for t in range(TAGS):
            image = make_image(f"mount-{r}-{t}", layers=1, shared_layers=[*bases, dependency])
            push_image_sync(source, f"proj/app{r}", f"v{t}", image)
            blobs.update(image.blobs())
        lines.append(f"    proj/app{r}: [{', '.join(f'v{t}' for t in range(TAGS))}]")
    spec = tmp_path / "sync.yaml"
    spec.write_text("\n".join(lines) + "\n")

    result = run_cli(
        "sync",
        "--src",
        "yaml",
        "--dest",
        "docker",
        "--dest-tls-verify=false",
        "--parallel",
        "8",
        str(spec),
        f"{dest.host}/mirror",
        extra_env={"XDG_CACHE_HOME": str(tmp_path / "cache")},
    )

    assert result.returncode == 0, result.all_output
    # Each distinct blob uploaded once (POST answered 202, then PUT) ...
    assert dest.count("PUT", UPLOADS + ".*") == len(blobs)
    assert dest.count("POST", UPLOADS, status=202) == len(blobs)
    # ... and the two base layers mounted once into each repository after the first.
    assert dest.count("POST", UPLOADS, status=201) == BASES * (REPOS - 1)
