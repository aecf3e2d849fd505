"""``python -m asyncsync``."""

import gc

gc.disable()  # until the command's modules are loaded: see asyncsync.cli.app.resume_collector

from asyncsync.cli.app import entry_point  # noqa: E402

entry_point()
