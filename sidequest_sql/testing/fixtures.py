"""The suite's ``backend`` fixture, imported by each test module that uses it.

It is not part of the pytest plugin: a fixture called ``backend`` would
otherwise appear in every project that has sidequest_sql installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sidequest_sql.base import SQLBackend

    from .clock import ManualClock


@pytest.fixture
def backend(
    sidequest_url: str, sidequest_clock: ManualClock, sidequest_engine_options: dict[str, Any]
) -> Iterator[SQLBackend]:
    """A migrated, empty backend on ``sidequest_url`` whose time is ``sidequest_clock``."""
    from sidequest_sql import create_backend

    store = create_backend(
        sidequest_url, clock=sidequest_clock, worker_name="contract-worker", **sidequest_engine_options
    )
    store.migrate()
    store.truncate()
    try:
        yield store
    finally:
        store.close()
