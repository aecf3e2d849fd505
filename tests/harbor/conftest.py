"""Fixtures for the Harbor tests: fresh Harbor-compatible servers (tests/helpers/harbor_server.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tests.helpers.harbor_server import HarborServer

HarborFactory = Callable[..., HarborServer]


@pytest.fixture
def make_harbor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HarborFactory]:
    """``make_harbor(**options)`` starts a fresh :class:`HarborServer`; all are stopped after the test."""
    with ExitStack() as stack:

        def factory(**options: Any) -> HarborServer:
            server = HarborServer(tmp_path_factory.mktemp("harbor"), **options).start()
            stack.callback(server.stop)
            return server

        yield factory
