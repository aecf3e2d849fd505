"""The copy engine's one call into attachments: which subjects survived the copy, then the walk.

A subject can carry its attachments only when the copy kept its digest: the top-level manifest
when its bytes are unchanged, and each index child whose digest is still listed by the index
written (or, for ``--multi-arch system``, the one child written at the tag). A subject whose
digest changed (``--format``, platform selection) cannot: its attachments are reported as left
behind, with the reason, and the rest are copied.
"""

from __future__ import annotations

from asyncsync.copy.attachments.kinds import AttachmentPolicy, fallback_tag, is_attachment_tag
from asyncsync.copy.attachments.state import AttachmentOutcome, AttachmentRun
from asyncsync.copy.attachments.walk import AttachmentWalk
from asyncsync.copy.blobs import BlobCopier
from asyncsync.digest import Digest
from asyncsync.errors import ContentError
from asyncsync.manifest import ImageIndex, ImageManifest, parse_manifest

REASON_DIGEST_CHANGED = "the copy changed its subject's digest ({why})"
REASON_NOT_COPIED = "its subject (the index) is not copied (--multi-arch system)"


def surviving(
    source: ImageManifest | ImageIndex, written_raw: bytes, written_digest: Digest, why: str
) -> tuple[list[Digest], list[tuple[Digest, str]]]:
    """``(subjects kept at the same digest, [(subject left, reason)])`` for one copy."""
    if written_digest == source.digest:
        subjects = [source.digest]
        if isinstance(source, ImageIndex):
            subjects += [child.digest for child in source.manifests]
        return subjects, []
    if isinstance(source, ImageManifest):
        return [], [(source.digest, REASON_DIGEST_CHANGED.format(why=why))]
    children = {child.digest for child in source.manifests}
    if written_digest in children:  # --multi-arch system wrote one child unchanged
        return [written_digest], [(source.digest, REASON_NOT_COPIED)]
    try:
        written = parse_manifest(written_raw)
    except ContentError:
        written = None
    kept = {c.digest for c in written.manifests} if isinstance(written, ImageIndex) else set()
    left = [(source.digest, REASON_DIGEST_CHANGED.format(why=why))]
    subjects = [child.digest for child in source.manifests if child.digest in kept]
    return subjects, left


async def follow_attachments(
    copier: BlobCopier,
    source: ImageManifest | ImageIndex,
    written_raw: bytes,
    written_digest: Digest,
    policy: AttachmentPolicy,
    run: AttachmentRun,
    why: str,
) -> AttachmentOutcome:
    """Walk the attachments of what this copy wrote (see the module docstring)."""
    subjects, left = surviving(source, written_raw, written_digest, why)
    walk = AttachmentWalk(copier, policy, run)
    return await walk.follow(subjects, left)


async def follow_skipped(
    copier: BlobCopier, digest: Digest, is_index: bool, policy: AttachmentPolicy, run: AttachmentRun
) -> AttachmentOutcome:
    """The walk for an image the destination already holds at the same digest (a sync's skip).

    The subject is there, so its attachments may be written. An index's children are read (one
    GET) only when they may have attachments: the source answers the referrers API, or its tag
    list holds an attachment tag that does not belong to the index itself."""
    walk = AttachmentWalk(copier, policy, run)
    # The index's own attachments first: that also tells whether the source has the referrers API.
    await walk.follow([digest])
    if is_index and await _children_may_have_attachments(walk, digest):
        raw, media_type = await copier.source.get_manifest(None)
        index = parse_manifest(raw, media_type)
        if isinstance(index, ImageIndex) and index.digest == digest:
            await walk.follow([child.digest for child in index.manifests])
    return walk.outcome


async def follow_platform_skipped(
    copier: BlobCopier, index: Digest, written: Digest, policy: AttachmentPolicy, run: AttachmentRun
) -> AttachmentOutcome:
    """The walk for a ``--multi-arch system`` image the destination already holds (a sync's skip
    by a remembered digest): what :func:`surviving` gives for that copy, without reading the
    index: the instance ``written`` carries its attachments, the ``index``'s are left behind."""
    walk = AttachmentWalk(copier, policy, run)
    return await walk.follow([written], [(index, REASON_NOT_COPIED)])


async def _children_may_have_attachments(walk: AttachmentWalk, digest: Digest) -> bool:
    reader = walk.reader
    if reader is None:
        return False
    if run_has_api(walk.run, reader.api_key):
        return True
    own = fallback_tag(digest)
    tags = await walk.run.tags(reader.key, reader.list_tags)
    return any(is_attachment_tag(tag) and not tag.startswith(own) for tag in tags)


def run_has_api(run: AttachmentRun, key: str) -> bool:
    """Whether the source registry answers (or may answer: not asked yet) the referrers API."""
    return run.source_api.get(key, True)


async def preview_image(
    copier: BlobCopier, digest: Digest, keeps_digest: bool, policy: AttachmentPolicy, run: AttachmentRun
) -> AttachmentOutcome:
    """What would follow an image (``--dry-run``): nothing is written, only the source is read.

    ``keeps_digest`` is false when the copy will change the image's digest (``--format``,
    platform selection): its attachments are then listed as left behind."""
    walk = AttachmentWalk(copier, policy, run, write=False)
    if not keeps_digest:
        return await walk.follow([], [(digest, "the copy changes its subject's digest")])
    subjects = [digest]
    raw, media_type = await copier.source.get_manifest(None)
    index = parse_manifest(raw, media_type)
    if isinstance(index, ImageIndex):
        subjects += [child.digest for child in index.manifests]
    return await walk.follow(subjects)
