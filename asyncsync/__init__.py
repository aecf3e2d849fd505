"""asyncsync: copy and sync container images between registries at high concurrency."""

__version__ = "0.1.0"
