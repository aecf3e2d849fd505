"""Attachments follow their images: OCI referrers, cosign signatures, attestations and SBOMs.

A copy becomes a graph walk: the subject first, then what refers to it (each an ordinary manifest
copy: blobs, then the manifest by digest), then the index or tag that names them, so nothing ever
points at what is not there yet.

* :mod:`~asyncsync.copy.attachments.kinds`: kinds and types, the policy (``--remove-signatures``,
  ``--attachment-type``, on/off), the tag names;
* :mod:`~asyncsync.copy.attachments.state`: run-wide tag lists and registry capabilities, outcomes;
* :mod:`~asyncsync.copy.attachments.walk`: discovery and writing for one image;
* :mod:`~asyncsync.copy.attachments.hook`: the copy engine's call (which subjects kept their digest).

Transports take part through :mod:`asyncsync.transports.attachment_store`.
"""

from asyncsync.copy.attachments.kinds import AttachmentPolicy, Kind, is_attachment_tag, kind_of
from asyncsync.copy.attachments.state import AttachmentOutcome, AttachmentRun

__all__ = ["AttachmentOutcome", "AttachmentPolicy", "AttachmentRun", "Kind", "is_attachment_tag", "kind_of"]
