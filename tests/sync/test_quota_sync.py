"""Pull quotas end to end: ``asyncsync sync`` from a real registry behind a scripted quota proxy.

The proxy (tests/helpers/quota_proxy.py) is scripted because no registry we can run has a pull
quota: it adds Docker Hub's ``ratelimit-*`` headers and answers 429 ``TOOMANYREQUESTS`` once the
quota is spent. The assertions count the manifest GETs (the pulls) the proxy saw.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.images import list_tags_sync, make_image, make_layer, push_image_sync
from tests.helpers.quota_proxy import QuotaProxy
from tests.helpers.registry import RegistryFactory, RegistryServer

TAGS = [f"v{i}" for i in range(6)]


def _seed(source: RegistryServer) -> None:
    base = make_layer("quota-base", 16 * 1024)
    for tag in TAGS:
        push_image_sync(source, "lib/app", tag, make_image(f"quota-{tag}", layers=1, shared_layers=[base]))


def _sync(
    tmp_path: Path, source_host: str, dest: RegistryServer, *extra: str, debug: bool = False
) -> tuple[int, str, dict[str, Any]]:
    spec = tmp_path / "sync.yaml"
    spec.write_text(f"{source_host}:\n  tls-verify: false\n  images:\n    lib/app: [{', '.join(TAGS)}]\n")
    report = tmp_path / "report.json"
    report.unlink(missing_ok=True)
    result = run_cli(
        *(["--debug"] if debug else []),
        "sync",
        "--src",
        "yaml",
        "--dest",
        "docker",
        "--dest-tls-verify=false",
        "--no-mount-cache",
        "--report",
        str(report),
        *extra,
        str(spec),
        f"{dest.host}/mirror",
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return result.returncode, result.all_output, data


def test_quota_stops_pulls_before_the_limit_and_a_new_window_copies_the_rest(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, dest = make_registry("anon"), make_registry("anon")
    _seed(source)
    with QuotaProxy(source.host, limit=4) as proxy:
        code, output, data = _sync(tmp_path, proxy.host, dest)

        assert code == 1, output
        assert "pull quota reached" in output and proxy.host in output
        assert data["summary"]["copied"] == 4 and data["summary"]["deferred"] == 2
        assert proxy.host in data["summary"]["quota_deferred"]
        # The HEADs told the quota: exactly the 4 pulls left were spent, the limit was never hit.
        assert proxy.manifest_gets(200) == 4
        assert proxy.manifest_gets(429) == 0
        assert len(list_tags_sync(dest, "mirror/app")) == 4

        proxy.new_window()
        proxy.records.clear()
        code, output, data = _sync(tmp_path, proxy.host, dest)

        assert code == 0, output
        assert data["summary"]["copied"] == 2 and data["summary"]["skipped"] == 4
        # Nothing the first run copied is pulled again: 2 pulls for the 2 deferred images.
        assert proxy.manifest_gets() == 2
        assert sorted(list_tags_sync(dest, "mirror/app")) == TAGS


def test_reserve_leaves_pulls_unspent(make_registry: RegistryFactory, tmp_path: Path) -> None:
    source, dest = make_registry("anon"), make_registry("anon")
    _seed(source)
    with QuotaProxy(source.host, limit=5) as proxy:
        code, output, data = _sync(tmp_path, proxy.host, dest, "--pull-quota-reserve", "2")

        assert code == 1, output
        assert proxy.manifest_gets() == 3
        assert data["summary"]["copied"] == 3 and data["summary"]["deferred"] == 3
        assert proxy.remaining == 2


def test_429_stops_pulling_at_once_without_sleeping_on_retry_after(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, dest = make_registry("anon"), make_registry("anon")
    _seed(source)
    # A registry that says nothing until the 429 (and then asks for a 6-hour wait).
    with QuotaProxy(source.host, limit=2, advertise=False, retry_after=21600) as proxy:
        started = time.monotonic()
        code, output, data = _sync(tmp_path, proxy.host, dest, "--parallel", "1")
        took = time.monotonic() - started

        assert code == 1, output
        assert "TOOMANYREQUESTS" in output
        assert data["summary"]["copied"] == 2 and data["summary"]["deferred"] == 4
        # One 429, no retry storm: the other deferred images sent no GET at all.
        assert proxy.manifest_gets(429) == 1
        assert proxy.manifest_gets() == 3
        assert took < 30, f"the run waited on Retry-After ({took:.1f}s)"


def test_malformed_ratelimit_headers_are_ignored(make_registry: RegistryFactory, tmp_path: Path) -> None:
    source, dest = make_registry("anon"), make_registry("anon")
    _seed(source)
    with QuotaProxy(source.host, limit=100, malformed=True) as proxy:
        code, output, data = _sync(tmp_path, proxy.host, dest, debug=True)

        assert code == 0, output
        assert data["summary"]["copied"] == len(TAGS)
        assert "ignoring malformed ratelimit headers" in output
        assert "Traceback" not in output
