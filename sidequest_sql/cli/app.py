"""The ``sidequest-sql`` commands: click wiring over ``SQLBackend``'s public operations."""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.text import Text

from sidequest_sql.errors import JobNotFoundError
from sidequest_sql.records import JOB_STATES
from sidequest_sql.registry import DEFAULT_URL, URL_VARIABLE, create_backend, dialect_for, parse_url
from sidequest_sql.testing import URL_VARIABLE as CONTRACT_URL_VARIABLE

from . import chart, cleanup, render, transitions
from .failures import Failure, translated
from .params import Duration, TimeRange

if TYPE_CHECKING:
    from sidequest_sql.base import SQLBackend
    from sidequest_sql.records import JobData

F = TypeVar("F", bound=Callable[..., Any])

MAX_ID = 2**63 - 1


class State:
    """What the commands of one invocation share: the URL and, once needed, the backend."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self._backend: SQLBackend | None = None

    @property
    def backend(self) -> SQLBackend:
        if self._backend is None:
            self._backend = create_backend(self.url)
        return self._backend

    def opened(self) -> SQLBackend | None:
        return self._backend

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


class SidequestGroup(click.Group):
    """A group whose commands fail with one sentence and the right exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        state = ctx.ensure_object(State)
        ctx.call_on_close(state.close)
        with translated(state.opened):
            return super().invoke(ctx)


def _set_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(State).url = value


def url_option(function: F) -> F:
    """``--url``, accepted before or after the command name."""
    return click.option(
        "--url",
        metavar="URL",
        expose_value=False,
        is_eager=True,
        callback=_set_url,
        help=f"Database URL; default ${URL_VARIABLE}, else {DEFAULT_URL}.",
    )(function)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON only.")(function)


def yes_option(function: F) -> F:
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(function)


def backend_command(function: Callable[..., Any]) -> Callable[..., Any]:
    """Hand the command its backend as the first argument."""

    @click.pass_obj
    @functools.wraps(function)
    def wrapper(state: State, *args: Any, **kwargs: Any) -> Any:
        return function(state.backend, *args, **kwargs)

    return wrapper


def out() -> Any:
    return render.make_console()


def on_terminal() -> bool:
    stdin = sys.stdin
    return stdin is not None and stdin.isatty()


def confirm(question: str, yes: bool) -> None:
    """Ask on a terminal unless ``--yes``; a script (no terminal) is not asked."""
    if not yes and on_terminal():
        click.confirm(question, abort=True, err=True)


def job_id_argument(function: F) -> F:
    return click.argument("job_id", metavar="ID", type=click.IntRange(1, MAX_ID))(function)


def get_job(backend: SQLBackend, job_id: int) -> JobData:
    job = backend.get_job(job_id)
    if job is None:
        raise JobNotFoundError(f"no job has id {job_id}")
    return job


# -- the group -------------------------------------------------------------------


@click.group(cls=SidequestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@url_option
@click.version_option(package_name="sidequest-sql", prog_name="sidequest-sql")
def cli() -> None:
    """Inspect and operate a sidequest_sql job store.

    Point it at a database with --url (before or after the command), else
    $SIDEQUEST_DATABASE_URL, else sqlite:///sidequest.sqlite in the current
    directory. Every listing takes --json for scripts.

    Exit status: 0 done, 1 refused or not found (or the database failed),
    2 bad usage.
    """


# -- schema ----------------------------------------------------------------------


@cli.command()
@url_option
@json_option
@backend_command
def migrate(backend: SQLBackend, as_json: bool) -> None:
    """Bring the schema to the newest revision and print the revisions applied."""
    applied = backend.migrate()
    if as_json:
        render.echo_json({"applied": applied})
    elif applied:
        out().print(f"Applied {len(applied)} revision{'s' if len(applied) > 1 else ''}: {', '.join(applied)}.")
    else:
        out().print("Nothing to apply: the schema is already at the newest revision.")


@cli.command()
@url_option
@yes_option
@json_option
@backend_command
def rollback(backend: SQLBackend, yes: bool, as_json: bool) -> None:
    """Undo the newest schema revision and print it.

    Rolling back the first revision drops the sidequest tables and every job
    in them; on a terminal you are asked first, unless --yes.
    """
    confirm(f"Roll back the newest schema revision of {render_url(backend)}?", yes)
    revision = backend.rollback_migration()
    if as_json:
        render.echo_json({"rolled_back": revision})
    elif revision:
        out().print(f"Rolled back revision {revision}.")
    else:
        out().print("Nothing to roll back: no revision is applied.")


def render_url(backend: SQLBackend) -> str:
    return backend.url.render_as_string(hide_password=True)


# -- queues ----------------------------------------------------------------------


@cli.group(cls=SidequestGroup, invoke_without_command=True)
@url_option
@json_option
@click.pass_context
def queues(ctx: click.Context, as_json: bool) -> None:
    """List queues: their settings and how many jobs each has per state.

    Queues that jobs use but that have no settings row are listed with "-"
    settings. Change a queue with `queues set NAME`.
    """
    if ctx.invoked_subcommand is not None:
        return
    backend = ctx.find_object(State).backend  # type: ignore[union-attr]
    configs = backend.list_queues()
    counts = backend.count_jobs_by_queues()
    configured = {queue.name for queue in configs}
    rows = [(queue.name, queue, counts.get(queue.name) or _zero()) for queue in configs]
    rows += [(name, None, counts[name]) for name in sorted(counts) if name not in configured]
    if as_json:
        render.echo_json(
            [
                {
                    "name": name,
                    "id": None if config is None else config.id,
                    "state": None if config is None else config.state,
                    "concurrency": None if config is None else config.concurrency,
                    "priority": None if config is None else config.priority,
                    "counts": job_counts,
                }
                for name, config, job_counts in rows
            ]
        )
    elif rows:
        out().print(render.queues_table(rows))
    else:
        out().print("No queues yet.")


def _zero() -> Any:
    from sidequest_sql.records import JobCounts

    return JobCounts()


@queues.command("set")
@url_option
@click.argument("name")
@click.option("--concurrency", type=click.IntRange(min=1), help="How many jobs of the queue run at once.")
@click.option("--priority", type=int, help="Higher runs first.")
@click.option("--pause/--resume", "paused", default=None, help="Stop or restart handing out its jobs.")
@json_option
@backend_command
def set_queue(
    backend: SQLBackend, name: str, concurrency: int | None, priority: int | None, paused: bool | None, as_json: bool
) -> None:
    """Change a queue's concurrency, priority or state.

    A queue that jobs use but that has no settings row yet gets one, with the
    defaults for whatever is not given.
    """
    changes: dict[str, Any] = {}
    if concurrency is not None:
        changes["concurrency"] = concurrency
    if priority is not None:
        changes["priority"] = priority
    if paused is not None:
        changes["state"] = "paused" if paused else "active"
    if not changes:
        raise click.UsageError("give at least one of --concurrency, --priority, --pause or --resume")
    queue = backend.get_queue(name)
    if queue is not None:
        queue = backend.update_queue(queue.id, **changes)
        verb = "Updated"
    elif name in backend.get_queues_from_jobs():
        queue = backend.create_new_queue(name, **changes)
        verb = "Created settings for"
    else:
        raise Failure(f"no queue is named {name!r}, and no job uses that name.")
    if as_json:
        render.echo_json(queue)
    else:
        out().print(Text.assemble(f"{verb} queue ", render.queue_line(queue), "."))


# -- jobs ------------------------------------------------------------------------


@cli.command("jobs")
@url_option
@click.option("--queue", "-q", metavar="PATTERN", help="Queue name; % and _ are wildcards.")
@click.option(
    "--state",
    "-s",
    "states",
    multiple=True,
    type=click.Choice(JOB_STATES),
    help="Only jobs in this state; repeat for several.",
)
@click.option("--class", "-c", "job_class", metavar="PATTERN", help="Job class; % and _ are wildcards.")
@click.option("--limit", "-n", type=click.IntRange(min=0), default=20, show_default=True, help="At most this many.")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True, help="Skip this many first.")
@json_option
@backend_command
def list_jobs(
    backend: SQLBackend,
    queue: str | None,
    states: tuple[str, ...],
    job_class: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List jobs, newest first, with their state, attempts and args.

    For a failed job the last column shows its last error instead of its args.
    """
    found = backend.list_jobs(
        queue=queue, job_class=job_class, state=list(states) or None, limit=limit, offset=offset
    )
    if as_json:
        render.echo_json(found)
        return
    console = out()
    if not found:
        console.print("No jobs match." if offset == 0 else f"No jobs match past the first {offset}.")
        return
    console.print(render.jobs_table(found))
    if len(found) == limit:
        console.print(
            f"Jobs {offset + 1} to {offset + len(found)}; see more with --offset {offset + len(found)}.",
            style="dim",
        )


@cli.command("job")
@url_option
@job_id_argument
@json_option
@backend_command
def show_job(backend: SQLBackend, job_id: int, as_json: bool) -> None:
    """Show one job in full: every field, with args, result and errors pretty-printed."""
    job = get_job(backend, job_id)
    if as_json:
        render.echo_json(job)
    else:
        out().print(render.job_detail(job))


def _transition(
    backend: SQLBackend, job_id: int, rule: Callable[..., dict[str, Any]], action: str, *also: str
) -> tuple[JobData, JobData]:
    """``rule`` applied to the job as read, unless it changed since (in its state or the fields ``also`` names)."""
    job = get_job(backend, job_id)
    changes = rule(job, backend.clock())
    after = backend.transition_job(job_id, **transitions.as_read(job, *also), **changes)
    if after is None:
        raise transitions.changed_under([(job, backend.get_job(job_id))], action)
    return job, after


@cli.command()
@url_option
@job_id_argument
@json_option
@backend_command
def rerun(backend: SQLBackend, job_id: int, as_json: bool) -> None:
    """Run a completed, failed or canceled job again.

    It goes back to waiting, available now; if its attempts are used up it
    is allowed one more. A job in any other state is refused (exit 1), and so
    is one that changed while the command ran (a worker or another operator
    got there first): it is left as it is.
    """
    # The attempt too: how many attempts the rerun allows is worked out from it.
    before, after = _transition(backend, job_id, transitions.rerun, "rerun", "attempt")
    if as_json:
        render.echo_json(after)
        return
    extra = f"; max attempts raised to {after.max_attempts}" if after.max_attempts != before.max_attempts else ""
    out().print(
        Text.assemble(
            f"Job {job_id}: ", render.state_text(before.state), " → ", render.state_text(after.state),
            f", available now{extra}.",
        )
    )


@cli.command()
@url_option
@job_id_argument
@json_option
@backend_command
def cancel(backend: SQLBackend, job_id: int, as_json: bool) -> None:
    """Cancel a waiting or running job.

    It becomes canceled with canceled_at now; a worker running it sees the
    change. A job in any other state is refused (exit 1), and so is one whose
    state changed while the command ran: it is left as it is.
    """
    before, after = _transition(backend, job_id, transitions.cancel, "canceled")
    if as_json:
        render.echo_json(after)
        return
    out().print(
        Text.assemble(f"Job {job_id}: ", render.state_text(before.state), " → ", render.state_text(after.state), ".")
    )


# -- statistics -------------------------------------------------------------------


@cli.command()
@url_option
@click.option(
    "--over",
    type=TimeRange(),
    default="12h",
    show_default=True,
    help="Chart this many minutes (m), hours (h) or days (d), one bar each.",
)
@json_option
@backend_command
def stats(backend: SQLBackend, over: str, as_json: bool) -> None:
    """Counts per state, in total and per queue, and a chart of jobs over time.

    The chart stacks each bar by state; a job counts at the time it finished,
    else started, was claimed or was enqueued.
    """
    total = backend.count_jobs()
    by_queue = backend.count_jobs_by_queues()
    series = backend.count_jobs_over_time(over)
    if as_json:
        render.echo_json({"total": total, "queues": by_queue, "over": over, "over_time": series})
        return
    console = out()
    console.print(render.counts_table(total, by_queue))
    colour = console.color_system is not None and not console.no_color
    console.print(chart.draw(series, over[-1], width=console.width, colour=colour))


# -- stale jobs -------------------------------------------------------------------


@cli.command()
@url_option
@click.option(
    "--max-stale-ms",
    type=int,
    default=600_000,
    show_default=True,
    help="A running job without its own timeout is stale after this long.",
)
@click.option(
    "--max-claimed-ms", type=int, default=60_000, show_default=True, help="A claimed job is stale after this long."
)
@click.option("--release", is_flag=True, help="Release them: claimed → waiting; running → retried, or failed.")
@json_option
@backend_command
def stale(backend: SQLBackend, max_stale_ms: int, max_claimed_ms: int, release: bool, as_json: bool) -> None:
    """List jobs stuck claimed or running too long; --release frees them.

    Releasing does what Sidequest's engine does: a claimed job goes back to
    waiting; a running job is retried after its backoff if it has attempts
    left (the attempt it was on counts), else it fails. The error is recorded.
    A job that moved on after it was found stale (its worker finished it, or
    another release got there first) is left as it is; the others are still
    released, and the command then says which changed and exits 1.
    """
    found = backend.stale_jobs(max_stale_ms=max_stale_ms, max_claimed_ms=max_claimed_ms)
    if not release:
        if as_json:
            render.echo_json(found)
        elif found:
            out().print(render.jobs_table(found))
        else:
            out().print("No stale jobs.")
        return
    released: list[tuple[JobData, JobData]] = []
    changed: list[tuple[JobData, JobData | None]] = []
    for job in found:
        try:
            after = backend.transition_job(
                job.id, **transitions.as_read(job, "claimed_by", "attempt"), **transitions.release(job, backend.clock())
            )
        except JobNotFoundError:
            changed.append((job, None))
            continue
        if after is None:
            changed.append((job, backend.get_job(job.id)))
        else:
            released.append((job, after))
    if as_json:
        render.echo_json({"released": [after for _, after in released], "skipped": [job.id for job, _ in changed]})
    elif not found:
        out().print("No stale jobs.")
    else:
        console = out()
        for before, job in released:
            note = ""
            if job.state == "waiting" and before.state == "running":
                used = f"attempt {job.attempt} of {job.max_attempts} used"
                note = f", available at {render.when(job.available_at)} UTC ({used})"
            elif job.state == "failed":
                note = f" (all {job.max_attempts} attempts used)"
            console.print(
                Text.assemble(
                    f"Job {job.id}: ", render.state_text(before.state), " → ", render.state_text(job.state), f"{note}."
                )
            )
    if changed:
        raise transitions.changed_under(changed, "released")


# -- cleanup ----------------------------------------------------------------------


@cli.command("cleanup")
@url_option
@click.option(
    "--older-than",
    type=Duration(),
    required=True,
    metavar="DURATION",
    help="Delete jobs that finished longer ago than this: 30d, 12h, 15m, 90s, 2w.",
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=1000, show_default=True, help="About this many per delete."
)
@click.option("--dry-run", is_flag=True, help="Only say about how many would be deleted.")
@yes_option
@json_option
@backend_command
def cleanup_command(
    backend: SQLBackend, older_than: timedelta, batch_size: int, dry_run: bool, yes: bool, as_json: bool
) -> None:
    """Delete completed, failed and canceled jobs that finished long ago.

    Deletes in batches, with a progress bar on a terminal. Waiting, claimed
    and running jobs are never deleted. On a terminal you are asked first,
    unless --yes.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cutoff = cleanup.cutoff_before(backend.clock(), older_than)
    estimate = cleanup.finished_before(backend, cutoff)
    if dry_run:
        if as_json:
            render.echo_json({"cutoff": cutoff, "would_delete": estimate})
        else:
            out().print(f"About {estimate} finished jobs finished before {render.when(cutoff)} UTC.")
        return
    if estimate:
        confirm(f"Delete about {estimate} jobs that finished before {render.when(cutoff)} UTC?", yes)
    console = out()
    deleted = 0
    with Progress(
        TextColumn("deleting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json or not console.is_terminal,
    ) as progress:
        task = progress.add_task("delete", total=max(estimate, 1))
        for count in cleanup.batches(backend, cutoff, batch_size):
            deleted += count
            progress.update(task, completed=deleted, total=max(estimate, deleted, 1))
    if as_json:
        render.echo_json({"cutoff": cutoff, "deleted": deleted})
    else:
        console.print(f"Deleted {deleted} job{'s' if deleted != 1 else ''} that finished before {render.when(cutoff)} UTC.")


# -- the contract suite ---------------------------------------------------------------


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@yes_option
@click.argument("url")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def contract(yes: bool, url: str, pytest_args: tuple[str, ...]) -> None:
    """Run the shipped contract suite against URL; the rest goes to pytest.

    The suite empties the sidequest tables of that database: point it at a
    scratch one. The same as
    `SIDEQUEST_CONTRACT_URL=URL pytest --pyargs sidequest_sql.testing`.
    Example: sidequest-sql contract --yes sqlite:///scratch.sqlite -x -q
    """
    dialect_for(url)
    shown = parse_url(url).render_as_string(hide_password=True)
    missing = [name for name in ("pytest", "hypothesis") if importlib.util.find_spec(name) is None]
    if missing:
        raise Failure(f"the contract suite needs {' and '.join(missing)}: pip install 'sidequest-sql[test]'.")
    confirm(f"The contract suite empties the sidequest tables of {shown}. Go on?", yes)
    # The URL goes in the environment: in the arguments, its password would show in the process list.
    command = [sys.executable, "-m", "pytest", "--pyargs", "sidequest_sql.testing"]
    environment = {**os.environ, CONTRACT_URL_VARIABLE: url}
    status = subprocess.run([*command, *pytest_args], check=False, env=environment).returncode
    if status == 0:
        return
    if status == 4:
        raise click.UsageError("pytest refused its arguments (see above)")
    raise Failure(f"the contract suite did not pass against {shown} (pytest exit status {status}).")
