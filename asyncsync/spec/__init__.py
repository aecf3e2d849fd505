"""The spec language: what a sync is asked to do, read from YAML into frozen values.

* :mod:`~asyncsync.spec.load` - :func:`~asyncsync.spec.load.load_spec`, which tells the two formats apart;
* :mod:`~asyncsync.spec.skopeo` - skopeo's sync YAML and ``--src docker`` sources, skopeo's naming;
* :mod:`~asyncsync.spec.native` - the native format (documented there);
* :mod:`~asyncsync.spec.model` - the frozen values both parsers build (``SyncSpec`` and its parts);
* :mod:`~asyncsync.spec.yaml_lines` - line-aware YAML, so every error names ``file:line``;
* :mod:`~asyncsync.spec.filters` and :mod:`~asyncsync.spec.semver_range` - tag selection.

Nothing here touches the network or knows how a sync runs (:mod:`asyncsync.sync` does).
"""
