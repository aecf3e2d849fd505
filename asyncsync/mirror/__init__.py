"""Scheduled mirrors: ``asyncsync mirror SPEC --every 30m`` (or ``--cron``, or ``--once``).

* :mod:`asyncsync.mirror.loop` - :class:`~asyncsync.mirror.loop.MirrorLoop`: sync cycles that never
  overlap, with jitter, clean shutdown on SIGTERM;
* :mod:`asyncsync.mirror.cron` - the five-field cron expressions of ``--cron``;
* :mod:`asyncsync.mirror.metrics` - Prometheus ``/metrics`` and ``/healthz``.
"""
