"""``sidequest-sql worker``: runs ``sidequest_sql.Worker`` from the terminal.

On a terminal it shows one live line (running, done, failed, jobs/s) with
warnings above it; elsewhere (a service, a container) it logs one line per
outcome through ``logging``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import click
from rich.live import Live
from rich.logging import RichHandler
from rich.text import Text

from sidequest_sql.worker import Stats, Worker

from .app import backend_command, out, url_option
from .failures import Failure
from .params import Duration

if TYPE_CHECKING:
    from sidequest_sql.base import SQLBackend

LOGGER = "sidequest_sql.worker"


@click.command("worker")
@url_option
@click.option("--queue", "-q", "queues", multiple=True, required=True, metavar="NAME",
              help="A queue to take jobs from; repeat for several (higher-priority queues first).")
@click.option("--concurrency", "-c", type=click.IntRange(min=1),
              help="Jobs run at once per queue; default each queue's own setting, else 10.")
@click.option("--import", "imports", multiple=True, metavar="MODULE",
              help="Import this module first (where your jobs are); repeat for several.")
@click.option("--burst", is_flag=True, help="Exit (status 0) once the queues have nothing to run.")
@click.option("--grace", type=click.FloatRange(min=0), default=30.0, show_default=True, metavar="SECONDS",
              help="On SIGTERM or SIGINT, how long running jobs may take to finish.")
@click.option("--poll-interval", type=click.FloatRange(min=0.01), default=None, metavar="SECONDS",
              help="Where the database cannot wake an idle worker (SQLite, MySQL/MariaDB, Postgres "
                   "through PgBouncer in transaction mode), how often it looks for new jobs; "
                   "default the backend's (0.5).")
@click.option("--cleanup-older-than", type=Duration(), default="30d", show_default=True, metavar="DURATION",
              help="Delete finished jobs older than this (every hour).")
@backend_command
def worker(
    backend: SQLBackend,
    queues: tuple[str, ...],
    concurrency: int | None,
    imports: tuple[str, ...],
    burst: bool,
    grace: float,
    poll_interval: float | None,
    cleanup_older_than: timedelta,
) -> None:
    """Run jobs from the given queues until stopped.

    Jobs are found by the module path (script) and name (job_class) they were
    enqueued with; the current directory is on the import path. SIGTERM or
    SIGINT stops claiming, lets running jobs finish for --grace seconds, gives
    back the rest and exits 0; a second signal exits at once.

    Example: sidequest-sql worker --queue emails --queue default --import app.jobs
    """
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in imports:
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise Failure(f"cannot import {module!r}: {type(exc).__name__}: {exc}.") from exc
    if poll_interval is not None:
        backend.poll_interval = poll_interval
    running = Worker(backend, list(queues), concurrency=concurrency, burst=burst, grace=grace,
                     cleanup_older_than=cleanup_older_than)  # fmt: skip
    console = out()
    if console.is_terminal:
        _run_live(running, console)
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger(LOGGER).setLevel(logging.INFO)
        running.run()


def _run_live(running: Worker, console: object) -> None:
    """The worker under one live status line; warnings and errors print above it."""
    logger = logging.getLogger(LOGGER)
    handler = RichHandler(console=console, show_path=False)  # type: ignore[arg-type]
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        with Live(get_renderable=lambda: status_line(running.stats), console=console,  # type: ignore[arg-type]
                  refresh_per_second=4, transient=False):  # fmt: skip
            running.run()
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def status_line(stats: Stats, now: float | None = None) -> Text:
    elapsed = max((now if now is not None else time.monotonic()) - stats.started_at, 1e-9)
    return Text.assemble(
        ("running ", "dim"), (str(stats.running), "bold"),
        ("  done ", "dim"), (str(stats.completed), "green"),
        ("  failed ", "dim"), (str(stats.failed), "red"),
        ("  retried ", "dim"), (str(stats.retried), "yellow"),
        ("  jobs/s ", "dim"), f"{stats.completed / elapsed:.1f}",
    )  # fmt: skip
