"""How results look: rich tables for people, plain JSON for scripts.

Colour goes to a terminal only and never when ``NO_COLOR`` is set (rich reads
it); off a terminal rich lays tables out for 80 columns.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
from rich import box
from rich.console import Console, Group
from rich.json import JSON
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sidequest_sql.records import JOB_STATES

if TYPE_CHECKING:
    from sidequest_sql.records import JobCounts, JobData, QueueConfig

STATE_STYLES = {
    "waiting": "cyan",
    "claimed": "magenta",
    "running": "yellow",
    "completed": "green",
    "failed": "red",
    "canceled": "bright_black",
}
QUEUE_STATE_STYLES = {"active": "green", "paused": "yellow"}


def make_console(*, stderr: bool = False) -> Console:
    """A console on whatever ``sys.stdout`` is when it prints (CliRunner swaps it)."""
    return Console(stderr=stderr, highlight=False, soft_wrap=False)


# -- JSON ----------------------------------------------------------------------


def plain(value: Any) -> Any:
    """Records, datetimes and containers as JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def echo_json(value: Any) -> None:
    click.echo(json.dumps(plain(value), indent=2, ensure_ascii=False))


# -- cells ---------------------------------------------------------------------


def when(moment: datetime | None) -> str:
    """A UTC time to the second, as people read it."""
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def short_when(moment: datetime) -> str:
    """A UTC time without its year, to keep a table row within 80 columns."""
    return moment.strftime("%m-%d %H:%M:%S")


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def last_event(job: JobData) -> datetime:
    """When the job last changed state, the time ``count_jobs`` counts it at."""
    return (
        job.completed_at or job.failed_at or job.canceled_at or job.attempted_at or job.claimed_at or job.inserted_at
    )


def compact(value: Any) -> str:
    return json.dumps(plain(value), ensure_ascii=False, separators=(",", ":"))


def last_error(job: JobData) -> str | None:
    """The message of the newest recorded error, if the job has one."""
    errors = job.errors
    if not errors:
        return None
    newest = errors[-1] if isinstance(errors, list) else errors
    if isinstance(newest, Mapping):
        message = newest.get("message") or newest.get("name")
        if message is not None:
            return str(message)
    return compact(newest)


# -- tables --------------------------------------------------------------------


def _table(*, title: str | None = None, gap: int = 1) -> Table:
    """A borderless table; columns are ``gap`` + 1 spaces apart."""
    return Table(
        box=box.SIMPLE_HEAD,
        title=title,
        title_justify="left",
        show_edge=False,
        padding=(0, gap, 0, 0),
        expand=False,
    )


def jobs_table(jobs: Iterable[JobData]) -> Table:
    table = _table()
    jobs = list(jobs)
    id_width = max((len(str(job.id)) for job in jobs), default=2)
    table.add_column("id", justify="right", no_wrap=True, min_width=id_width)
    table.add_column("queue", overflow="ellipsis", no_wrap=True, max_width=14)
    table.add_column("class", overflow="ellipsis", no_wrap=True, max_width=16)
    table.add_column("state", no_wrap=True, min_width=9)
    table.add_column("try", justify="right", no_wrap=True, min_width=3)
    table.add_column("last event UTC", no_wrap=True, min_width=14)
    table.add_column("args / last error", overflow="ellipsis", no_wrap=True, min_width=8)
    for job in jobs:
        error = last_error(job) if job.state == "failed" else None
        detail = Text(error, style="red") if error is not None else Text(compact(job.args))
        table.add_row(
            str(job.id),
            job.queue,
            job.job_class,
            state_text(job.state),
            f"{job.attempt}/{job.max_attempts}",
            short_when(last_event(job)),
            detail,
        )
    return table


def counts_cells(counts: JobCounts, *, total: bool = True) -> list[Text | str]:
    cells: list[Text | str] = []
    for state in JOB_STATES:
        n = getattr(counts, state)
        cells.append(Text(str(n), style=STATE_STYLES[state] if n else "dim"))
    if total:
        cells.append(Text(str(counts.total), style="bold"))
    return cells


def _count_columns(table: Table, *, total: bool = True) -> None:
    for state in JOB_STATES:
        table.add_column(state, justify="right", no_wrap=True)
    if total:
        table.add_column("total", justify="right", no_wrap=True)


def queues_table(queues: Iterable[tuple[str, QueueConfig | None, JobCounts]]) -> Table:
    table = _table(gap=0)
    table.add_column("queue", overflow="ellipsis", no_wrap=True, max_width=16)
    table.add_column("state", no_wrap=True)
    table.add_column("conc", justify="right", no_wrap=True)
    table.add_column("prio", justify="right", no_wrap=True)
    # No total column: it would crowd names out of 80 columns; `stats` has totals.
    _count_columns(table, total=False)
    for name, config, counts in queues:
        if config is None:
            settings: list[Text | str] = [Text("-", style="dim")] * 3
        else:
            settings = [
                Text(config.state, style=QUEUE_STATE_STYLES.get(config.state, "")),
                str(config.concurrency),
                str(config.priority),
            ]
        table.add_row(name, *settings, *counts_cells(counts, total=False))
    return table


def counts_table(total: JobCounts, by_queue: Mapping[str, JobCounts]) -> Table:
    table = _table(title="Jobs per state")
    table.add_column("queue", overflow="ellipsis", no_wrap=True, max_width=16)
    _count_columns(table)
    for name, counts in by_queue.items():
        table.add_row(name, *counts_cells(counts))
    table.add_section()
    table.add_row(Text("all queues", style="bold"), *counts_cells(total))
    return table


def queue_line(queue: QueueConfig) -> Text:
    return Text.assemble(
        (queue.name, "bold"),
        ": ",
        (queue.state, QUEUE_STATE_STYLES.get(queue.state, "")),
        f", concurrency {queue.concurrency}, priority {queue.priority}",
    )


# -- one job -------------------------------------------------------------------

_PAYLOADS = ("args", "constructor_args", "result", "errors", "uniqueness_config")


def job_detail(job: JobData) -> Group:
    """Every field: scalars as a two-column grid, JSON payloads pretty-printed."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for field in dataclasses.fields(job):
        if field.name in _PAYLOADS:
            continue
        value = getattr(job, field.name)
        if field.name == "state":
            cell: Text | str = state_text(value)
        elif isinstance(value, datetime):
            cell = value.isoformat()
        elif value is None:
            cell = Text("-", style="dim")
        else:
            cell = str(value)
        grid.add_row(field.name, cell)
    parts: list[Any] = [Text(f"Job {job.id}", style="bold"), grid]
    for name in _PAYLOADS:
        value = getattr(job, name)
        if value is None and name in ("result", "errors", "uniqueness_config"):
            continue
        style = "red" if name == "errors" else "blue"
        body = JSON(json.dumps(plain(value), ensure_ascii=False), indent=2, highlight=True)
        parts.append(Panel(body, title=name, title_align="left", border_style=style, box=box.ROUNDED, expand=False))
    return Group(*parts)
