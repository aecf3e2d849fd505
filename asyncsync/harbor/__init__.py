"""Harbor support: the ``/api/v2.0`` client, API-based source discovery and run hooks.

* :mod:`asyncsync.harbor.api` - :class:`~asyncsync.harbor.api.HarborAPI` (projects, repositories,
  artifacts with tags, the blob-digest repository query, tag deletion);
* :mod:`asyncsync.harbor.lister` - :class:`~asyncsync.harbor.lister.HarborLister`, a
  :class:`~asyncsync.sync.plan.SourceLister` wrapper that discovers through the API;
* :mod:`asyncsync.harbor.hooks` - :class:`~asyncsync.harbor.hooks.HarborHooks`: project checks and
  creation before copying, and the Harbor mount-source locator.

Registries opt in per host with ``type: harbor`` in a native spec.
"""
