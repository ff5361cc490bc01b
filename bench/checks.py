"""Every phase checks its own result, so that a fast wrong answer fails the run.

For a claim phase: every job put in the queue was claimed and completed by
exactly one worker (counted per id from what the workers got back) and the
database agrees (its per-state counts for the queue). For an enqueue phase:
every returned id is distinct and the database holds exactly those rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from . import fill

if TYPE_CHECKING:
    from sidequest_sql.base import SQLBackend

    from .baseline import OurStatements


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
        ids = client.claim(queue, 1)
        for job_id in ids:
            client.complete(job_id)
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
