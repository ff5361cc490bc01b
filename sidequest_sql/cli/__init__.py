"""``sidequest-sql``: the operator's command line for a sidequest_sql job store.

    sidequest-sql --url postgresql://app@localhost/app stats
    sidequest-sql jobs --state failed --json | jq '.[].id'

Modules: ``app`` the commands, ``render`` tables and JSON, ``chart`` the
stacked time chart, ``transitions`` the rerun/cancel/release rules as pure
functions, ``cleanup`` batched deletion, ``params`` durations,
``failures`` errors as one sentence and an exit status, ``worker`` the
``worker`` command.
"""

from __future__ import annotations

from collections.abc import Sequence

from .app import cli
from .worker import worker

cli.add_command(worker)

__all__ = ["cli", "main"]


def main(args: Sequence[str] | None = None) -> None:
    """The console script: runs a command and exits with its status."""
    cli.main(args=list(args) if args is not None else None, prog_name="sidequest-sql")
