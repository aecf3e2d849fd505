"""``python -m asyncsync``."""

from asyncsync.cli.app import main

main()
