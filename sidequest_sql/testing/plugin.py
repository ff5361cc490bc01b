"""pytest plugin: ``--sidequest-url`` and the fixtures the contract suite uses.

Loaded through the ``pytest11`` entry point. It imports nothing heavy, so it
costs other projects' test runs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sidequest_sql.base import SQLBackend

    from .clock import ManualClock


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sidequest_sql")
    group.addoption(
        "--sidequest-url",
        action="store",
        default=None,
        help="database URL the sidequest_sql contract suite runs against (its tables are emptied)",
    )


@pytest.fixture
def sidequest_url(request: pytest.FixtureRequest) -> str:
    """The database under test; override this fixture to point the suite elsewhere."""
    url = request.config.getoption("--sidequest-url")
    if not url:
        pytest.skip("the contract suite needs a database: pass --sidequest-url URL")
    return str(url)


@pytest.fixture
def sidequest_clock() -> ManualClock:
    """The only source of "now" for the backend under test."""
    from .clock import ManualClock

    return ManualClock()


@pytest.fixture
def backend(sidequest_url: str, sidequest_clock: ManualClock) -> Iterator[SQLBackend]:
    """A migrated, empty backend on ``sidequest_url`` whose time is ``sidequest_clock``."""
    from sidequest_sql import create_backend

    store = create_backend(sidequest_url, clock=sidequest_clock, worker_name="contract-worker")
    store.migrate()
    store.truncate()
    try:
        yield store
    finally:
        store.close()
