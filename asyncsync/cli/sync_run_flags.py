"""The flags ``sync`` and ``mirror`` share, as one group: a run's output, engine, extensions,
registry sides and retries.

:data:`SYNC_RUN_FLAGS` joins :data:`~asyncsync.cli.output_flags.OUTPUT_FLAGS`,
:data:`~asyncsync.cli.run_flags.RUN_FLAGS`, :data:`~asyncsync.cli.extension_options.EXTENSION_FLAGS`,
:data:`~asyncsync.cli.common.REGISTRY_SIDES` and :data:`~asyncsync.cli.common.RETRY_FLAGS`, in that
``--help`` order. A command receives one :class:`SyncRunFlags` and turns it, with what its own
flags say, into the run's :class:`~asyncsync.sync.settings.CommandLine`
(:meth:`SyncRunFlags.command_line`, where values are validated, so a bad one is a one-line usage
error); :func:`~asyncsync.sync.settings.resolve_settings` then lays it over the spec.
"""

from __future__ import annotations

from dataclasses import dataclass

from asyncsync.cli.common import REGISTRY_SIDES, RETRY_FLAGS, RegistrySides, RetryFlags
from asyncsync.cli.extension_options import EXTENSION_FLAGS, ExtensionFlags
from asyncsync.cli.flag_groups import FlagGroup, joined_groups
from asyncsync.cli.output_flags import OUTPUT_FLAGS, OutputFlags
from asyncsync.cli.run_flags import RUN_FLAGS, RunFlags
from asyncsync.cli.trust_flags import SignFlags, registries_d, trust_settings
from asyncsync.copy.attachments.kinds import AttachmentPolicy
from asyncsync.sync.settings import CommandLine


@dataclass(frozen=True, slots=True)
class SyncRunFlags:
    """The shared flags of ``sync`` and ``mirror`` as given, one object per group."""

    output: OutputFlags
    run: RunFlags
    extensions: ExtensionFlags
    registries: RegistrySides
    retry: RetryFlags

    def command_line(
        self,
        *,
        fail_fast: bool = False,
        preserve_digests: bool = False,
        attachments: AttachmentPolicy | None = None,
        sign: SignFlags | None = None,
        remove_signatures: bool = False,
    ) -> CommandLine:
        """What the command line says for the run: these flags and the command's own (the keyword
        arguments, already parsed); raises :class:`~asyncsync.errors.UsageError` for bad values.

        With ``sign`` (the signing flags; ``SignFlags()`` for none) every image is checked against
        the trust policy (the global ``--policy``/``--insecure-policy``), which is loaded here,
        with the signers, so that a bad policy or key is reported before any work; the caller
        releases it (:func:`~asyncsync.cli.trust_flags.close_trust`). ``None`` checks nothing (a
        dry run, which writes nothing). Where signatures live (``--registries.d``) is read here too.
        """
        run, sides = self.run, self.registries
        trust = trust_settings(sign) if sign is not None else None
        return CommandLine(
            source=sides.source.to_options(),
            destination=sides.destination.to_options(),
            source_tls_verify=sides.source.tls_verify,
            destination_tls_verify=sides.destination.tls_verify,
            parallel=run.parallel,
            blobs_in_flight=run.image_parallel_copies,
            retry_times=self.retry.times,
            retry_delay=self.retry.delay_seconds(),
            max_requests_per_host=run.max_requests_per_host,
            chunk_size=run.chunk_bytes(),
            fail_fast=fail_fast,
            preserve_digests=preserve_digests,
            mount_index_dir=run.mount_index_dir(),
            attachments=attachments,
            pull_quota_reserve=run.pull_quota_reserve,
            trust=trust,
            registries_d=registries_d(),
            remove_signatures=remove_signatures,
        )


SYNC_RUN_FLAGS: FlagGroup[SyncRunFlags] = joined_groups(
    SyncRunFlags,
    {
        "output": OUTPUT_FLAGS,
        "run": RUN_FLAGS,
        "extensions": EXTENSION_FLAGS,
        "registries": REGISTRY_SIDES,
        "retry": RETRY_FLAGS,
    },
)
