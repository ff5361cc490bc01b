"""Every contract test, gathered for a project to import into one test module::

    from sidequest_sql.testing.suite import *  # noqa: F403

    @pytest.fixture
    def sidequest_url():
        return "cockroachdb://root@localhost:26257/scratch"

The suite is the ``test_*`` modules of this package; adding one adds it here,
with its tests and the fixtures it defines at module level.
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


def _gather() -> None:
    origins: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        for name, value in vars(module).items():
            if not (name.startswith(("Test", "test_")) or _is_fixture(value)):
                continue
            if name in origins and globals()[name] is value:
                continue  # a shared fixture, imported by several modules
            if name in origins:
                raise ImportError(f"{name} is defined in both {origins[name]} and {module.__name__}")
            origins[name] = module.__name__
            globals()[name] = value
            __all__.append(name)


_gather()
