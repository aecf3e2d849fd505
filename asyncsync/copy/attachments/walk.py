"""The attachment walk: after an image is copied, what refers to it follows, one manifest at a time.

For each subject (a manifest copied with its digest unchanged) :class:`AttachmentWalk`

1. finds its attachments at the source: the referrers API where the source answers it, else the
   fallback tag ``sha256-<hex>`` (an index listing the referrers); and cosign's tags
   ``sha256-<hex>.sig``, ``.att``, ``.sbom``. Tags come from the run's tag list of the repository
   (:class:`~asyncsync.copy.attachments.state.AttachmentRun`), so an absent attachment costs nothing;
2. drops what the :class:`~asyncsync.copy.attachments.kinds.AttachmentPolicy` does not keep;
3. writes, in commit order: each referrer (its blobs, then its manifest by digest), then the
   destination's fallback tag when the destination has no referrers API (merged with the index
   already there, re-read just before writing); each cosign tag (its blobs, then the tag, merged
   layer by layer with a ``.sig``/``.att`` already there; an ``.sbom`` already there with other
   content is kept);
4. walks on from each attachment (a signature of an SBOM) up to ``policy.max_depth``; a digest
   seen before in the walk is a cycle and is skipped with a reason.

The subject is always written before the walk starts, so a crash leaves at most attachments
without an index entry or tag naming them (invisible), never an attachment of a missing subject.
Each subject is walked once per run and destination (:attr:`AttachmentRun.walks`): a digest
under two tags, or a child of two indexes, costs one walk. The destination's tag list (once per
run and repository) says which attachment tags are absent there, so those cost no HEAD; a
cosign tag absent there is read at the source by tag, in one request. Whether the destination
has the referrers API is learnt from the first referrer written there (``OCI-Subject`` in the
answer) or, when nothing needs writing, from one ``GET .../referrers/`` (once per registry).
A no-op re-sync usually never gets here: :mod:`~asyncsync.copy.attachments.settle` decides by
name from the two tag lists.

Bad input at the source (a referrers index that is not JSON, a referrer whose ``subject`` is
another manifest, an unparseable manifest) is skipped with a reason; network and registry
failures propagate (the image fails and is retried like any other).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from asyncsync.copy.attachments.kinds import COSIGN_SUFFIXES, AttachmentPolicy, cosign_tag, fallback_tag
from asyncsync.copy.attachments.state import AttachmentOutcome, AttachmentRun
from asyncsync.copy.blobs import BlobCopier, run_concurrently
from asyncsync.copy.progress import BlobKind
from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError, ContentError
from asyncsync.manifest import (
    OCI_INDEX,
    Descriptor,
    ImageIndex,
    ImageManifest,
    Manifest,
    manifest_digest,
    parse_manifest,
    referrers_entries,
)
from asyncsync.transports.attachment_store import (
    AttachmentReader,
    AttachmentWriter,
    ReferrerEntry,
    parse_entries,
    reader_of,
    writer_of,
)

log = logging.getLogger("asyncsync.copy.attachments")


@dataclass(slots=True)
class _Found:
    """A subject's attachments at the source, after the policy."""

    subject: Digest
    referrers: list[ReferrerEntry] = field(default_factory=list)
    #: The source's fallback index bytes, when the referrers came from one and all were kept.
    verbatim: bytes | None = None
    tags: list[tuple[str, str]] = field(default_factory=list)  # (suffix, tag)


def short(digest: Digest) -> str:
    return f"{digest.algorithm}:{digest.short}"


def build_index(entries: list[dict[str, Any]]) -> bytes:
    """A fallback referrers index (OCI image index) listing ``entries`` in order."""
    return orjson.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})


def describe(entry: ReferrerEntry) -> str:
    return f"referrer {short(entry.digest)} ({entry.artifact_type or entry.descriptor.media_type})"


class AttachmentWalk:
    """One image's walk (see the module docstring); results accumulate in :attr:`outcome`."""

    def __init__(
        self, copier: BlobCopier, policy: AttachmentPolicy, run: AttachmentRun, *, write: bool = True
    ) -> None:
        self.copier = copier
        self.policy = policy
        self.run = run
        self.write = write
        source, destination = copier.source, copier.destination
        self.reader: AttachmentReader | None = reader_of(source)
        self.writer: AttachmentWriter | None = writer_of(destination)
        if self.writer is not None and not self.writer.holds_referrers:
            self.writer = None
        self.outcome = AttachmentOutcome()
        self._visited: set[Digest] = set()

    # -- discovery ---------------------------------------------------------------------------

    async def _tags(self, reader: AttachmentReader) -> frozenset[str]:
        return await self.run.tags(reader.key, reader.list_tags)

    async def _referrers(self, reader: AttachmentReader, subject: Digest, tags: frozenset[str]) -> _Found:
        found = _Found(subject)
        entries: list[ReferrerEntry] | None = None
        try:
            entries = await self.source_referrers(reader, subject)
        except ContentError as exc:
            self.outcome.skipped.append(f"referrers of {short(subject)}: {exc}")
            return found
        verbatim: bytes | None = None
        if entries is None:
            tag = fallback_tag(subject)
            if tag not in tags:
                return found
            got = await reader.get(tag)
            if got is None:
                return found
            try:
                entries = parse_entries(
                    referrers_entries(got[0], f"fallback tag {tag}"), f"fallback tag {tag}"
                )
            except ContentError as exc:
                self.outcome.skipped.append(f"referrers of {short(subject)}: {exc}")
                return found
            verbatim = got[0]
        seen: set[Digest] = set()
        for entry in entries:
            if entry.digest in seen:
                continue
            seen.add(entry.digest)
            kept, why = self.policy.keeps(entry.artifact_type)
            if kept:
                found.referrers.append(entry)
            else:
                verbatim = None
                self.outcome.skipped.append(f"{describe(entry)} of {short(subject)}: {why}")
        found.verbatim = verbatim
        return found

    async def source_referrers(self, reader: AttachmentReader, subject: Digest) -> list[ReferrerEntry] | None:
        """The referrers API's answer; the first request to a registry goes alone (the others wait),
        so a registry without the API is asked once per run."""
        known = self.run.source_api_known(reader.api_key)
        if known is None:
            async with self.run.api_locks.hold(f"source {reader.api_key}"):
                known = self.run.source_api_known(reader.api_key)
                if known is None:
                    entries = await reader.referrers(subject, self.policy.server_filter)
                    self.run.source_api_learnt(reader.api_key, entries is not None)
                    return entries
        return await reader.referrers(subject, self.policy.server_filter) if known else None

    async def find(self, subject: Digest) -> _Found:
        """What the source holds for ``subject``, after the policy (skips are recorded)."""
        assert self.reader is not None
        tags = await self._tags(self.reader)
        found = await self._referrers(self.reader, subject, tags)
        for suffix, kind_type in COSIGN_SUFFIXES.items():
            tag = cosign_tag(subject, suffix)
            if tag not in tags:
                continue
            kept, why = self.policy.keeps(kind_type)
            if kept:
                found.tags.append((suffix, tag))
            else:
                self.outcome.skipped.append(f"tag {tag}: {why}")
        return found

    # -- the walk ----------------------------------------------------------------------------

    async def follow(
        self, subjects: Sequence[Digest], left: Sequence[tuple[Digest, str]] = ()
    ) -> AttachmentOutcome:
        """Walk from every subject (copied unchanged) and report what ``left`` subjects leave behind."""
        if self.reader is None:
            return self.outcome
        self._visited.update(subjects)
        for subject, why in left:
            await self._leave(subject, why)
        for subject in subjects:
            if self.writer is None:
                await self._leave(subject, "", unsupported=True)
                continue
            await self._once(subject)
        return self.outcome

    async def _once(self, subject: Digest) -> None:
        """Walk from ``subject`` unless this run already did for the same destination (another tag
        of the same digest, another index with the same child): then report what that walk found."""
        assert self.reader is not None and self.writer is not None
        ran = False

        async def walk() -> AttachmentOutcome:
            nonlocal ran
            ran = True
            saved, self.outcome = self.outcome, AttachmentOutcome()
            try:
                await self._subject(subject, 1)
                return self.outcome
            finally:
                self.outcome = saved

        key = (self.reader.key, self.writer.key, subject, self.policy, self.write)
        outcome = await self.run.walks.do(key, walk)
        self.outcome.merge(outcome if ran else outcome.repeated())

    async def _leave(self, subject: Digest, why: str, *, unsupported: bool = False) -> None:
        found = await self.find(subject)
        names = [f"{describe(entry)} of {short(subject)}" for entry in found.referrers]
        names += [f"tag {tag}" for _, tag in found.tags]
        if unsupported:
            self.outcome.unsupported += names
        else:
            self.outcome.left += [f"{name}: {why}" for name in names]

    async def _subject(self, subject: Digest, depth: int) -> None:
        found = await self.find(subject)
        nested: list[Digest] = []
        fresh: list[ReferrerEntry] = []
        for entry in found.referrers:
            if entry.digest in self._visited:
                self.outcome.skipped.append(f"{describe(entry)} of {short(subject)}: cycle (already copied)")
                continue
            self._visited.add(entry.digest)
            fresh.append(entry)
        if fresh:
            nested += await self._copy_referrers(
                subject, fresh, found.verbatim if len(fresh) == len(found.referrers) else None
            )
        for suffix, tag in found.tags:
            digest = await self._copy_tag(subject, suffix, tag)
            if digest is not None:
                nested.append(digest)
        if depth >= self.policy.max_depth:
            if nested:
                self.outcome.skipped.append(
                    f"attachments of the attachments of {short(subject)}: deeper than {self.policy.max_depth}"
                )
            return
        for digest in nested:
            await self._subject(digest, depth + 1)

    # -- referrers ---------------------------------------------------------------------------

    async def destination_listing(self, subject: Digest, *, probe: bool = True) -> list[ReferrerEntry] | None:
        """The destination's referrers of ``subject``, ``None`` when it has no API or (without
        ``probe``) when that is not known yet. With ``probe``, the first request to a registry goes
        alone and tells (the others wait)."""
        writer = self.writer
        assert writer is not None
        known = self.run.destination_api.get(writer.api_key)
        if known is False or (known is None and not probe):
            return None
        if known is None:
            async with self.run.api_locks.hold(f"destination {writer.api_key}"):
                known = self.run.destination_api.get(writer.api_key)
                if known is None:
                    listing = await writer.referrers(subject)
                    self.run.destination_api[writer.api_key] = listing is not None
                    return listing
            if known is False:
                return None
        return await writer.referrers(subject)

    async def _copy_referrers(
        self, subject: Digest, entries: list[ReferrerEntry], verbatim: bytes | None
    ) -> list[Digest]:
        """Copy ``entries`` (then the fallback tag); returns the digests written or present."""
        writer = self.writer
        assert writer is not None
        # The API is not probed for: the first referrer written tells (OCI-Subject), and until then
        # the fallback tag says what is there.
        listing = await self.destination_listing(subject, probe=False)
        tag = fallback_tag(subject)
        expected = verbatim if verbatim is not None else build_index([e.raw for e in entries])
        present: set[Digest] = set()
        current: tuple[bytes, str] | None = None
        if listing is not None:
            present = {e.digest for e in listing}
        else:
            at_tag = await self.destination_head(tag)
            if at_tag == manifest_digest(expected):
                self.outcome.present += [describe(e) for e in entries]
                return [e.digest for e in entries]
            if at_tag is not None:
                current = await writer.get(tag)
                present = self._entries_at(current, tag)
        done: list[Digest] = []
        for entry in entries:
            if entry.digest in present:
                self.outcome.present.append(describe(entry))
                done.append(entry.digest)
            elif not self.write:
                self.outcome.found.append(f"{describe(entry)} of {short(subject)}")
                done.append(entry.digest)
            elif await self._copy_referrer(subject, entry):
                self.outcome.copied.append(describe(entry))
                done.append(entry.digest)
        if listing is None and self.write and self.run.destination_api.get(writer.api_key) is not True:
            kept = [e for e in entries if e.digest in done]
            await self._write_fallback(tag, kept, verbatim if len(kept) == len(entries) else None)
        return done

    async def destination_head(self, tag: str) -> Digest | None:
        """The digest at a destination tag: ``None`` without a request when the run's tag list of
        the destination does not hold it (a tag written since is found again at the re-read that
        precedes every write)."""
        writer = self.writer
        assert writer is not None
        if tag not in await self.run.destination_tags(writer.key, writer.list_tags):
            return None
        return await writer.head(tag)

    def _entries_at(self, current: tuple[bytes, str] | None, tag: str) -> set[Digest]:
        if current is None:
            return set()
        try:
            return {e.digest for e in parse_entries(referrers_entries(current[0], tag), tag)}
        except ContentError:
            return set()

    async def _copy_referrer(self, subject: Digest, entry: ReferrerEntry) -> bool:
        """Copy one referrer's blobs and manifest by digest; ``False`` (with a reason) if it is bad."""
        source = self.copier.source
        try:
            raw, media_type = await source.get_manifest(entry.digest)
            manifest = parse_manifest(raw, media_type, digest=entry.digest)
            named = _subject_of(raw)
        except ContentError as exc:
            self.outcome.skipped.append(f"{describe(entry)} of {short(subject)}: {exc}")
            return False
        if named != subject:
            shown = short(named) if named is not None else "none"
            self.outcome.skipped.append(
                f"{describe(entry)} of {short(subject)}: its subject is {shown}, not {short(subject)}"
            )
            return False
        if not isinstance(manifest, ImageManifest | ImageIndex):
            self.outcome.skipped.append(
                f"{describe(entry)} of {short(subject)}: {media_type} cannot be a referrer"
            )
            return False
        await self._copy_content(manifest)
        writer = self.writer
        assert writer is not None
        indexed = await writer.put_referrer(raw, media_type, entry.digest)
        self.copier.stats.manifests_written += 1
        if indexed is not None and writer.api_key not in self.run.destination_api:
            # The spec's signal: a registry with the referrers API answers OCI-Subject.
            self.run.destination_api[writer.api_key] = indexed
        return True

    async def _copy_manifest(self, manifest: Manifest, raw: bytes, media_type: str, digest: Digest) -> None:
        """Blobs (or children), then the manifest by digest: an ordinary manifest copy, bytes unchanged."""
        if not isinstance(manifest, ImageManifest | ImageIndex):
            raise ContentError(f"{media_type} manifests cannot be attachments")
        await self._copy_content(manifest)
        await self.copier.destination.put_manifest(raw, media_type, digest)
        self.copier.stats.manifests_written += 1

    async def _copy_content(self, manifest: ImageManifest | ImageIndex) -> None:
        """What a manifest names, before the manifest itself: an index's children, an image's blobs."""
        if isinstance(manifest, ImageIndex):
            for child in manifest.manifests:
                child_raw, child_type = await self.copier.source.get_manifest(child.digest)
                parsed = parse_manifest(child_raw, child_type, digest=child.digest)
                await self._copy_manifest(parsed, child_raw, child_type, child.digest)
        else:
            await self._copy_blobs(manifest)

    async def _copy_blobs(self, manifest: ImageManifest) -> None:
        steps = [_step(self.copier, blob, "blob") for blob in manifest.layers]
        steps.append(_step(self.copier, manifest.config, "config"))
        await run_concurrently(steps)

    async def _write_fallback(self, tag: str, entries: list[ReferrerEntry], verbatim: bytes | None) -> None:
        """Write the destination's fallback index: re-read it, add what is missing, never drop."""
        if not entries:
            return
        writer = self.writer
        assert writer is not None
        current = await writer.get(tag)
        if current is None:
            await writer.put_tagged(tag, verbatim or build_index([e.raw for e in entries]), OCI_INDEX)
            return
        try:
            existing = referrers_entries(current[0], tag)
            digests = {e.digest for e in parse_entries(existing, tag)}
        except ContentError as exc:
            self.outcome.skipped.append(f"fallback tag {tag} at the destination: {exc} (kept as it is)")
            return
        missing = [e.raw for e in entries if e.digest not in digests]
        if not missing:
            return
        document = orjson.loads(current[0])
        document["manifests"] = [*existing, *missing]
        await writer.put_tagged(tag, orjson.dumps(document), current[1] or OCI_INDEX)

    # -- cosign tags -------------------------------------------------------------------------

    async def _copy_tag(self, subject: Digest, suffix: str, tag: str) -> Digest | None:
        """Copy (or merge) one cosign tag; returns the source digest to walk on from, if any."""
        assert self.reader is not None
        writer = self.writer
        assert writer is not None
        at_destination = await self.destination_head(tag)
        got: tuple[bytes, str] | None = None
        if at_destination is None and self.write:
            got = await self.reader.get(tag)  # it will be copied: read it by tag, in one request
            source_digest = manifest_digest(got[0]) if got is not None else None
        else:
            source_digest = await self.reader.head(tag)
        if source_digest is None:
            return None
        if source_digest in self._visited:
            self.outcome.skipped.append(f"tag {tag}: cycle ({short(source_digest)} is already in the walk)")
            return None
        self._visited.add(source_digest)
        if at_destination == source_digest:
            self.outcome.present.append(f"tag {tag}")
            return source_digest
        if not self.write:
            self.outcome.found.append(f"tag {tag}")
            return source_digest
        if got is None:
            got = await self.reader.get(str(source_digest))
        if got is None:
            return None
        raw, media_type = got
        try:
            manifest = parse_manifest(raw, media_type, digest=source_digest)
            if not isinstance(manifest, ImageManifest | ImageIndex):
                raise ContentError(f"{media_type} manifests cannot be attachments")
        except ContentError as exc:
            self.outcome.skipped.append(f"tag {tag}: {exc}")
            return None
        await self._copy_content(manifest)
        current = await writer.get(tag)  # re-read just before writing: never drop another writer's
        if current is None:
            await writer.put_tagged(tag, raw, media_type)
            self.outcome.copied.append(f"tag {tag}")
            return source_digest
        if manifest_digest(current[0]) == source_digest:
            self.outcome.present.append(f"tag {tag}")
            return source_digest
        merged = None
        if suffix in ("sig", "att") and isinstance(manifest, ImageManifest):
            merged = await self._merged(manifest, current)
        if merged is None:
            self.outcome.skipped.append(
                f"tag {tag}: the destination holds other content there (kept as it is)"
            )
            return None
        if merged == current[0]:
            self.outcome.present.append(f"tag {tag}")
        else:
            await writer.put_tagged(tag, merged, current[1])
            self.outcome.copied.append(f"tag {tag} (merged with the destination's)")
        return source_digest

    async def _merged(self, ours: ImageManifest, current: tuple[bytes, str]) -> bytes | None:
        """The destination's cosign manifest with our layers added (union by digest, theirs first);
        ``None`` when the destination's is not an image manifest.

        The config stays the destination's: cosign reads signatures from the layers and their
        annotations, never from the config (whose ``rootfs`` it fills in for form's sake)."""
        try:
            theirs = parse_manifest(current[0], current[1])
        except ContentError:
            return None
        if not isinstance(theirs, ImageManifest):
            return None
        present = {layer.digest for layer in theirs.layers}
        added = [layer for layer in ours.layers if layer.digest not in present]
        if not added:
            return current[0]
        ours_raw = orjson.loads(ours.raw)
        by_digest = {str(layer.get("digest")): layer for layer in ours_raw.get("layers", [])}
        document = orjson.loads(current[0])
        document["layers"] = [*document.get("layers", []), *(by_digest[str(a.digest)] for a in added)]
        return orjson.dumps(document)


def _subject_of(raw: bytes) -> Digest | None:
    """The digest a manifest's ``subject`` names, ``None`` without one."""
    try:
        data = orjson.loads(raw)
        subject = data.get("subject") if isinstance(data, dict) else None
        if isinstance(subject, dict):
            return Descriptor.from_json(subject, "subject").digest
    except (orjson.JSONDecodeError, AsyncSyncError):
        return None
    return None


def _step(copier: BlobCopier, blob: Descriptor, kind: BlobKind) -> Callable[[], Coroutine[Any, Any, None]]:
    async def step() -> None:
        await copier.copy(blob, kind)

    return step
