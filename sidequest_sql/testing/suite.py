"""Every contract test, gathered for a project to import into one test module::

    from sidequest_sql.testing.suite import *  # noqa: F403

    @pytest.fixture
    def sidequest_url():
        return "cockroachdb://root@localhost:26257/scratch"

The suite is the ``test_*`` modules of this package; adding one adds it here,
with its tests and the fixtures it defines at module level. A project that runs
only part of it picks modules with ``gather`` instead::

    from sidequest_sql.testing.suite import gather

    globals().update(gather("test_queues", "test_jobs"))
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

__all__: list[str] = []


def _is_fixture(value: Any) -> bool:
    # pytest >= 8.4 marks fixture definitions with the first attribute, older ones with the second.
    return hasattr(value, "_fixture_function_marker") or hasattr(value, "_pytestfixturefunction")


def gather(*modules: str) -> dict[str, Any]:
    """The tests and module-level fixtures of the suite's ``test_*`` modules, or of those named."""
    names = sorted(info.name for info in pkgutil.iter_modules([str(Path(__file__).parent)]))
    suite = [name for name in names if name.startswith("test_")]
    unknown = sorted(set(modules) - set(suite))
    if unknown:
        raise ValueError(f"not modules of the suite: {', '.join(unknown)}; it has {', '.join(suite)}")
    found: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name in modules or suite:
        module = importlib.import_module(f"{__package__}.{name}")
        for attribute, value in vars(module).items():
            if not (attribute.startswith(("Test", "test_")) or _is_fixture(value)):
                continue
            if attribute in origins and found[attribute] is value:
                continue  # a shared fixture, imported by several modules
            if attribute in origins:
                raise ImportError(f"{attribute} is defined in both {origins[attribute]} and {module.__name__}")
            origins[attribute] = module.__name__
            found[attribute] = value
    return found


_SUITE = gather()
globals().update(_SUITE)
__all__.extend(_SUITE)
