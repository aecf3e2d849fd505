"""Native sync specs written for a test: one entry between two registries reached over plain HTTP."""

from __future__ import annotations

from pathlib import Path


def write_native_spec(
    path: Path, source: str, target: str, *, source_path: str = "team/*", target_path: str = "mirror/"
) -> Path:
    """Write (and return) ``path``: ``source``/``source_path`` synced to ``target``/``target_path``,
    both registries with ``tls-verify: false``."""
    path.write_text(
        f"""version: 1
registries:
  {source}: {{tls-verify: false}}
  {target}: {{tls-verify: false}}
sync:
  - from: {source}/{source_path}
    to: {target}/{target_path}
"""
    )
    return path
