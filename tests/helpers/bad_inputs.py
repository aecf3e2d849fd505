"""A corpus of bad inputs for the command line: references, sync specs, manifests and local layouts.

Every case must end with a non-zero exit and exactly one line on stderr, ``Error: ...``, and no
traceback anywhere (tracebacks are for ``--debug``). Manifests come from
:class:`~tests.helpers.fake_registry.FakeRegistry` (a real registry refuses to store them); layouts and
specs are written under a work directory. :func:`build_cases` makes the corpus, :func:`run_cases` runs
it in fast CLI children (:mod:`tests.helpers.cli_process`) a few at a time.
"""

from __future__ import annotations

import json
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import cli_process
from tests.helpers.fake_registry import Canned, FakeRegistry
from tests.helpers.images import digest_of, make_image, make_multiarch

__all__ = ["BadInput", "Outcome", "build_cases", "run_cases"]

HEX = "a" * 64
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
REFERENCES = [
    "docker://h.example/Repo:v1",
    "docker://h.example/repo:bad tag",
    "docker://h.example/repo:v1\n",
    "docker://h.example/repo\n:v1",
    "docker://h.example\n/repo:v1",
    "docker://h.example/../repo:v1",
    "docker://h.example/repo/..:v1",
    "docker://h.example/repo:../v1",
    "docker://h.example/re%2Fpo:v1",
    "docker://h.example/repo?x=1:v1",
    "docker://h.example:99999/repo:v1",
    "docker://h.example:0/repo:v1",
    "docker://[::1\n]:5000/repo:v1",
    "docker://",
    "docker:h.example/repo",
    "nosuch://h.example/repo",
    "no-colon-at-all",
    "docker://h.example/" + "a" * 300 + ":v1",
    "docker://h.example/repo:" + "t" * 129,
]
DIGESTS = [
    "sha256:",
    f"sha256:{HEX}\n",
    f"sha256:{HEX}/../../x",
    f"sha256:{HEX}%2F",
    f"sha256:{HEX[:-1]}",
    f"sha256:{HEX.upper()}",
    f"md5:{HEX[:32]}",
    "sha256:../../../../etc/passwd",
    f"sha512:{HEX}",
]
SPECS = {
    "not YAML": "{: [",
    "empty": "",
    "a list": "- a\n- b\n",
    "registry not a mapping": "127.0.0.1:1: 5\n",
    "images not a mapping": "127.0.0.1:1:\n  images: [a, b]\n",
    "tags not a list": "127.0.0.1:1:\n  images:\n    repo: 5\n",
    "bad tag": "127.0.0.1:1:\n  images:\n    repo: ['bad tag']\n",
    "bad digest": "127.0.0.1:1:\n  images:\n    repo: ['sha256:1234']\n",
    "bad repository": "127.0.0.1:1:\n  images:\n    Bad/Repo: []\n",
    "bad regex": "127.0.0.1:1:\n  images-by-tag-regex:\n    repo: '(['\n",
    "bad semver": "127.0.0.1:1:\n  images-by-semver:\n    repo: '>>> 1'\n",
    "tls-verify not a boolean": "127.0.0.1:1:\n  tls-verify: maybe\n  images:\n    repo: []\n",
    "regex entries not a mapping": "127.0.0.1:1:\n  images-by-tag-regex: [a, b]\n",
    "unknown key": "127.0.0.1:1:\n  imagez:\n    repo: []\n",
    "bad registry host": "'bad host!':\n  images:\n    repo: []\n",
    "duplicate registry": "127.0.0.1:1:\n  images: {a: []}\n127.0.0.1:1:\n  images: {b: []}\n",
    "null tag": "127.0.0.1:1:\n  images:\n    repo: [null]\n",
}


@dataclass(frozen=True)
class BadInput:
    """One bad input: ``category`` (reference, spec, manifest, layout), a label, the CLI arguments."""

    category: str
    label: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    case: BadInput
    returncode: int
    stderr: str
    stdout: str

    @property
    def problem(self) -> str | None:
        """Why this outcome breaks the rule (non-zero exit, one ``Error:`` line, no traceback)."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        if self.returncode in (0, -9) or self.returncode < 0:
            return f"exit {self.returncode}"
        if "Traceback" in self.stderr + self.stdout:
            return "traceback"
        if len(lines) != 1 or not lines[0].startswith("Error: "):
            return f"stderr is not one Error line: {self.stderr[-300:]!r}"
        return None


def _blob(data: bytes) -> dict[str, object]:
    return {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "size": len(data),
        "digest": digest_of(data),
    }


def _doc(document: object) -> bytes:
    return json.dumps(document).encode()


def _manifests(fake: FakeRegistry) -> list[BadInput]:
    """Bad manifests served by ``fake`` under ``bad/<n>:v1``."""
    image = make_image("bad-manifests", layers=1, layer_size=256)
    good = json.loads(image.manifest)
    config = {**good["config"]}
    layer = _blob(b"x")
    child = {"mediaType": OCI_MANIFEST, "size": 1, "digest": f"sha256:{HEX}/x"}
    unknown = "application/x-unknown"
    documents: dict[str, tuple[str, bytes]] = {
        "not JSON": (OCI_MANIFEST, b"<html>502 Bad Gateway</html>"),
        "a JSON array": (OCI_MANIFEST, b"[1, 2]"),
        "no config": (OCI_MANIFEST, _doc({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []})),
        "unknown media type": (unknown, _doc({"schemaVersion": 2, "mediaType": unknown})),
        "layer digest with ..": (OCI_MANIFEST, _doc({**good, "layers": [{**layer, "digest": "sha256:.."}]})),
        "negative layer size": (OCI_MANIFEST, _doc({**good, "layers": [{**layer, "size": -5}]})),
        "layers not a list": (OCI_MANIFEST, _doc({**good, "layers": {"a": 1}})),
        "config digest uppercase": (
            OCI_MANIFEST,
            _doc({**good, "config": {**config, "digest": config["digest"].upper()}}),
        ),
        "index child digest bad": (
            OCI_INDEX,
            _doc({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child]}),
        ),
        "over 4 MiB": (OCI_MANIFEST, b'{"schemaVersion": 2, "pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'),
        "schemaVersion 3": (OCI_MANIFEST, _doc({**good, "schemaVersion": 3})),
    }
    cases = []
    for index, (label, (media_type, body)) in enumerate(documents.items()):
        fake.route("GET", f"/v2/bad/m{index}/manifests/v1", Canned(200, body, {"Content-Type": media_type}))
        name = f"docker://{fake.host}/bad/m{index}:v1"
        cases.append(BadInput("manifest", f"{label} (inspect)", ("inspect", "--tls-verify=false", name)))
    # Bytes that do not hash to the digest asked for, and a blob whose bytes are wrong, in a copy.
    fake.route(
        "GET",
        f"/v2/bad/pinned/manifests/sha256:{HEX}",
        Canned(200, image.manifest, {"Content-Type": image.media_type}),
    )
    cases.append(
        BadInput(
            "manifest",
            "bytes differ from the pinned digest",
            ("inspect", "--tls-verify=false", f"docker://{fake.host}/bad/pinned@sha256:{HEX}"),
        )
    )
    fake.route(
        "GET", "/v2/bad/liar/manifests/v1", Canned(200, image.manifest, {"Content-Type": image.media_type})
    )
    for digest, data in image.blobs().items():
        fake.route("GET", f"/v2/bad/liar/blobs/{digest}", Canned(200, data[::-1]))
    cases.append(
        BadInput(
            "manifest",
            "blob bytes differ from their digest (copy)",
            ("copy", "--src-tls-verify=false", f"docker://{fake.host}/bad/liar:v1", "dir:{work}/liar-out"),
        )
    )
    multi = make_multiarch("bad-loop", layers=1, layer_size=128)
    loop = json.loads(multi.manifest)
    loop["manifests"][0] = {**loop["manifests"][0], "mediaType": OCI_INDEX, "digest": f"sha256:{HEX}"}
    fake.route(
        "GET",
        "/v2/bad/loop/manifests/v1",
        Canned(200, json.dumps(loop).encode(), {"Content-Type": multi.media_type}),
    )
    fake.route(
        "GET",
        f"/v2/bad/loop/manifests/sha256:{HEX}",
        Canned(200, json.dumps(loop).encode(), {"Content-Type": OCI_INDEX}),
    )
    cases.append(
        BadInput(
            "manifest",
            "index child served with other bytes (copy --all)",
            (
                "copy",
                "--all",
                "--src-tls-verify=false",
                f"docker://{fake.host}/bad/loop:v1",
                "dir:{work}/loop-out",
            ),
        )
    )
    return cases  # fmt: skip


def _layouts(work: Path) -> list[BadInput]:
    root = work / "layouts"
    root.mkdir(parents=True, exist_ok=True)
    image = make_image("bad-layouts", layers=1, layer_size=256)

    def layout(
        name: str, *, oci_layout: str | None = '{"imageLayoutVersion": "1.0.0"}', index: object = None
    ) -> Path:
        path = root / name
        (path / "blobs" / "sha256").mkdir(parents=True)
        if oci_layout is not None:
            (path / "oci-layout").write_text(oci_layout)
        if index is not None:
            (path / "index.json").write_bytes(
                index if isinstance(index, bytes) else json.dumps(index).encode()
            )
        return path

    def entry(digest: str, size: int = 10) -> dict[str, object]:
        return {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "size": size,
                    "digest": digest,
                    "annotations": {"org.opencontainers.image.ref.name": "v1"},
                }
            ],
        }

    good = entry(image.digest, len(image.manifest))
    paths = {
        "missing directory": root / "does-not-exist",
        "no oci-layout file": layout("no-marker", oci_layout=None, index=good),
        "oci-layout version 9": layout("version", oci_layout='{"imageLayoutVersion": "9.9.9"}', index=good),
        "index.json not JSON": layout("garbage-index", index=b"{nope"),
        "index.json missing": layout("no-index"),
        "index digest with ..": layout("traversal", index=entry("sha256:../../../../etc/passwd")),
        "manifest blob missing": layout("missing-blob", index=good),
        "tag not in index": layout("no-tag", index={"schemaVersion": 2, "manifests": []}),
    }
    wrong = layout("wrong-bytes", index=good)
    (wrong / "blobs" / "sha256" / image.digest.removeprefix("sha256:")).write_bytes(image.manifest + b" ")
    paths["manifest bytes differ from digest"] = wrong
    cases = [
        BadInput("layout", f"oci: {label}", ("copy", f"oci:{path}:v1", "dir:{work}/layout-out"))
        for label, path in paths.items()
    ]
    no_manifest = root / "dir-empty"
    no_manifest.mkdir()
    garbage_dir = root / "dir-garbage"
    garbage_dir.mkdir()
    (garbage_dir / "manifest.json").write_text("{nope")
    not_tar = root / "not-a.tar"
    not_tar.write_bytes(b"this is not a tar archive" * 40)
    evil = root / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        for member, data in (
            ("../evil.txt", b"x"),
            ("manifest.json", b'[{"Config": "../evil.txt", "RepoTags": ["a:b"], "Layers": []}]'),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, __import__("io").BytesIO(data))
    cases += [
        BadInput("layout", "dir: without manifest.json", ("copy", f"dir:{no_manifest}", "dir:{work}/d1")),
        BadInput("layout", "dir: manifest.json not JSON", ("copy", f"dir:{garbage_dir}", "dir:{work}/d2")),
        BadInput(
            "layout", "docker-archive: not a tar", ("copy", f"docker-archive:{not_tar}", "dir:{work}/d3")
        ),
        BadInput("layout", "oci-archive: not a tar", ("copy", f"oci-archive:{not_tar}", "dir:{work}/d4")),
        BadInput(
            "layout",
            "docker-archive: member ../evil.txt",
            ("copy", f"docker-archive:{evil}", "dir:{work}/d5"),
        ),
    ]
    return cases  # fmt: skip


def build_cases(work: Path, fake: FakeRegistry) -> list[BadInput]:
    """The whole corpus; spec files and layouts are written under ``work``."""
    cases = [BadInput("reference", repr(name), ("inspect", name)) for name in REFERENCES]
    cases += [
        BadInput("reference", f"digest {d!r}", ("inspect", f"docker://h.example/repo@{d}")) for d in DIGESTS
    ]
    specs = work / "specs"
    specs.mkdir(parents=True, exist_ok=True)
    for index, (label, text) in enumerate(SPECS.items()):
        path = specs / f"spec-{index}.yaml"
        path.write_text(text)
        args = ("sync", "--src", "yaml", "--dest", "docker", str(path), "127.0.0.1:1/mirror")
        cases.append(BadInput("spec", label, args))
    return cases + _manifests(fake) + _layouts(work)


def run_cases(cases: list[BadInput], work: Path, *, concurrency: int = 4) -> list[Outcome]:
    """Run every case in a CLI child (``{work}`` in arguments is replaced), in order of the corpus."""

    def run(index: int, case: BadInput) -> Outcome:
        args = [arg.replace("{work}", str(work)) for arg in case.args]
        child = cli_process.start(args, directory=work / "runs" / f"{index:03d}")
        code = child.wait(60)
        return Outcome(case, code, child.stderr, child.stdout)

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(run, range(len(cases)), cases))
