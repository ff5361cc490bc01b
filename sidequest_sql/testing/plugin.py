"""pytest plugin: ``--sidequest-url``, ``--sidequest-async`` and the fixtures the contract suite uses.

Loaded through the ``pytest11`` entry point, so it must cost other projects'
test runs nothing: it registers two Hypothesis profiles but loads neither.
The fixtures it adds are all named ``sidequest_*``; the generic ``backend``
fixture lives in ``fixtures`` and reaches only the modules that import it.
The suite's own Hypothesis tests take their settings from ``sidequest_settings``:

- ``sidequest-quick`` (the default): a short run while working on a dialect;
- ``sidequest-ci`` (when ``$CI`` is set): deeper, still a few minutes at most;
- any profile named with ``--hypothesis-profile`` instead of both.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

from . import URL_VARIABLE

if TYPE_CHECKING:
    from .backends import BackendFactory
    from .clock import ManualClock


QUICK_PROFILE = "sidequest-quick"
CI_PROFILE = "sidequest-ci"


def _register_hypothesis_profiles() -> None:
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:
        return
    # Examples share one database through fixtures, each step queries it many
    # times, and a project collects the suite once per database it tests.
    relaxed = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.differing_executors]
    settings.register_profile(
        QUICK_PROFILE, max_examples=25, stateful_step_count=20, deadline=None, suppress_health_check=relaxed
    )
    settings.register_profile(
        CI_PROFILE, max_examples=50, stateful_step_count=30, deadline=None, suppress_health_check=relaxed
    )


# At import, so that ``--hypothesis-profile sidequest-ci`` finds it registered.
_register_hypothesis_profiles()


@pytest.fixture
def sidequest_settings(request: pytest.FixtureRequest) -> Any:
    """The Hypothesis settings the suite's stateful and property tests run under."""
    from hypothesis import settings

    if request.config.getoption("--hypothesis-profile", None):
        return settings()
    return settings.get_profile(CI_PROFILE if os.environ.get("CI") else QUICK_PROFILE)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sidequest_sql")
    group.addoption(
        "--sidequest-url",
        action="store",
        default=None,
        help=f"database URL the sidequest_sql contract suite runs against (its tables are emptied); "
        f"default ${URL_VARIABLE}",
    )
    group.addoption(
        "--sidequest-async",
        action="store_true",
        default=False,
        help="run the sidequest_sql contract suite against the async backend of the URL (create_async_backend)",
    )


@pytest.fixture
def sidequest_url(request: pytest.FixtureRequest) -> str:
    """The database under test; override this fixture to point the suite elsewhere."""
    url = request.config.getoption("--sidequest-url") or os.environ.get(URL_VARIABLE)
    if not url:
        pytest.skip(f"the contract suite needs a database: pass --sidequest-url URL or set {URL_VARIABLE}")
    return str(url)


@pytest.fixture
def sidequest_async(request: pytest.FixtureRequest) -> bool:
    """Whether the suite tests the URL's async backend (``--sidequest-async``); override to choose."""
    return bool(request.config.getoption("--sidequest-async"))


@pytest.fixture
def sidequest_backends(sidequest_async: bool) -> BackendFactory:
    """What makes every backend the suite tests: ``create_backend``, or
    ``create_async_backend`` behind a sync facade (``backends.BlockingBackend``)."""
    from .backends import BackendFactory

    return BackendFactory(asynchronous=sidequest_async)


@pytest.fixture
def sidequest_engine_options() -> dict[str, Any]:
    """``create_engine`` options for the backends the suite works with; override to add some.

    Behind PgBouncer in transaction pooling mode, for instance,
    ``{"connect_args": {"prepare_threshold": None}}``.
    """
    return {}


@pytest.fixture
def sidequest_clock() -> ManualClock:
    """The only source of "now" for the backend under test."""
    from .clock import ManualClock

    return ManualClock()
