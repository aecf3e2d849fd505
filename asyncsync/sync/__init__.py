"""Sync: plans of a spec (:mod:`asyncsync.specs`) and the run that copies them.

* :mod:`~asyncsync.sync.spec_plan` and :mod:`~asyncsync.sync.plan` - expansion into images pinned by
  digest (:func:`~asyncsync.sync.spec_plan.build_plan`);
* :mod:`~asyncsync.sync.decisions` - copy/skip checks and ``--dry-run`` lines;
* :mod:`~asyncsync.sync.registry_lister` - the plan's registry access over ``asyncsync.registry``;
* :mod:`~asyncsync.sync.scheduler` - the bounded pool that runs the copies.

The plan layer never writes anything; only the scheduler drives the copy engine.
"""
