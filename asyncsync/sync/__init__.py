"""Sync: specs, plans and the run that copies them.

* :mod:`~asyncsync.sync.spec` - the spec model and :func:`load_spec` (both formats; the native
  format is documented there), with :mod:`~asyncsync.sync.spec_skopeo`,
  :mod:`~asyncsync.sync.spec_native` and :mod:`~asyncsync.sync.yaml_lines` (line-aware YAML);
* :mod:`~asyncsync.sync.filters` and :mod:`~asyncsync.sync.semver_range` - tag selection;
* :mod:`~asyncsync.sync.plan` - expansion into images pinned by digest (:func:`build_plan`);
* :mod:`~asyncsync.sync.decisions` - copy/skip checks and ``--dry-run`` lines;
* :mod:`~asyncsync.sync.registry_lister` - the plan's registry access over ``asyncsync.registry``;
* :mod:`~asyncsync.sync.scheduler` - the bounded pool that runs the copies.

The spec and plan layers never write anything; only the scheduler drives the copy engine.
"""
