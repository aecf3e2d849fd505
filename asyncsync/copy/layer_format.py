"""What layer compression a copy asks for (skopeo's ``--dest-compress-format``/``-level``) and
the layer media types that express it.

:class:`LayerCompression` is the user's request, validated once by :meth:`LayerCompression.parse`
(an unknown format or a level out of range is a :class:`~asyncsync.errors.UsageError`, one line).
Whether a destination compresses at all is its own choice
(:attr:`asyncsync.transports.base.Capabilities.compresses_layers`: registries and ``oci:`` do,
as containers/image's ``DesiredLayerCompression``); this module only names formats and media
types. :func:`layer_compression_of` reads a layer's compression from its media type and
:func:`media_type_for` gives the media type of the same layer in another compression, refusing
zstd in a Docker v2s2 manifest with skopeo's message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from asyncsync.errors import ManifestError, UsageError
from asyncsync.manifest import (
    DOCKER_LAYER_GZIP,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_NONDIST_LAYER_GZIP,
)

Format = Literal["gzip", "zstd"]
#: The formats a layer can be (re)compressed to, with skopeo's documented level ranges
#: (skopeo-copy(1): "for zstd the accepted values are in the range 1-20, while for gzip it is 1-9").
LEVELS: dict[str, tuple[int, int]] = {"gzip": (1, 9), "zstd": (1, 20)}
#: The levels used when none is given: gzip(1)'s and zstd(1)'s defaults (containers/image uses
#: the defaults of its gzip and zstd encoders, which correspond to these).
DEFAULT_LEVELS: dict[str, int] = {"gzip": 6, "zstd": 3}
#: The format that uncompressed layers get when the user names none (as containers/image).
DEFAULT_FORMAT: Format = "gzip"

DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
OCI_NONDIST_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_NONDIST_LAYER_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

# Each family lists one layer in its three compressions (None = uncompressed); "" = not expressible.
_FAMILIES: tuple[dict[str | None, str], ...] = (
    {None: DOCKER_LAYER_TAR, "gzip": DOCKER_LAYER_GZIP, "zstd": ""},
    {None: OCI_LAYER, "gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD},
    {None: OCI_NONDIST_LAYER, "gzip": OCI_NONDIST_LAYER_GZIP, "zstd": OCI_NONDIST_LAYER_ZSTD},
)
_COMPRESSION_OF: dict[str, str | None] = {
    media_type: compression
    for family in _FAMILIES
    for compression, media_type in family.items()
    if media_type
}


@dataclass(frozen=True, slots=True)
class LayerCompression:
    """The layer compression a copy asks for.

    ``format`` (``--dest-compress-format``): layers compressed otherwise are recompressed to it
    where the destination compresses layers; ``None`` keeps compressed layers as they are and
    gives uncompressed ones :data:`DEFAULT_FORMAT`. ``level`` (``--dest-compress-level``)
    applies to whatever is compressed; ``None`` is the format's default. ``force``
    (``--dest-force-compress-format``, podman's ``--force-compression``): a layer the
    destination already holds (or can mount) in another compression is not reused, so every
    layer ends up in ``format``; without it skopeo 1.9.3's rule holds and such a layer is reused
    as it is.
    """

    format: Format | None = None
    level: int | None = None
    force: bool = False

    @classmethod
    def parse(cls, fmt: str | None, level: int | None, force: bool) -> LayerCompression:
        """Validate the flags; one-line :class:`UsageError` for anything that cannot work."""
        name: Format | None = None
        if fmt is not None:
            lowered = fmt.strip().lower()
            if lowered not in LEVELS:
                raise UsageError(
                    f'--dest-compress-format: cannot find compressor for "{fmt}" (supported: gzip, zstd)'
                )
            name = "gzip" if lowered == "gzip" else "zstd"
        if level is not None:
            effective = name or DEFAULT_FORMAT
            low, high = LEVELS[effective]
            if not low <= level <= high:
                raise UsageError(
                    f"--dest-compress-level {level}: out of range for {effective} ({low}-{high})"
                )
        if force and name is None:
            raise UsageError("--dest-force-compress-format needs --dest-compress-format")
        return cls(format=name, level=level, force=force)

    def level_for(self, fmt: Format) -> int:
        """The level to compress with in ``fmt``."""
        return self.level if self.level is not None else DEFAULT_LEVELS[fmt]


def layer_compression_of(media_type: str) -> str | None:
    """``"gzip"``, ``"zstd"`` or ``None`` (uncompressed) for a layer media type this module knows.

    Raises ``KeyError`` for other media types (foreign, encrypted, artifacts): callers leave
    those blobs alone.
    """
    return _COMPRESSION_OF[media_type]


def is_known_layer(media_type: str) -> bool:
    """Whether the media type is a (non-foreign) layer whose compression may change."""
    return media_type in _COMPRESSION_OF


def media_type_for(media_type: str, compression: str | None, digest: str) -> str:
    """The media type of the layer ``digest`` of type ``media_type`` stored in ``compression``.

    Raises :class:`ManifestError` with skopeo's text when the manifest format cannot say it
    (zstd in Docker v2s2).
    """
    for family in _FAMILIES:
        if media_type in family.values():
            wanted = family.get(compression, "")
            if not wanted:
                raise ManifestError(
                    f'creating an updated image manifest: preparing updated manifest, layer "{digest}": '
                    f'{compression} compression is not supported for type "{media_type}"'
                )
            return wanted
    raise ManifestError(f"unsupported MIME type for compression: {media_type}")
