"""Every phase checks its own result, so that a fast wrong answer fails the run.

For a claim phase: every job put in the queue was claimed and completed by
exactly one worker (counted per id from what the workers got back) and the
database agrees (its per-state counts for the queue). For an enqueue phase:
every returned id is distinct and the database holds exactly those rows.
Before the phases, ``same_sql`` and ``same_records`` check that the raw
baseline does the library's work: the same statements, the same records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from . import fill

if TYPE_CHECKING:
    from sidequest_sql import JobData
    from sidequest_sql.base import SQLBackend

    from .baseline import OurStatements
    from .clients import RawClient


class CheckFailed(Exception):
    """A phase's result is wrong."""


def exactly_once(
    backend: SQLBackend,
    queue: str,
    expected: set[int],
    got: Iterable[int],
    *,
    left_waiting: int = 0,
) -> str:
    """Every id of ``expected`` completed exactly once, and ``left_waiting`` jobs still waiting."""
    counts = Counter(got)
    twice = sorted(i for i, n in counts.items() if n > 1)
    done = set(counts)
    strangers = sorted(done - expected)
    problems = []
    if twice:
        problems.append(f"{len(twice)} jobs claimed more than once (e.g. {twice[:5]})")
    if strangers:
        problems.append(f"{len(strangers)} ids not enqueued for this phase (e.g. {strangers[:5]})")
    states = fill.queue_states(backend, queue)
    want = {"completed": len(done & expected)}
    if left_waiting:
        want["waiting"] = left_waiting
    if len(done & expected) + left_waiting != len(expected):
        problems.append(f"{len(expected) - len(done & expected) - left_waiting} jobs never claimed")
    if states != want:
        problems.append(f"database says {states}, expected {want}")
    if problems:
        raise CheckFailed(f"queue {queue!r}: " + "; ".join(problems))
    return f"ok: {len(done)} once"


def enqueued_once(backend: SQLBackend, queue: str, ids: list[int], count: int) -> str:
    problems = []
    if len(ids) != count or len(set(ids)) != count:
        problems.append(f"{len(ids)} ids returned, {len(set(ids))} distinct, {count} enqueued")
    stored = fill.queue_ids(backend, queue)
    if stored != set(ids):
        problems.append(f"database holds {len(stored)} rows, {len(stored ^ set(ids))} differ from the ids returned")
    states = fill.queue_states(backend, queue)
    if states != {"waiting": count}:
        problems.append(f"database says {states}")
    if problems:
        raise CheckFailed(f"queue {queue!r}: " + "; ".join(problems))
    return f"ok: {count} rows"


def same_sql(backend: SQLBackend, statements: OurStatements, queue: str, batch: int = 10_000) -> dict[str, bool]:
    """Whether the library sends the very SQL the raw baseline runs (one call of
    each; the batch enqueue with ``batch`` jobs, every statement of it)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    from .clients import OurClient

    client = OurClient(backend)
    event.listen(backend.execution.root_engine, "before_cursor_execute", record)
    try:
        client.enqueue(queue, 0)
        for job in client.claim(queue, 1):
            client.complete(job.id)
        batch_sent: list[str] = []
        if statements.batch is not None:
            batch_start = len(seen)
            client.enqueue_batch(queue, 1, batch)
            batch_sent = seen[batch_start:]
    finally:
        event.remove(backend.execution.root_engine, "before_cursor_execute", record)
        fill.delete_queue(backend, queue)
    claim = statements.claim.sql if statements.claim is not None else statements.candidates.sql
    same = {
        "enqueue": statements.insert.sql in seen,
        "claim": claim in seen,
        "complete": statements.complete.sql in seen,
    }
    if statements.batch is not None:
        raw = statements.batch
        sizes = raw.batch.split(batch, len(raw.keys))
        # The same statements, in the same order (BEGIN and COMMIT are sent
        # past the listeners, on both sides).
        same["batch"] = batch_sent == [raw.sql(size) for size in sizes]
    return same


def same_records(backend: SQLBackend, raw: RawClient | Any, queue: str) -> list[str]:
    """Where the raw client's records differ from the library's for the same rows.

    The raw client enqueues (one job, then a batch of three where it has
    batches), claims and completes; after each step the library reads every
    job it returned (``get_job``), and each record must equal the raw one,
    field for field.
    """
    steps: list[tuple[str, Callable[[], Sequence[JobData]]]] = [
        ("enqueue", lambda: [raw.enqueue(queue, 0)]),
        ("enqueue", lambda: [raw.enqueue(queue, 1)]),
        ("batch enqueue", lambda: raw.enqueue_batch(queue, 2, 3)),
        ("claim q=2", lambda: raw.claim(queue, 2)),
        ("complete", lambda: [raw.complete(claimed[0].id)]),
    ]
    if not hasattr(raw, "enqueue_batch"):
        steps = [step for step in steps if step[0] != "batch enqueue"]
    claimed: list[JobData] = []
    problems = []
    try:
        for step, run in steps:
            records = list(run())
            if step.startswith("claim"):
                claimed = records
            if not records:
                problems.append(f"{step}: no record came back")
            for record in records:
                ours = backend.get_job(record.id)
                if ours != record:
                    problems.append(f"{step}: raw {record!r} != library {ours!r}")
    finally:
        fill.delete_queue(backend, queue)
    return problems
