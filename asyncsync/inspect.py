"""skopeo's ``inspect`` output, built from a manifest and its config; pure apart from :func:`resolve_image`.

The JSON keys, their order and their encoding follow skopeo (``cmd/skopeo/inspect/output.go``
and containers/image's ``Inspect`` methods): ``Name`` (omitted when empty), ``Tag`` (schema 1
only), ``Digest`` (of the manifest the reference names: an index's digest for a multi-arch
image), ``RepoTags``, ``Created``, ``DockerVersion``, ``Labels``, ``Architecture``, ``Variant``
(only when set; skopeo 1.9 never prints it), ``Os``, ``Layers``, ``LayersData``, ``Env``.
Config-derived fields come from the platform image chosen from an index.

``--config`` output is the config re-encoded through the OCI ``v1.Image`` structure, exactly as
skopeo does (unknown keys dropped, Go field order, 4-space indent).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from asyncsync.digest import Digest
from asyncsync.errors import DigestMismatchError, ManifestError
from asyncsync.gotemplate import (
    NIL_MAP,
    NIL_POINTER,
    NIL_SLICE,
    GoStruct,
    GoTime,
    go_json,
    is_json_format,
    normalize_format,
    render_template,
)
from asyncsync.jsondoc import load_json_object
from asyncsync.manifest import (
    OCI_CONFIG,
    OCI_MANIFEST,
    ImageIndex,
    ImageManifest,
    Platform,
    Schema1Manifest,
    choose_platform,
    manifest_digest,
    no_instance_message,
    parse_manifest,
)

_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)
GO_ZERO_TIME = GoTime("0001-01-01T00:00:00Z", "0001-01-01 00:00:00 +0000 UTC")


def go_time(text: Any, what: str = "created") -> GoTime:
    """Parse an RFC 3339 time as Go does and return its JSON (RFC3339Nano) and ``String()`` forms."""
    match = _TIME.match(text) if isinstance(text, str) else None
    if match is None:
        raise ManifestError(f"image config: invalid {what} time {text!r}")
    date, clock, fraction, zulu, sign, hours, minutes = match.groups()
    fraction = (fraction or "")[:9].rstrip("0")
    frac = f".{fraction}" if fraction else ""
    if zulu or (hours == "00" and minutes == "00"):
        return GoTime(f"{date}T{clock}{frac}Z", f"{date} {clock}{frac} +0000 UTC")
    offset = f"{sign}{hours}{minutes}"
    return GoTime(f"{date}T{clock}{frac}{sign}{hours}:{minutes}", f"{date} {clock}{frac} {offset} {offset}")


@dataclass(frozen=True, slots=True)
class LayerData:
    """One ``LayersData`` entry; ``size`` is -1 and ``mime_type`` empty when unknown (schema 1)."""

    mime_type: str
    digest: str
    size: int
    annotations: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class InspectInfo:
    """The fields of skopeo's inspect output (see the module docstring for their meaning)."""

    digest: Digest
    name: str = ""
    tag: str = ""
    repo_tags: tuple[str, ...] = ()
    created: GoTime | None = None
    docker_version: str = ""
    labels: dict[str, str] | None = None
    architecture: str = ""
    variant: str = ""
    os: str = ""
    layers: tuple[str, ...] = ()
    layers_data: tuple[LayerData, ...] = ()
    env: tuple[str, ...] | None = None

    def to_go(self) -> GoStruct:
        """The value ``--format`` templates see (field names as in skopeo's ``inspect.Output``)."""
        layers_data = [
            GoStruct(
                "types.ImageInspectLayer",
                {
                    "MIMEType": layer.mime_type,
                    "Digest": layer.digest,
                    "Size": layer.size,
                    "Annotations": layer.annotations if layer.annotations is not None else NIL_MAP,
                },
            )
            for layer in self.layers_data
        ]
        return GoStruct(
            "inspect.Output",
            {
                "Name": self.name,
                "Tag": self.tag,
                "Digest": str(self.digest),
                "RepoTags": list(self.repo_tags),
                "Created": self.created if self.created is not None else NIL_POINTER,
                "DockerVersion": self.docker_version,
                "Labels": self.labels if self.labels is not None else NIL_MAP,
                "Architecture": self.architecture,
                "Variant": self.variant,
                "Os": self.os,
                "Layers": list(self.layers),
                "LayersData": layers_data,
                "Env": list(self.env) if self.env is not None else NIL_SLICE,
            },
        )

    def to_json(self) -> str:
        """skopeo's ``json.MarshalIndent(output, "", "    ")`` text (no trailing newline)."""
        fields = dict(self.to_go().fields)
        if not self.name:
            del fields["Name"]
        if not self.tag:
            del fields["Tag"]
        if not self.variant:
            del fields["Variant"]
        return go_json(GoStruct("inspect.Output", fields), indent=4)

    def render(self, fmt: str | None) -> str:
        """The text ``inspect`` prints for ``--format fmt`` (JSON when empty), newline-terminated."""
        if not fmt or is_json_format(fmt):
            return self.to_json() + "\n"
        return render_template(normalize_format(fmt), self.to_go())


def _load_config(config: bytes) -> dict[str, Any]:
    return load_json_object(config, "image config", ManifestError)


def _object(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (Go decodes a missing struct as zero)."""
    return value if isinstance(value, dict) else {}


def _str_map(value: Any, what: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ManifestError(f"image config: {what} must map strings to strings")
    return dict(value)


def _str_list(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"image config: {what} must be a list of strings")
    return list(value)


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ManifestError(f"image config: {key!r} must be a string")
    return value


def inspect_image(manifest: ImageManifest, config: bytes) -> InspectInfo:
    """Inspect fields of a Docker v2s2 or OCI image from its manifest and config blob.

    ``Digest``/``Name``/``RepoTags`` are left for the caller (they depend on the reference).
    An OCI manifest whose config is not an image config (an artifact) is refused, as skopeo does.
    """
    if manifest.media_type == OCI_MANIFEST and manifest.config.media_type != OCI_CONFIG:
        raise ManifestError(
            f"unsupported image-specific operation on artifact with type {manifest.config.media_type!r}"
        )
    data = _load_config(config)
    inner = data.get("config")
    if inner is not None and not isinstance(inner, dict):
        raise ManifestError("image config: 'config' must be an object")
    created_raw = data.get("created")
    if created_raw is not None:
        created: GoTime | None = go_time(created_raw)
    else:
        # Docker's schema2 config has a non-pointer time (zero when absent); OCI's is a pointer.
        created = GO_ZERO_TIME if manifest.media_type != OCI_MANIFEST else None
    layers = tuple(str(layer.digest) for layer in manifest.layers)
    layers_data = tuple(
        LayerData(layer.media_type, str(layer.digest), layer.size, dict(layer.annotations) or None)
        for layer in manifest.layers
    )
    env = _str_list((inner or {}).get("Env"), "Env")
    return InspectInfo(
        digest=manifest.digest,
        created=created,
        docker_version=_str(data, "docker_version"),
        labels=_str_map((inner or {}).get("Labels"), "Labels"),
        architecture=_str(data, "architecture"),
        variant=_str(data, "variant"),
        os=_str(data, "os"),
        layers=layers,
        layers_data=layers_data,
        env=tuple(env) if env is not None else None,
    )


def inspect_schema1(manifest: Schema1Manifest) -> InspectInfo:
    """Inspect fields of a schema 1 manifest (config comes from ``history[0].v1Compatibility``)."""
    try:
        document = orjson.loads(manifest.raw)
        first = orjson.loads(manifest.history[0]["v1Compatibility"]) if manifest.history else {}
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise ManifestError("schema 1 manifest has an invalid v1Compatibility entry") from None
    if not isinstance(first, dict):
        raise ManifestError("schema 1 manifest has an invalid v1Compatibility entry")
    inner = _object(first.get("config"))
    created_raw = first.get("created")
    env = _str_list(inner.get("Env"), "Env")
    # fsLayers are listed newest first; skopeo reports them base layer first.
    layers = tuple(str(d) for d in reversed(manifest.fs_layers))
    return InspectInfo(
        digest=manifest.digest,
        tag=str(document.get("tag") or ""),
        created=go_time(created_raw) if created_raw is not None else GO_ZERO_TIME,
        docker_version=_str(first, "docker_version"),
        labels=_str_map(inner.get("Labels"), "Labels"),
        architecture=_str(first, "architecture"),
        variant=_str(first, "variant"),
        os=_str(first, "os"),
        layers=layers,
        layers_data=tuple(LayerData("", d, -1) for d in layers),
        env=tuple(env) if env is not None else None,
    )


# ------------------------------------------------------------------------------- --config


def _omit_empty(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {k: v for k, v in pairs if v not in (None, "", [], {}, False)}


def oci_config_view(config: bytes) -> GoStruct:
    """The config as containers/image's OCI ``v1.Image`` re-encodes it (skopeo ``inspect --config``).

    Fields keep Go's declaration order (JSON key names as field names); ``omitempty`` fields
    that are empty are left out; unknown keys are dropped. Maps (``Labels``...) stay dicts.
    """
    data = _load_config(config)
    inner = _object(data.get("config"))
    created = data.get("created")
    rootfs = _object(data.get("rootfs"))
    history = []
    for entry in data.get("history") or []:
        if not isinstance(entry, dict):
            raise ManifestError("image config: history entries must be objects")
        when = entry.get("created")
        history.append(
            GoStruct(
                "v1.History",
                _omit_empty(
                    [
                        ("created", go_time(when, "history").rfc3339 if when is not None else None),
                        ("created_by", entry.get("created_by")),
                        ("author", entry.get("author")),
                        ("comment", entry.get("comment")),
                        ("empty_layer", bool(entry.get("empty_layer"))),
                    ]
                ),
            )
        )

    def set_of(value: Any) -> dict[str, Any] | None:
        return {k: GoStruct("struct {}", {}) for k in value} if isinstance(value, dict) else None

    image_config = _omit_empty(
        [
            ("User", inner.get("User")),
            ("ExposedPorts", set_of(inner.get("ExposedPorts"))),
            ("Env", _str_list(inner.get("Env"), "Env")),
            ("Entrypoint", _str_list(inner.get("Entrypoint"), "Entrypoint")),
            ("Cmd", _str_list(inner.get("Cmd"), "Cmd")),
            ("Volumes", set_of(inner.get("Volumes"))),
            ("WorkingDir", inner.get("WorkingDir")),
            ("Labels", _str_map(inner.get("Labels"), "Labels")),
            ("StopSignal", inner.get("StopSignal")),
            ("ArgsEscaped", bool(inner.get("ArgsEscaped"))),
        ]
    )
    view: dict[str, Any] = {}
    if created is not None:
        view["created"] = go_time(created).rfc3339
    view.update(_omit_empty([("author", data.get("author"))]))
    view["architecture"] = _str(data, "architecture")
    view.update(_omit_empty([("variant", data.get("variant"))]))
    view["os"] = _str(data, "os")
    view.update(
        _omit_empty([("os.version", data.get("os.version")), ("os.features", data.get("os.features"))])
    )
    view["config"] = GoStruct("v1.ImageConfig", image_config)
    diff_ids = rootfs.get("diff_ids")
    view["rootfs"] = GoStruct("v1.RootFS", {"type": str(rootfs.get("type") or ""), "diff_ids": diff_ids})
    view.update(_omit_empty([("history", history)]))
    return GoStruct("v1.Image", view)


_CONFIG_GO_NAMES = {
    "created": "Created",
    "author": "Author",
    "architecture": "Architecture",
    "variant": "Variant",
    "os": "OS",
    "os.version": "OSVersion",
    "os.features": "OSFeatures",
}


def render_config(config: bytes, fmt: str | None) -> str:
    """``inspect --config`` output: the OCI view as indented JSON, or rendered by a ``--format``."""
    view = oci_config_view(config)
    if not fmt or is_json_format(fmt):
        return go_json(view, indent=4) + "\n"
    return render_template(normalize_format(fmt), _config_go_value(view))


def _config_go_value(view: GoStruct) -> GoStruct:
    """The OCI view with Go field names and typed nils, as ``--config --format`` templates see it."""
    top = view.fields
    inner = top["config"].fields
    go_config = GoStruct(
        "v1.ImageConfig",
        {
            "User": inner.get("User", ""),
            "ExposedPorts": inner.get("ExposedPorts", NIL_MAP),
            "Env": inner.get("Env", NIL_SLICE),
            "Entrypoint": inner.get("Entrypoint", NIL_SLICE),
            "Cmd": inner.get("Cmd", NIL_SLICE),
            "Volumes": inner.get("Volumes", NIL_MAP),
            "WorkingDir": inner.get("WorkingDir", ""),
            "Labels": inner.get("Labels", NIL_MAP),
            "StopSignal": inner.get("StopSignal", ""),
            "ArgsEscaped": inner.get("ArgsEscaped", False),
        },
    )
    fields: dict[str, Any] = {}
    for key, go_name in _CONFIG_GO_NAMES.items():
        value = top.get(key)
        if key == "created":
            value = go_time(value) if value is not None else NIL_POINTER
        elif key == "os.features":
            value = value if value is not None else NIL_SLICE
        fields[go_name] = value if value is not None else ""
    fields["Config"] = go_config
    rootfs = top["rootfs"].fields
    fields["RootFS"] = GoStruct(
        "v1.RootFS", {"Type": rootfs["type"], "DiffIDs": rootfs["diff_ids"] or NIL_SLICE}
    )
    fields["History"] = [
        GoStruct(
            "v1.History",
            {
                "Created": go_time(h.fields["created"]) if "created" in h.fields else NIL_POINTER,
                "CreatedBy": h.fields.get("created_by", ""),
                "Author": h.fields.get("author", ""),
                "Comment": h.fields.get("comment", ""),
                "EmptyLayer": h.fields.get("empty_layer", False),
            },
        )
        for h in top.get("history", [])
    ] or NIL_SLICE
    return GoStruct("v1.Image", fields)


# ------------------------------------------------------------------------------- resolving


@dataclass(frozen=True, slots=True)
class ResolvedImage:
    """What ``inspect`` needs: the named manifest (maybe an index) and the chosen platform image."""

    raw: bytes
    media_type: str
    digest: Digest
    image: ImageManifest | Schema1Manifest
    platform: Platform | None = None


#: ``get_manifest(instance)`` as ImageSource has it: ``(raw bytes, media type)``.
ManifestGetter = Callable[[Digest | None], Awaitable[tuple[bytes, str]]]


async def resolve_image(get_manifest: ManifestGetter, platform: Platform, *, name: str = "") -> ResolvedImage:
    """Fetch the named manifest and, for an index, the child for ``platform`` (as skopeo picks it).

    Raises :class:`ManifestError` (prefixed with ``name``) when a manifest does not parse, the
    index has no image for the platform, or indexes nest; :class:`DigestMismatchError` when a
    child's bytes do not match the index entry.
    """
    prefix = f"{name}: " if name else ""
    raw, media_type = await get_manifest(None)
    try:
        top = parse_manifest(raw, media_type, digest=manifest_digest(raw))
    except ManifestError as exc:
        raise ManifestError(f"{prefix}{exc}") from None
    if not isinstance(top, ImageIndex):
        return ResolvedImage(raw, top.media_type, top.digest, top)
    entry = choose_platform(top, platform.os, platform.architecture, platform.variant)
    if entry is None:
        # skopeo's text first ("Error parsing manifest for image: choosing image instance: ..."), then ours.
        missing = no_instance_message(top, platform)
        raise ManifestError(
            f"{prefix}parsing manifest for image: choosing image instance: {missing} "
            "(use --override-os/--override-arch/--override-variant to pick another)"
        )
    child_raw, child_type = await get_manifest(entry.digest)
    if manifest_digest(child_raw) != entry.digest:
        raise DigestMismatchError(
            f"{prefix}image index entry {entry.digest}: manifest content has another digest"
        )
    try:
        child = parse_manifest(child_raw, child_type or entry.media_type, digest=entry.digest)
    except ManifestError as exc:
        raise ManifestError(f"{prefix}image index entry {entry.digest}: {exc}") from None
    if isinstance(child, ImageIndex):
        raise ManifestError(f"{prefix}image index entry {entry.digest} is itself an index")
    return ResolvedImage(raw, top.media_type, top.digest, child, entry.platform)


def with_reference(info: InspectInfo, *, name: str, digest: Digest, repo_tags: list[str]) -> InspectInfo:
    """``info`` with the reference-dependent fields filled in."""
    return replace(info, name=name, digest=digest, repo_tags=tuple(repo_tags))
