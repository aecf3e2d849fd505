"""A sync run's settings, resolved once: :func:`resolve_settings` -> one frozen :class:`RunSettings`.

The edge (the ``sync`` command, or the mirror loop once per cycle) loads the spec, collects what
the command line said into a :class:`CommandLine` and calls :func:`resolve_settings`; the engine,
the hooks and everything below them receive the :class:`RunSettings` and never look at flags,
the environment or the spec's ``defaults:``/``registries:`` again.

Precedence, the first that has a value wins:

1. a **flag** given on the command line (``None`` in :class:`CommandLine` = not given);
2. the **spec entry**: a native spec's ``registries:`` entry for the host, skopeo YAML's block
   for a source registry;
3. the native spec's **defaults:**;
4. the **environment** (the mount-cache directory, ``$XDG_CACHE_HOME``; read by the CLI into
   :attr:`CommandLine.mount_index_dir`);
5. the **built-in** default (:mod:`asyncsync.limits`, :class:`~asyncsync.retry.RetryPolicy`).

The pool sizes (images and blobs in flight, requests per host) are then computed from what was
asked by :func:`asyncsync.limits.pool_sizes`, which applies the deadlock rule (blobs in flight stay
below every per-host limit).

One exception, deliberate: the flags of a registry *side* (``--src-creds``, ``--dest-tls-verify``,
``--src-cert-dir``, ``--chunk-size``, ``--max-requests-per-host``...) hold for every host of that
side, while a spec entry names one host. The entry is the more specific statement and wins for
its host, as ``skopeo sync`` lets its YAML's ``credentials``/``tls-verify`` win over
``--src-creds``/``--src-tls-verify``. So for a host the spec lists: entry > flag > defaults >
built-in; for any other host: flag > defaults > built-in. skopeo's YAML describes source
registries only: its entries never reach a destination.

Trust (the policy and signers, ``--registries.d``, ``--remove-signatures``) and the run's
attachment policy come from the command line alone; they pass through :class:`CommandLine`
like every flag, so the :class:`RunSettings` this returns is complete and nothing is laid on it
afterwards (a spec entry's ``attachments:`` narrows the run's policy per image, in the engine).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from asyncsync.copy.attachments.kinds import AttachmentPolicy
from asyncsync.copy.options import TrustSettings
from asyncsync.limits import PoolSizes, pool_sizes
from asyncsync.registry.client import RegistryOptions
from asyncsync.retry import RetryPolicy
from asyncsync.signature.registries_d import RegistriesD
from asyncsync.specs.model import RegistryConfig, SyncSpec

Side = Literal["source", "dest"]


@dataclass(frozen=True, slots=True)
class CommandLine:
    """What the command line said for a sync run; ``None`` (or ``False``) = not given.

    ``source``/``destination`` are the ``--src-*``/``--dest-*`` registry flags, with the
    built-in ``tls_verify`` when ``source_tls_verify``/``destination_tls_verify`` is ``None``
    (the flag was not given, so a spec's ``defaults: tls-verify`` may decide). ``retry_delay``
    is in seconds, ``chunk_size`` in bytes (parsed by the CLI). ``mount_index_dir`` is where the
    mount-source index persists (``None``: not persisted; ``--no-mount-cache``).
    """

    source: RegistryOptions = field(default_factory=RegistryOptions)
    destination: RegistryOptions = field(default_factory=RegistryOptions)
    source_tls_verify: bool | None = None
    destination_tls_verify: bool | None = None
    parallel: int | None = None
    blobs_in_flight: int | None = None
    retry_times: int | None = None
    retry_delay: float | None = None
    max_requests_per_host: int | None = None
    chunk_size: int | None = None
    fail_fast: bool = False
    preserve_digests: bool = False
    mount_index_dir: Path | None = None
    #: What follows each image (``--attachments``, ``--attachment-type``, ``--remove-signatures``;
    #: ``None``: nothing). A spec entry may turn it off or name types (:meth:`RunSettings` keeps
    #: the run's; the engine lays each entry's ``attachments:``/``attachment-types:`` over it).
    attachments: AttachmentPolicy | None = None
    pull_quota_reserve: int | None = None
    #: The policy and signers (global ``--policy``/``--insecure-policy``, ``--sign-*``), loaded by
    #: the CLI so a bad file is reported first; ``None``: no check, no signatures carried.
    trust: TrustSettings | None = None
    #: Where registries keep signatures (``--registries.d``); ``None``: nowhere configured.
    registries_d: RegistriesD | None = None
    #: skopeo's ``--remove-signatures``: existing signatures are not carried.
    remove_signatures: bool = False


@dataclass(frozen=True, slots=True)
class HostSettings:
    """What one registry host gets in a run: registry access per side, upload chunks, requests in
    flight (as :func:`~asyncsync.limits.pool_sizes` set them) and requests per second."""

    source: RegistryOptions
    destination: RegistryOptions
    chunk_size: int | None
    max_requests: int
    requests_per_second: float | None

    def options(self, side: Side) -> RegistryOptions:
        return self.source if side == "source" else self.destination


@dataclass(frozen=True, slots=True)
class RunSettings:
    """A run's resolved settings (see the module docstring for how each value was decided).

    ``pool`` holds images and blobs in flight and the per-host request limits. ``hosts`` holds the
    hosts the spec lists; every other host gets ``other_hosts``. ``preserve_digests`` forbids any
    change of manifest bytes in every copy of the run. ``trust`` is the policy and signers every
    copy asks (``None``: no check, no signatures carried), ``registries_d`` where registries keep
    signatures, ``remove_signatures`` skopeo's ``--remove-signatures`` (from the command line
    only: a spec has no trust keys).
    """

    pool: PoolSizes
    retry: RetryPolicy
    other_hosts: HostSettings
    hosts: Mapping[str, HostSettings] = field(default_factory=lambda: MappingProxyType({}))
    fail_fast: bool = False
    preserve_digests: bool = False
    mount_index_dir: Path | None = None
    attachments: AttachmentPolicy | None = None
    trust: TrustSettings | None = None
    registries_d: RegistriesD | None = None
    remove_signatures: bool = False
    #: pulls of a source's quota never spent (:mod:`asyncsync.quota`)
    pull_quota_reserve: int = 0

    def host(self, host: str) -> HostSettings:
        return self.hosts.get(host, self.other_hosts)

    def registry_options(self, host: str, side: Side) -> RegistryOptions:
        """The options ``host`` is reached with from ``side``."""
        return self.host(host).options(side)


def _side_options(flags: RegistryOptions, tls_flag: bool | None, spec: SyncSpec) -> RegistryOptions:
    """A side's options for hosts the spec does not list: flag > ``defaults: tls-verify`` > built-in."""
    if tls_flag is None and spec.defaults.tls_verify is not None:
        return replace(flags, tls_verify=spec.defaults.tls_verify)
    return flags


def _with_entry(options: RegistryOptions, config: RegistryConfig) -> RegistryOptions:
    """``options`` with a spec entry's registry access laid over it (the entry names the host)."""
    if config.credentials is not None:
        options = replace(options, credentials=config.credentials, no_creds=False, authfile=None)
    if config.no_creds:
        options = replace(options, no_creds=True, credentials=None)
    if config.authfile is not None:
        options = replace(options, authfile=config.authfile)
    if config.tls_verify is not None:
        options = replace(options, tls_verify=config.tls_verify)
    if config.cert_dir is not None:
        options = replace(options, cert_dir=config.cert_dir)
    return options


def resolve_settings(spec: SyncSpec, flags: CommandLine) -> RunSettings:
    """The one place a run's settings are decided (precedence in the module docstring)."""
    defaults = spec.defaults
    requests_per_host = flags.max_requests_per_host or defaults.max_concurrent_requests
    pool = pool_sizes(
        images=flags.parallel or defaults.parallel,
        blobs=flags.blobs_in_flight or defaults.parallel_blobs,
        requests_per_host=requests_per_host,
        host_limits={c.host: c.max_concurrent_requests or requests_per_host for c in spec.registries},
    )
    other = HostSettings(
        source=_side_options(flags.source, flags.source_tls_verify, spec),
        destination=_side_options(flags.destination, flags.destination_tls_verify, spec),
        chunk_size=flags.chunk_size or defaults.chunk_size,
        max_requests=pool.requests_per_host,
        requests_per_second=defaults.requests_per_second,
    )
    hosts = {}
    for config in spec.registries:
        hosts[config.host] = HostSettings(
            source=_with_entry(other.source, config),
            # skopeo's YAML describes source registries only; its entries never reach a destination.
            destination=_with_entry(other.destination, config)
            if spec.kind == "native"
            else other.destination,
            chunk_size=config.chunk_size or other.chunk_size,
            max_requests=pool.host_limits.get(config.host, pool.requests_per_host),
            requests_per_second=config.requests_per_second or other.requests_per_second,
        )
    return RunSettings(
        pool=pool,
        retry=RetryPolicy.from_flags(
            flags.retry_times if flags.retry_times is not None else defaults.retry_times,
            flags.retry_delay if flags.retry_delay is not None else defaults.retry_delay,
        ),
        other_hosts=other,
        hosts=MappingProxyType(hosts),
        fail_fast=flags.fail_fast,
        preserve_digests=flags.preserve_digests,
        mount_index_dir=flags.mount_index_dir,
        attachments=flags.attachments,
        trust=flags.trust,
        registries_d=flags.registries_d,
        remove_signatures=flags.remove_signatures,
        pull_quota_reserve=next(
            (v for v in (flags.pull_quota_reserve, defaults.pull_quota_reserve) if v is not None), 0
        ),
    )
