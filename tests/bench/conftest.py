"""Fixtures for the bench smoke tests: a small generated workload and registries seeded with it.

The bench is a top-level package of the checkout (``bench/``), not part of ``asyncsync``; the repository
root is put on ``sys.path`` here so these tests run under plain ``pytest`` as well as ``python -m pytest``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.push import push_workload  # noqa: E402
from bench.registries import Registry, start_registry  # noqa: E402
from bench.workload import SCALES, Workload, generate  # noqa: E402


@pytest.fixture(scope="session")
def small_workload(tmp_path_factory: pytest.TempPathFactory) -> Workload:
    """The ``small`` preset (10 tags, 2 of them multi-arch), generated into a session temp cache."""
    return generate(SCALES["small"], tmp_path_factory.mktemp("bench-cache"))


@pytest.fixture(scope="session")
def seeded_source(tmp_path_factory: pytest.TempPathFactory, small_workload: Workload) -> Iterator[Registry]:
    """A real registry holding the small workload (read-only for tests: never modify it)."""
    registry = start_registry(tmp_path_factory.mktemp("bench-source"), name="source")
    try:
        asyncio.run(push_workload(small_workload, registry.url))
        registry.truncate_log()
        yield registry
    finally:
        registry.stop()


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[Registry]:
    """An empty registry for one test."""
    registry = start_registry(tmp_path / "registry", name="fresh")
    try:
        yield registry
    finally:
        registry.stop()
