"""The contract suite's settings for this project's own runs of it."""

from typing import Any

import pytest
from hypothesis import settings

from sidequest_sql.testing.plugin import QUICK_PROFILE


@pytest.fixture
def sidequest_settings(sidequest_settings: Any, sidequest_async: bool) -> Any:
    """The async backend runs the very operations of the sync one (``sidequest_sql.aio``):
    its Hypothesis tests take the quick profile, which keeps CI short; the sync
    backend's, on the same database, take the full one."""
    return settings.get_profile(QUICK_PROFILE) if sidequest_async else sidequest_settings
