"""A no-op re-sync's attachments, decided by name: no walk when every attachment tag is in place.

An image a sync skips (its digest is already at the destination) may still have attachments the
destination lacks. Walking them (:mod:`~asyncsync.copy.attachments.walk`) costs requests per
attachment; this module first decides from what the run already holds or lists once:

* the source's tag list (the planner's, or one listing per repository), which names the
  subject's cosign tags ``sha256-<hex>.sig|att|sbom`` and its fallback tag ``sha256-<hex>``;
* the destination's tag list, one listing per repository (``--skip-existing`` already has it);
* where the source answers the referrers API, one referrers request for the subject (and one
  look at the destination: its referrers API, or the HEAD of its fallback tag).

The image's attachments are settled when every attachment tag of the subject at the source is
also at the destination by name, and no attachment tag of the repository that could hang below
the image (an index child's, an attachment's own: one whose subject is no planned image) is
missing at the destination. Attachment tags are named after their subject's digest, so a name
present at both sides is the same attachment. What a name cannot tell: content added under an
existing attachment tag (a second cosign signature in the same ``.sig``, a new referrer in an
existing fallback index) follows when the subject is next copied, not on a no-op re-sync; the
README says so. Anything else (a tag missing, a referrer the destination lacks) goes to the walk,
and so does an index from a source with the referrers API: nothing names its children's referrers.
"""

from __future__ import annotations

from asyncsync.copy.attachments.kinds import (
    ATTACHMENT_TAG,
    COSIGN_SUFFIXES,
    cosign_tag,
    fallback_tag,
)
from asyncsync.copy.attachments.state import AttachmentOutcome
from asyncsync.copy.attachments.walk import AttachmentWalk, build_index, describe
from asyncsync.digest import Digest
from asyncsync.errors import ContentError
from asyncsync.manifest import manifest_digest, referrers_entries
from asyncsync.transports.attachment_store import ReferrerEntry, parse_entries


async def settle(walk: AttachmentWalk, digest: Digest, is_index: bool) -> AttachmentOutcome | None:
    """The outcome of a skipped image's attachments when they are all in place (see the module
    docstring), else ``None``: the caller walks. Records skips the policy makes."""
    reader, writer, run, policy = walk.reader, walk.writer, walk.run, walk.policy
    if reader is None:
        return AttachmentOutcome()
    if writer is None:
        return None  # the walk says what the destination cannot hold
    outcome = AttachmentOutcome()
    source_tags = await run.tags(reader.key, reader.list_tags)
    try:
        listed = await walk.source_referrers(reader, digest)
    except ContentError:
        return None  # the walk reports it
    if is_index and listed is not None:
        return None  # its children's referrers have no tag to show them by name: walked
    own: list[str] = []
    for suffix, kind_type in COSIGN_SUFFIXES.items():
        tag = cosign_tag(digest, suffix)
        if tag in source_tags:
            kept, why = policy.keeps(kind_type)
            if kept:
                own.append(tag)
            else:
                outcome.skipped.append(f"tag {tag}: {why}")
    fallback = fallback_tag(digest)
    if listed is None and fallback in source_tags:
        own.append(fallback)
    if not own and not listed and not (is_index and _below_candidates(walk, source_tags)):
        return outcome  # nothing at the source to look for: not even the destination's tag list
    destination_tags = await run.destination_tags(writer.key, writer.list_tags)
    for tag in own:
        if tag in destination_tags:
            outcome.present.append(f"tag {tag}")
        elif tag != fallback or not await _indexed_by_api(walk, digest, fallback):
            return None
    if listed:
        referrers = await _referrers_in_place(walk, digest, listed, outcome)
        if referrers is None:
            return None
    if (is_index or own or listed) and _missing_below(walk, destination_tags, source_tags):
        return None
    return outcome


def _missing_below(
    walk: AttachmentWalk, destination_tags: frozenset[str], source_tags: frozenset[str]
) -> bool:
    """Whether an attachment tag whose subject is no planned image is missing at the destination
    (one the policy would copy): it may belong to an index child or to an attachment of this image."""
    return _below_candidates(walk, source_tags - destination_tags)


def _below_candidates(walk: AttachmentWalk, tags: frozenset[str]) -> bool:
    """Whether ``tags`` hold an attachment tag the policy would copy whose subject is no planned image."""
    assert walk.reader is not None
    planned = walk.run.subjects(walk.reader.key)
    for tag in tags:
        match = ATTACHMENT_TAG.match(tag)
        if match is None or match.group(2) in planned:
            continue
        suffix = match.group(3)
        if suffix is None or walk.policy.keeps(COSIGN_SUFFIXES[suffix])[0]:
            return True
    return False


async def _indexed_by_api(walk: AttachmentWalk, digest: Digest, tag: str) -> bool:
    """The source lists referrers in a fallback tag the destination lacks: in place all the same when
    the destination has the referrers API and lists every one (a GET at each side)."""
    assert walk.reader is not None
    listing = await walk.destination_listing(digest)
    if listing is None:
        return False
    got = await walk.reader.get(tag)
    if got is None:
        return False
    try:
        entries = parse_entries(referrers_entries(got[0], f"fallback tag {tag}"), f"fallback tag {tag}")
    except ContentError:
        return False
    there = {entry.digest for entry in listing}
    return all(entry.digest in there for entry in entries if walk.policy.keeps(entry.artifact_type)[0])


async def _referrers_in_place(
    walk: AttachmentWalk, digest: Digest, listed: list[ReferrerEntry], outcome: AttachmentOutcome
) -> list[ReferrerEntry] | None:
    """The source's referrers API listed ``listed``: the kept ones when the destination holds them
    all (its API lists them, or its fallback tag is exactly what the walk would write), else ``None``."""
    assert walk.writer is not None
    kept = []
    for entry in listed:
        keeps, why = walk.policy.keeps(entry.artifact_type)
        if keeps:
            kept.append(entry)
        else:
            outcome.skipped.append(f"{describe(entry)} of {digest.algorithm}:{digest.short}: {why}")
    if not kept:
        return kept
    listing = await walk.destination_listing(digest)
    if listing is not None:
        there = {entry.digest for entry in listing}
        if any(entry.digest not in there for entry in kept):
            return None
    elif await walk.destination_head(fallback_tag(digest)) != manifest_digest(
        build_index([e.raw for e in kept])
    ):
        return None
    outcome.present += [describe(entry) for entry in kept]
    return kept
