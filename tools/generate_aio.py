"""Write ``sidequest_sql/aio_operations.py``: every operation of ``SQLBackend`` as a coroutine.

    python tools/generate_aio.py          # rewrite the file
    python tools/generate_aio.py --check  # exit 1 if the file is not what this writes

``SQLBackend`` is the source: the async class is derived from it, never
edited by hand, so that the two cannot drift (a test runs ``--check``'s
comparison). Each generated method has the sync one's parameters, defaults,
return type and docstring, takes an ``AsyncConnection`` where the sync one
takes a ``Connection``, and hands the call to ``AsyncSQLBackend``'s runner,
which runs the sync method over the asyncio driver.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "sidequest_sql" / "aio_operations.py"

# How AsyncSQLBackend runs an operation, where it is not its plain runner ``_run``.
RUNNERS = {
    "claim_pending_job": "_claim",
    "migrate": "_migrate",
    "rollback_migration": "_migrate",
}
NOT_OPERATIONS = {"close"}

HEADER = '''"""Every operation of ``SQLBackend`` as a coroutine, for ``aio.AsyncSQLBackend``.

Generated from ``sidequest_sql/base.py`` by ``tools/generate_aio.py``: do not
edit; change ``SQLBackend`` and run the tool again (a test checks that this
file is what it writes).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from .records import JobCounts, JobCountsAt, JobData, JobTransition, NewJobData, QueueConfig


class AsyncOperations:
    """The operations; ``AsyncSQLBackend`` supplies the runners they call."""

    async def _run(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    _claim = _migrate = _run
'''


def operations() -> list[str]:
    """The public operations of ``SQLBackend``, in the order the class defines them."""
    sys.path.insert(0, str(ROOT))
    from sidequest_sql.base import SQLBackend

    return [
        name
        for name, value in vars(SQLBackend).items()
        if inspect.isfunction(value) and not name.startswith("_") and name not in NOT_OPERATIONS
    ]


def method(name: str) -> str:
    from sidequest_sql.base import SQLBackend

    function = getattr(SQLBackend, name)
    signature = inspect.signature(function)
    params: list[str] = []
    args: list[str] = []
    star_done = False
    for param in signature.parameters.values():
        annotation = param.annotation if isinstance(param.annotation, str) else None
        if annotation is not None:
            annotation = annotation.replace("Connection | None", "AsyncConnection | None")
        text = param.name if annotation is None or param.name == "self" else f"{param.name}: {annotation}"
        if param.default is not inspect.Parameter.empty:
            text += f" = {_literal(param.default)}"
        if param.kind is inspect.Parameter.KEYWORD_ONLY and not star_done:
            params.append("*")
            star_done = True
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            text = "**" + text
        params.append(text)
        if param.name == "self":
            continue
        if param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
            args.append(param.name)
        elif param.kind is inspect.Parameter.KEYWORD_ONLY:
            args.append(f"{param.name}={param.name}")
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            args.append(f"**{param.name}")
    returns = signature.return_annotation
    doc = inspect.getdoc(function)
    lines = [f"    async def {name}(", *(f"        {p}," for p in params), f"    ) -> {returns}:"]
    if doc:
        body = textwrap.indent(doc, " " * 8).lstrip()
        lines.append(f'        """{body}' + ('\n        """' if "\n" in doc else '"""'))
    runner = RUNNERS.get(name, "_run")
    call = ", ".join([f'"{name}"', *args])
    if len(call) + len(runner) + 28 <= 110:
        lines.append(f"        return await self.{runner}({call})")
    else:
        lines += [
            f"        return await self.{runner}(",
            f'            "{name}",',
            *(f"            {a}," for a in args),
            "        )",
        ]
    return "\n".join(lines)


def _literal(value: object) -> str:
    """A default as the source writes it: strings in double quotes."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def generate() -> str:
    return HEADER + "".join(f"\n{method(name)}\n" for name in operations())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the file on disk")
    text = generate()
    if parser.parse_args().check:
        if TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run python tools/generate_aio.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
