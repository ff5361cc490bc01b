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

    from .backends import BackendFactory
    from .clock import ManualClock


@pytest.fixture
def backend(
    sidequest_url: str,
    sidequest_clock: ManualClock,
    sidequest_engine_options: dict[str, Any],
    sidequest_backends: BackendFactory,
) -> Iterator[SQLBackend]:
    """A migrated, empty backend on ``sidequest_url`` whose time is ``sidequest_clock``
    (sync, or async behind a sync facade: ``sidequest_backends``)."""
    store = sidequest_backends(
        sidequest_url, clock=sidequest_clock, worker_name="contract-worker", **sidequest_engine_options
    )
    store.migrate()
    store.truncate()
    try:
        yield store
    finally:
        store.close()
