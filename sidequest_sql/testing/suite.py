"""Every contract test, gathered for a project to import into one test module::

    from sidequest_sql.testing.suite import *  # noqa: F403

    @pytest.fixture
    def sidequest_url():
        return "cockroachdb://root@localhost:26257/scratch"

The suite is the ``test_*`` modules of this package; adding one adds it here.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

__all__: list[str] = []

for _info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda info: info.name):
    if not _info.name.startswith("test_"):
        continue
    _module = importlib.import_module(f"{__package__}.{_info.name}")
    for _name in dir(_module):
        if _name.startswith(("Test", "test_")):
            globals()[_name] = getattr(_module, _name)
            __all__.append(_name)
