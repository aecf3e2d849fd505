"""asyncsync's benchmark against ``skopeo sync`` (see bench/README.md).

Run the modules with ``python -m bench.<module>`` from the repository root.
"""
