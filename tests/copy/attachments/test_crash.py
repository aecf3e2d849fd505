"""kill -9 between a subject and its attachments, then a re-run that converges (real registries,
the fault proxy in front of the destination firing SIGKILL at the chosen request)."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Literal

import anyio
import pytest

from tests.helpers import cli_process
from tests.helpers.attachments import (
    SBOM_TYPE,
    cosign_signature,
    fallback_tag,
    push_artifact,
    push_referrers,
    referrer,
)
from tests.helpers.fault_proxy import Fault, FaultProxy, RecordedRequest
from tests.helpers.images import get_manifest, list_tags, make_image, push_image
from tests.helpers.registry import RegistryFactory, RegistryServer

pytestmark = pytest.mark.anyio

DIGEST_PUT = r"/v2/.+/manifests/sha256:[0-9a-f]{64}"
FALLBACK_PUT = r"/v2/.+/manifests/sha256-[0-9a-f]{64}"
SIG_PUT = r"/v2/.+/manifests/sha256-[0-9a-f]{64}\.sig"

POINTS: list[tuple[str, str, Literal["before", "after"]]] = [
    ("subject written, first referrer not yet", DIGEST_PUT, "before"),
    ("referrer written, fallback tag not yet", FALLBACK_PUT, "before"),
    ("fallback tag written, cosign tag not yet", SIG_PUT, "before"),
    ("cosign tag written, the run not finished", SIG_PUT, "after"),
]


async def _orphans(server: RegistryServer, repo: str) -> list[str]:
    """Attachments whose subject is missing: tags naming an absent digest, index entries absent."""
    problems = []
    for tag in await list_tags(server, repo):
        match = re.fullmatch(r"sha256-([0-9a-f]{64})(\.\w+)?", tag)
        if match is None:
            continue
        try:
            await get_manifest(server, repo, f"sha256:{match.group(1)}")
        except Exception:
            problems.append(f"{tag}: subject missing")
        if match.group(2) is None:
            for entry in json.loads((await get_manifest(server, repo, tag))[1])["manifests"]:
                try:
                    await get_manifest(server, repo, entry["digest"])
                except Exception:
                    problems.append(f"{tag}: lists missing {entry['digest']}")
    return problems


@pytest.mark.parametrize(("label", "path", "when"), POINTS, ids=[p[0] for p in POINTS])
async def test_kill_9_between_subject_and_attachments_then_rerun(
    make_registry: RegistryFactory, tmp_path: Path, label: str, path: str, when: Literal["before", "after"]
) -> None:
    source, destination = make_registry("anon"), make_registry("anon")
    image = make_image("crash-att", fmt="oci")
    digest = await push_image(source, "proj/app", "v1", image)
    await push_referrers(source, "proj/app", digest, referrer(digest, image.size, SBOM_TYPE, "crash"))
    await push_artifact(source, "proj/app", f"{fallback_tag(digest)}.sig", cosign_signature(digest, "crash"))
    holder: list[cli_process.CliProcess] = []

    def kill(record: RecordedRequest) -> None:
        os.kill(holder[0].pid, signal.SIGKILL)

    with FaultProxy(destination.host, seed=13) as proxy:
        proxy.add_rule(Fault.on_request(kill, when), method="PUT", path=path, nth=1)
        args = ["sync", "--src", "docker", "--dest", "docker", "--src-tls-verify=false"]
        args += ["--dest-tls-verify=false", "--retry-times", "1", "--retry-delay", "50ms"]
        args += [f"{source.host}/proj/app", f"{proxy.address}/mirror"]
        holder.append(cli_process.start(args, directory=tmp_path / "killed"))
        assert await anyio.to_thread.run_sync(holder[0].wait, 60) == -signal.SIGKILL, label
        assert await _orphans(destination, "mirror/app") == []
        assert "v1" in await list_tags(destination, "mirror/app")  # the subject was written first
        proxy.clear_rules()
        again = cli_process.start(args, directory=tmp_path / "rerun")
        assert await anyio.to_thread.run_sync(again.wait, 60) == 0, again.output
    assert sorted(await list_tags(destination, "mirror/app")) == sorted(await list_tags(source, "proj/app"))
    for tag in await list_tags(source, "proj/app"):
        assert (await get_manifest(destination, "mirror/app", tag))[1] == (
            await get_manifest(source, "proj/app", tag)
        )[1]
    assert await _orphans(destination, "mirror/app") == []
