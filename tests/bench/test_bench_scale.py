"""bench.scale: the scripted registry speaks enough Distribution API for a real sync client (skopeo)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import aiohttp
import yaml

from bench.scale import ScriptedRegistry, SyntheticImages


def test_skopeo_syncs_the_scripted_registry_with_manifest_work_only(tmp_path: Path) -> None:
    images = SyntheticImages(repos=3, tags_per_repo=4)
    registry = ScriptedRegistry(images)
    registry.start()
    try:
        spec = {registry.hosts["source"]: {"images": {repo: [] for repo in images.tags}, "tls-verify": False}}
        (tmp_path / "sync.yaml").write_text(yaml.safe_dump(spec))
        argv = ["skopeo", "sync", "--all", "--preserve-digests", "--src", "yaml", "--dest", "docker"]
        argv += ["--dest-tls-verify=false", str(tmp_path / "sync.yaml"), f"{registry.hosts['dest']}/mirror"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr[-500:]
    finally:
        registry.stop()
    assert registry.missing("mirror") == [] and registry.bad_puts == []
    assert registry.counts["dest"]["PUT"] == 12
    # Every blob was already "there": nothing was uploaded.
    assert registry.counts["dest"]["POST"] == registry.counts["dest"]["PATCH"] == 0
    assert sum(len(tags) for tags in registry.received.values()) == 24  # 12 tags + 12 by digest


def test_tag_list_pagination_and_rejection_of_unknown_manifests() -> None:
    images = SyntheticImages(repos=1, tags_per_repo=7)
    registry = ScriptedRegistry(images)
    registry.start()

    async def scenario() -> tuple[list[str], int]:
        collected: list[str] = []
        url: str | None = f"http://{registry.hosts['source']}/v2/proj/svc-000/tags/list?n=3"
        async with aiohttp.ClientSession() as session:
            while url is not None:
                async with session.get(url) as resp:
                    collected += (await resp.json())["tags"]
                    link = resp.headers.get("Link")
                url = (
                    None if link is None else f"http://{registry.hosts['source']}{link[1 : link.index('>')]}"
                )
            put = f"http://{registry.hosts['dest']}/v2/mirror/x/manifests/t"
            async with session.put(put, data=b"{}", headers={"Content-Type": "application/json"}) as resp:
                return collected, resp.status

    try:
        tags, status = asyncio.run(scenario())
    finally:
        registry.stop()
    assert tags == [f"1.0.{i}" for i in range(7)]
    assert status == 400 and registry.bad_puts == ["mirror/x:t"]
