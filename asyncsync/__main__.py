"""``python -m asyncsync``."""

from asyncsync.cli.app import entry_point

entry_point()
