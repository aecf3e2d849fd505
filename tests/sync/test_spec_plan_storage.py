"""Native spec entries into podman's store, ``to: containers-storage:[SPEC]``
(:mod:`asyncsync.sync.spec_plan`): parsing and its ``file:line`` errors, a bad storage specifier as
one plan error, and a real sync into a private store checked with podman.
"""

from __future__ import annotations

import json
import secrets
import textwrap
from pathlib import Path
from typing import Any

import pytest

from asyncsync.errors import SpecError
from asyncsync.specs.load import load_spec
from tests.helpers.asyncsync_cli import invoke
from tests.helpers.images import make_image, make_multiarch, push_image_sync, push_index_sync
from tests.helpers.podman import PrivateStorage
from tests.helpers.registry import RegistryServer


def write_spec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text("version: 1\n" + textwrap.dedent(body))
    return path


def test_storage_destinations_parse(tmp_path: Path) -> None:
    spec = load_spec(
        write_spec(
            tmp_path,
            """\
            sync:
              - from: reg.example/team/app
                to: 'containers-storage:'
              - from: reg.example/team/*
                to: containers-storage:[vfs@/srv/g+/srv/r]
            """,
        )
    )
    default, private = spec.entries
    assert spec.has_local_entries and default.is_local and private.is_local
    assert (default.destination.kind, default.destination.path) == ("containers-storage", "")
    assert str(private.destination) == "containers-storage:[vfs@/srv/g+/srv/r]"
    # Images keep their source names, as podman pull names them.
    named = private.destination_for(private.sources[0], "team/app", tag="v1", digest=None)
    assert str(named) == "reg.example/team/app:v1"


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            "sync:\n  - from: reg.example/a\n    to: containers-storage:app\n",
            4,
            "'to' of sync entry 1 must be containers-storage: or containers-storage:[STORAGE-SPECIFIER] "
            "(images keep their source names), not 'containers-storage:app'",
        ),
        (
            "sync:\n  - from: dir:/media/usb\n    to: 'containers-storage:'\n",
            4,
            "sync entry 1 cannot copy a directory tree into containers-storage",
        ),
        (
            "sync:\n  - from: reg.example/a\n    to: 'containers-storage:'\n    tag-suffix: -x\n",
            5,
            "'tag-suffix' cannot be used with the containers-storage: side of sync entry 1",
        ),
    ],
)
def test_bad_storage_entries_are_spec_errors(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("version: 1\n" + body)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}:{line}: {message}"


def _report(report: Path) -> dict[str, tuple[str, str]]:
    document: dict[str, Any] = json.loads(report.read_bytes())
    return {image["destination"]: (image["outcome"], image["reason"]) for image in document["images"]}


def test_sync_into_containers_storage(
    registry_anon: RegistryServer,
    private_storage: PrivateStorage,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    rng_seed: int,
) -> None:
    host, repo = registry_anon.host, f"cs-{secrets.token_hex(4)}/app"
    images = {tag: make_image(f"{rng_seed}/{tag}", fmt=fmt) for tag, fmt in (("v1", "docker"), ("v2", "oci"))}  # type: ignore[arg-type]
    for tag, image in images.items():
        push_image_sync(registry_anon, repo, tag, image)
    index = make_multiarch(f"{rng_seed}/multi", layer_size=1024)
    push_index_sync(registry_anon, repo, "multi", index)
    other = PrivateStorage.create(tmp_path_factory.mktemp("st"))
    spec = write_spec(
        tmp_path,
        f"""\
        registries:
          {host}: {{tls-verify: false}}
        sync:
          - from: {host}/{repo}
            to: 'containers-storage:'
            tags: [v1, v2]
          - from: {host}/{repo}
            to: containers-storage:{other.specifier}
            tags: [multi]
        """,
    )
    report = tmp_path / "report.json"
    done = invoke("sync", "--report", str(report), str(spec))
    assert done.returncode == 0, done.stderr + done.out
    outcomes = _report(report)
    assert set(outcomes) == {
        f"containers-storage:{host}/{repo}:v1",
        f"containers-storage:{host}/{repo}:v2",
        f"containers-storage:{other.specifier}{host}/{repo}:multi",
    }
    assert {outcome for outcome, _ in outcomes.values()} == {"copied"}
    for tag, image in images.items():
        stored = private_storage.inspect(f"{host}/{repo}:{tag}")
        assert stored is not None and f"sha256:{stored['Id']}" == image.config_digest
    # A multi-arch image: this host's platform (linux/amd64 first in the generated list).
    stored = other.inspect(f"{host}/{repo}:multi")
    assert stored is not None and f"sha256:{stored['Id']}" == index.images[0].config_digest
    # podman keeps no manifest digest to compare: a re-run copies again, unless skip-existing.
    done = invoke("sync", "--report", str(report), str(spec))
    assert done.returncode == 0, done.stderr + done.out
    assert {outcome for outcome, _ in _report(report).values()} == {"copied"}
    spec.write_text(spec.read_text().replace("sync:\n", "defaults:\n  skip-existing: true\nsync:\n"))
    private_storage.podman("rmi", f"{host}/{repo}:v2")
    done = invoke("sync", "--report", str(report), str(spec))
    assert done.returncode == 0, done.stderr + done.out
    assert _report(report) == {
        f"containers-storage:{host}/{repo}:v1": ("skipped", "exists (--skip-existing)"),
        f"containers-storage:{host}/{repo}:v2": ("copied", ""),
        f"containers-storage:{other.specifier}{host}/{repo}:multi": ("skipped", "exists (--skip-existing)"),
    }


def test_a_bad_storage_specifier_is_one_plan_error(
    registry_anon: RegistryServer, private_storage: PrivateStorage, tmp_path: Path, rng_seed: int
) -> None:
    host, repo = registry_anon.host, f"cs-{secrets.token_hex(4)}/app"
    push_image_sync(registry_anon, repo, "v1", make_image(rng_seed))
    spec = write_spec(
        tmp_path,
        f"""\
        registries:
          {host}: {{tls-verify: false}}
        sync:
          - from: {host}/{repo}
            to: containers-storage:[vfs@relative]
        """,
    )
    done = invoke("sync", str(spec))
    assert done.returncode != 0
    assert "graph root 'relative' is not an absolute path" in done.stderr + done.out
    assert "Traceback" not in done.stderr
    assert private_storage.images() == []
