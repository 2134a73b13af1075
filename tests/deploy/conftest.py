"""Fixtures for the deployment tests: one coturn for the run, and the app on SQLite only
(what is proven here does not depend on the database backend)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_database
from tests.deploy.coturn import Coturn, start_coturn


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database(request, tmp_path, "sqlite")


@pytest.fixture(scope="session")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    server = start_coturn(tmp_path_factory.mktemp("coturn"))
    try:
        yield server
    finally:
        server.stop()
