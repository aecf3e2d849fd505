"""The spec language: what a sync is asked to do, read from YAML into frozen values.

* :mod:`~asyncsync.specs.load` - :func:`~asyncsync.specs.load.load_spec`, which tells the two formats apart;
* :mod:`~asyncsync.specs.skopeo` - skopeo's sync YAML and ``--src docker`` sources, skopeo's naming;
* :mod:`~asyncsync.specs.native` - the native format (documented there);
* :mod:`~asyncsync.specs.model` - the frozen values both parsers build (``SyncSpec`` and its parts);
* :mod:`~asyncsync.specs.yaml_lines` - line-aware YAML, so every error names ``file:line``;
* :mod:`~asyncsync.specs.filters` and :mod:`~asyncsync.specs.semver_range` - tag selection.

Nothing here touches the network or knows how a sync runs (:mod:`asyncsync.sync` does).
"""
