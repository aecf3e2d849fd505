"""``--override-os``/``--override-arch``/``--override-variant``: which instance of a multi-arch image.

skopeo has them as global options (``skopeo --override-arch arm64 inspect ...``); asyncsync accepts
them there too (:mod:`asyncsync.cli.app` stores them in :data:`~asyncsync.cli._run.GLOBAL`) and,
for convenience, after the command (``asyncsync inspect --override-arch arm64 ...``), where they
win over the global ones. Commands receive one :class:`PlatformFlags` from :data:`PLATFORM_FLAGS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from asyncsync.cli._run import GLOBAL
from asyncsync.cli.flag_groups import FlagGroup, flag_option
from asyncsync.manifest import Platform, host_platform


@dataclass(frozen=True, slots=True)
class PlatformFlags:
    """The command's ``--override-*`` values as given (``None``: not given)."""

    os: str | None = None
    arch: str | None = None
    variant: str | None = None

    def effective(self) -> PlatformFlags:
        """Each value from the command, else from the global options."""
        return PlatformFlags(
            self.os or GLOBAL.override_os,
            self.arch or GLOBAL.override_arch,
            self.variant or GLOBAL.override_variant,
        )

    def wanted(self) -> Platform:
        """The platform to pick from an index: this host's, with the overrides applied.

        Overriding the architecture drops the host's variant (an arm64 host's ``v8`` means nothing
        for ``--override-arch amd64``) unless ``--override-variant`` is given too.
        """
        given = self.effective()
        host = host_platform()
        return Platform(
            os=given.os or host.os,
            architecture=given.arch or host.architecture,
            variant=given.variant if given.variant else (None if given.arch else host.variant),
        )

    def override(self) -> Platform | None:
        """:meth:`wanted` when any override was given (here or globally), else ``None``."""
        given = self.effective()
        if given.os is None and given.arch is None and given.variant is None:
            return None
        return self.wanted()


PLATFORM_FLAGS: FlagGroup[PlatformFlags] = FlagGroup(
    PlatformFlags,
    (
        flag_option(
            "override_os",
            Annotated[
                str | None,
                typer.Option("--override-os", metavar="OS", help="Pick this OS from a multi-arch image."),
            ],
            None,
        ),
        flag_option(
            "override_arch",
            Annotated[
                str | None,
                typer.Option(
                    "--override-arch", metavar="ARCH", help="Pick this architecture from a multi-arch image."
                ),
            ],
            None,
        ),
        flag_option(
            "override_variant",
            Annotated[
                str | None,
                typer.Option(
                    "--override-variant", metavar="VARIANT", help="Pick this variant from a multi-arch image."
                ),
            ],
            None,
        ),
    ),
    lambda values: PlatformFlags(values["override_os"], values["override_arch"], values["override_variant"]),
)
