"""No password, token, Basic header, upload ``_state`` or signed URL query appears in anything asyncsync
prints or writes: stdout, stderr (with ``--debug``: logs and tracebacks), the sync report, cache files.

Canary passwords are set on real registries; every token, ``Authorization`` value and ``_state`` the
fault proxies see during the runs joins the canaries; faults force the error and retry paths (a reset
upload whose aiohttp error names the ``_state`` URL, a CDN refusing a signed URL, a wrong password).
Files the user gave the secret to (the auth file ``login`` writes, the spec) are the only exceptions.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import yaml

from tests.conftest import RegistryFactory
from tests.helpers import cli_process
from tests.helpers.fault_proxy import Fault, FaultProxy, RecordedRequest
from tests.helpers.images import make_image, make_multiarch, push_image, push_index
from tests.helpers.registry import RegistryServer

SIG = f"canary-sig-{secrets.token_hex(4)}"
AMZ = f"canary-amz-{secrets.token_hex(4)}"
BLOB_GET = r"/v2/.+/blobs/sha256:[0-9a-f]{64}"


class Canaries:
    """Secrets to look for, grown from what the proxies saw."""

    def __init__(self, *fixed: str) -> None:
        self.values: set[str] = {value for value in fixed if value}

    def add_records(self, records: list[RecordedRequest]) -> None:
        for record in records:
            auth = record.authorization
            if auth:
                self.values.add(auth)
                self.values.add(auth.split(" ", 1)[-1])
            for key, value in parse_qsl(record.query):
                if key in ("_state", "sig", "X-Amz-Signature") and len(value) >= 8:
                    self.values.add(value)

    def found_in(self, text: str) -> list[str]:
        return sorted(value[:16] + "..." for value in self.values if value in text)


@pytest.fixture
def servers(make_registry: RegistryFactory) -> Iterator[tuple[RegistryServer, RegistryServer]]:
    source = make_registry("token", password=f"canary-src-{secrets.token_hex(6)}")
    destination = make_registry("basic", password=f"canary-dst-{secrets.token_hex(6)}")
    yield source, destination


def _basic(user: str | None, password: str | None) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _cdn_token(source: RegistryServer) -> object:
    def header(record: RecordedRequest) -> str:
        assert source.token_service is not None
        repo = record.path.split("/blobs/")[0].removeprefix("/v2/")
        return "Bearer " + source.token_service.issue_token(source.username, [f"repository:{repo}:pull"])

    return header


def _written_files(root: Path, excluded: set[Path]) -> str:
    texts = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.resolve() not in excluded:
            texts.append(f"--- {path}\n{path.read_bytes().decode(errors='replace')}")
    return "\n".join(texts)


@pytest.mark.anyio
async def test_no_secret_in_any_output(
    servers: tuple[RegistryServer, RegistryServer], tmp_path: Path, isolated_home: Path
) -> None:
    source, destination = servers
    assert source.token_service is not None
    canaries = Canaries(
        source.password or "",
        destination.password or "",
        _basic(source.username, source.password),
        _basic(destination.username, destination.password),
        SIG,
        AMZ,
    )
    await push_image(source, "leak/app", "v1", make_image("leak-app", layers=2, layer_size=40_000))
    await push_index(source, "leak/multi", "v1", make_multiarch("leak-multi", layers=1, layer_size=40_000))
    work = tmp_path / "work"
    spec = tmp_path / "spec.yaml"
    outputs: list[str] = []

    with (
        FaultProxy(source.host, seed=3) as source_proxy,
        FaultProxy(destination.host, seed=3) as destination_proxy,
    ):
        cdn = source_proxy.add_alias("127.0.0.2", upstream_authorization=_cdn_token(source))  # type: ignore[arg-type]
        source_proxy.add_rule(
            Fault.redirect(cdn, f"sig={SIG}&X-Amz-Signature={AMZ}"),
            method="GET",
            path=BLOB_GET,
            listener=source_proxy.address,
            times=0,
        )
        source_proxy.add_rule(Fault.error(503), method="GET", listener=cdn.removeprefix("http://"), nth=2)
        destination_proxy.add_rule(Fault.reset_request(), method="PATCH", nth=2)
        destination_proxy.add_rule(Fault.error(503), method="PUT", query="digest=", nth=3)
        spec.write_text(
            yaml.safe_dump(
                {
                    source_proxy.address: {
                        "images": {"leak/app": ["v1"], "leak/multi": ["v1"]},
                        "tls-verify": False,
                        "credentials": {"username": source.username, "password": source.password},
                    }
                }
            )
        )
        dest_creds = f"{destination.username}:{destination.password}"
        wrong_creds = f"{destination.username}:canary-wrong-{secrets.token_hex(4)}"
        canaries.values.add(wrong_creds.split(":", 1)[1])
        authfile = tmp_path / "auth" / "auth.json"
        runs = {
            "sync": [
                "--debug", "sync", "--src", "yaml", "--dest", "docker", "--all", "--chunk-size", "16KiB",
                "--dest-tls-verify=false", "--dest-creds", dest_creds, "--report", str(work / "report.json"),
                str(spec), f"{destination_proxy.address}/mirror",
            ],
            "copy-wrong-password": [
                "--debug", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                "--src-creds", f"{source.username}:{source.password}", "--dest-creds", wrong_creds,
                f"docker://{source_proxy.address}/leak/app:v1", f"docker://{destination_proxy.address}/leak/x:v1",
            ],
            "login": [
                "--debug", "login", "--tls-verify=false", "--authfile", str(authfile),
                "-u", destination.username or "", "-p", destination.password or "", destination_proxy.address,
            ],
            "list-tags": [
                "--debug", "list-tags", "--tls-verify=false", "--authfile", str(authfile),
                f"docker://{destination_proxy.address}/mirror/app",
            ],
            "inspect": [
                "--debug", "inspect", "--tls-verify=false", "--creds", f"{source.username}:{source.password}",
                f"docker://{source_proxy.address}/leak/multi:v1",
            ],
        }  # fmt: skip
        codes = {}
        for name, args in runs.items():
            child = cli_process.start(args, directory=work / name, cwd=tmp_path)
            codes[name] = child.wait(60)
            outputs.append(f"=== {name} (exit {codes[name]})\n{child.output}")
        # Cut the CDN off for good: the failure message of a signed-URL GET must not show the signature.
        source_proxy.clear_rules()
        source_proxy.add_rule(
            Fault.redirect(cdn, f"sig={SIG}&X-Amz-Signature={AMZ}"),
            method="GET",
            path=BLOB_GET,
            listener=source_proxy.address,
            times=0,
        )
        source_proxy.add_rule(Fault.error(403), method="GET", listener=cdn.removeprefix("http://"), times=0)
        failing = cli_process.start(
            [
                "--debug", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                "--src-creds", f"{source.username}:{source.password}", "--dest-creds", dest_creds,
                f"docker://{source_proxy.address}/leak/app:v1", f"docker://{destination_proxy.address}/leak/cut:v1",
            ],
            directory=work / "copy-cdn-refuses",
        )  # fmt: skip
        codes["copy-cdn-refuses"] = failing.wait(60)
        outputs.append(f"=== copy-cdn-refuses\n{failing.output}")
        canaries.add_records(source_proxy.records())
        canaries.add_records(destination_proxy.records())

    assert codes["sync"] == 0, outputs[0]
    assert codes["copy-wrong-password"] != 0 and codes["copy-cdn-refuses"] != 0
    assert codes["login"] == 0 and codes["list-tags"] == 0 and codes["inspect"] == 0, outputs
    assert (work / "report.json").exists()
    assert destination_proxy.injected()["reset during request body"] == 1
    assert source_proxy.injected()["307 to another host"] > 0
    printed = "\n".join(outputs)
    assert "Traceback" in printed, printed
    assert "_state=REDACTED" in printed, "no upload URL was logged: the redaction path went untested"
    assert "HTTP 403" in printed and "HTTP 401" in printed, printed
    assert len(canaries.values) > 10
    leaked = canaries.found_in(printed)
    assert not leaked, f"secrets in output: {leaked}"
    excluded = {authfile.resolve(), spec.resolve()}
    written = _written_files(tmp_path, excluded) + _written_files(isolated_home, excluded)
    leaked = canaries.found_in(written)
    assert not leaked, f"secrets in written files: {leaked}"
