"""The copy engine's one call into attachments: which subjects survived the copy, then the walk.

A subject can carry its attachments only when the copy kept its digest: the top-level manifest
when its bytes are unchanged, and each index child whose digest is still listed by the index
written (or, for ``--multi-arch system``, the one child written at the tag). A subject whose
digest changed (``--format``, platform selection) cannot: its attachments are reported as left
behind, with the reason, and the rest are copied.
"""

from __future__ import annotations

from asyncsync.copy.attachments.kinds import AttachmentPolicy, fallback_tag, is_attachment_tag
from asyncsync.copy.attachments.settle import settle
from asyncsync.copy.attachments.state import AttachmentOutcome, AttachmentRun
from asyncsync.copy.attachments.walk import AttachmentWalk
from asyncsync.copy.blobs import BlobCopier
from asyncsync.digest import Digest
from asyncsync.errors import ContentError
from asyncsync.manifest import INDEX_TYPES, Descriptor, ImageIndex, ImageManifest, parse_manifest
from asyncsync.transports.base import ImageSource

REASON_DIGEST_CHANGED = "the copy changed its subject's digest ({why})"
REASON_NOT_COPIED = "its subject (the index) is not copied (--multi-arch system)"
REASON_OTHER_IMAGE = (
    "the destination tag holds another image (--skip-existing): attachments of {digest} not copied"
)
#: Levels of indexes within indexes whose children are subjects too (the copy itself bounds nesting).
MAX_NESTING = 4


async def descendants(
    source: ImageSource, index: ImageIndex, keep: set[Digest] | None = None
) -> list[Digest]:
    """The digests below ``index``: its children (those in ``keep``, when given) and, for each child
    that is an index itself, its children, down to :data:`MAX_NESTING` levels (one GET per nested index)."""
    found: list[Digest] = []
    level = [child for child in index.manifests if keep is None or child.digest in keep]
    for _ in range(MAX_NESTING):
        nested: list[Descriptor] = []
        for child in level:
            if child.digest in found:
                continue
            found.append(child.digest)
            if child.media_type in INDEX_TYPES:
                raw, media_type = await source.get_manifest(child.digest)
                parsed = parse_manifest(raw, media_type, digest=child.digest)
                if isinstance(parsed, ImageIndex):
                    nested += parsed.manifests
        if not nested:
            break
        level = nested
    return found


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
    subjects = await _with_grandchildren(copier.source, source, subjects)
    walk = AttachmentWalk(copier, policy, run)
    return await walk.follow(subjects, left)


async def _with_grandchildren(
    source: ImageSource, manifest: ImageManifest | ImageIndex, subjects: list[Digest]
) -> list[Digest]:
    """``subjects`` plus what lies below the nested indexes among them (children of a child index)."""
    if not isinstance(manifest, ImageIndex) or all(
        c.media_type not in INDEX_TYPES for c in manifest.manifests
    ):
        return subjects
    kept = set(subjects)
    below = await descendants(source, manifest, kept)
    return list(dict.fromkeys([*subjects, *below]))


async def follow_skipped(
    copier: BlobCopier, digest: Digest, is_index: bool, policy: AttachmentPolicy, run: AttachmentRun
) -> AttachmentOutcome:
    """The walk for an image the destination already holds at the same digest (a sync's skip).

    The subject is there, so its attachments may be written. First decided by name
    (:func:`~asyncsync.copy.attachments.settle.settle`: the two tag lists, no walk); else walked.
    An index's children are read (one GET, and one per nested index) only when they may have
    attachments: the source answers the referrers API, or its tag list holds an attachment tag
    that does not belong to the index itself."""
    walk = AttachmentWalk(copier, policy, run)
    settled = await settle(walk, digest, is_index)
    if settled is not None:
        return settled
    return await _walk_skipped(walk, copier, digest, is_index)


async def follow_existing(
    copier: BlobCopier, digest: Digest, is_index: bool, policy: AttachmentPolicy, run: AttachmentRun
) -> AttachmentOutcome:
    """The walk for an image ``--skip-existing`` skipped: the destination tag exists, its digest
    unknown. Decided by name as :func:`follow_skipped`; when something is missing, the subject's
    digest is first looked up at the destination (one HEAD): attachments are written only next to
    their subject, never next to another image at that tag."""
    walk = AttachmentWalk(copier, policy, run)
    settled = await settle(walk, digest, is_index)
    if settled is not None:
        return settled
    if walk.reader is not None and walk.writer is not None and await walk.writer.head(str(digest)) is None:
        walk.outcome.skipped.append(REASON_OTHER_IMAGE.format(digest=f"{digest.algorithm}:{digest.short}"))
        return walk.outcome
    return await _walk_skipped(walk, copier, digest, is_index)


async def _walk_skipped(
    walk: AttachmentWalk, copier: BlobCopier, digest: Digest, is_index: bool
) -> AttachmentOutcome:
    # The index's own attachments first: that also tells whether the source has the referrers API.
    await walk.follow([digest])
    if is_index and await _children_may_have_attachments(walk, digest):
        raw, media_type = await copier.source.get_manifest(None)
        index = parse_manifest(raw, media_type)
        if isinstance(index, ImageIndex) and index.digest == digest:
            await walk.follow(await descendants(copier.source, index))
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
    known = run.source_api_known(key)
    return True if known is None else known


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
        subjects += await descendants(copier.source, index)
    return await walk.follow(subjects)
