"""Harbor support: the ``/api/v2.0`` client, API-based source discovery and run hooks.

* :mod:`asyncsync.harbor.api` - :class:`~asyncsync.harbor.api.HarborAPI` (projects, repositories,
  artifacts with tags, the blob-digest repository query, tag deletion, immutability rules);
* :mod:`asyncsync.harbor.lister` - :class:`~asyncsync.harbor.lister.HarborLister`, a
  :class:`~asyncsync.sync.plan.SourceLister` wrapper that discovers through the API;
* :mod:`asyncsync.harbor.hooks` - :class:`~asyncsync.harbor.hooks.HarborHooks`: project checks and
  creation before copying, the Harbor mount-source locator, and immutable tags skipped before
  any upload;
* :mod:`asyncsync.harbor.immutable` - tag-immutability rules evaluated as Harbor does, cached per run;
* :mod:`asyncsync.harbor.doublestar` - the doublestar glob matching of Harbor's selectors.

Registries opt in per host with ``type: harbor`` in a native spec.
"""
