"""The contract as plain Python: an in-memory backend the suite checks databases against.

``ModelBackend`` has the methods and signatures of ``SQLBackend`` and does
what CONTRACT.md says, row by row over a dict of records, with nothing
clever in between. The state machine in ``test_stateful`` drives it beside a
real backend and compares the two after every step; the same machine also
runs with a second model in place of the database, so the model cannot drift
from what the suite expects of a backend.

Argument checks reuse ``sidequest_sql.fields`` so that a bad value fails the
same way here as in a database; everything after the checks is this module's
own reading of the contract.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields as dataclass_fields
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from contextlib import contextmanager
from typing import Any, TypeVar

from sidequest_sql.errors import (
    DuplicatedJobError,
    DuplicatedQueueError,
    JobNotFoundError,
    QueueNotFoundError,
)
from sidequest_sql.fields import (
    JOB_FIELDS,
    QUEUE_FIELDS,
    check_bigint,
    check_changes,
    check_expected,
    check_int,
    check_queue_names,
    check_queue_order,
    check_seconds,
    check_text,
    check_time,
    check_time_range,
    check_transition,
)
from sidequest_sql.hooks import DialectHooks
from sidequest_sql.jsonvalues import check_json
from sidequest_sql.records import (
    FINISHED_STATES,
    JOB_STATES,
    JobCounts,
    JobCountsAt,
    JobData,
    JobTransition,
    NewJobData,
    QueueConfig,
)

__all__ = ["ModelBackend", "ModelTransaction", "json_equal", "like_matches"]

_JSON_FIELDS = ("args", "constructor_args", "result", "errors", "uniqueness_config")
_TIME_FIELDS = tuple(f.name for f in dataclass_fields(JobData) if f.name.endswith("_at"))
_STEPS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


# -- the semantics every dialect shares ---------------------------------------------


def json_equal(a: Any, b: Any) -> bool:
    """Whether two JSON values are the same document: key order aside, ``1 == 1.0``,
    and ``true`` never equal to ``1`` (which Python's ``True == 1`` would say).
    Without recursion, for documents as deep as a dialect takes."""
    pairs = [(a, b)]
    while pairs:
        one, other = pairs.pop()
        kind = _json_kind(one)
        if kind != _json_kind(other):
            return False
        if kind == "array":
            if len(one) != len(other):
                return False
            pairs.extend(zip(one, other, strict=True))
        elif kind == "object":
            if one.keys() != other.keys():
                return False
            pairs.extend((one[key], other[key]) for key in one)
        elif one != other:
            return False
    return True


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def like_matches(pattern: str, text: str) -> bool:
    """SQL ``LIKE`` with ``ESCAPE '\\'``: case-sensitive, ``%`` any run, ``_`` one character."""
    return _like_regex(pattern).fullmatch(text) is not None


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise ValueError("a LIKE pattern ends with a lone backslash")
            parts.append(re.escape(escaped))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def counted_at(job: JobData) -> datetime:
    """The time a job counts at in statistics: finished, else started, claimed, enqueued."""
    for moment in (job.completed_at, job.failed_at, job.canceled_at, job.attempted_at, job.claimed_at):
        if moment is not None:
            return moment
    return job.inserted_at


def truncate_to(moment: datetime, unit: str) -> datetime:
    moment = moment.astimezone(UTC)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    if unit == "h":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _minus_ms(now: datetime, milliseconds: int) -> datetime:
    """``now - milliseconds``; past either end of datetime, its far end (nothing, or everything, is older)."""
    try:
        return now - timedelta(milliseconds=milliseconds)
    except OverflowError:
        return (datetime.min if milliseconds > 0 else datetime.max).replace(tzinfo=UTC)


def _counts(jobs: Iterable[JobData]) -> JobCounts:
    by_state = dict.fromkeys(JOB_STATES, 0)
    for job in jobs:
        by_state[job.state] += 1
    return JobCounts.from_states(by_state)


def _stored(field: str, value: Any) -> Any:
    """A value as a database keeps it: times in UTC, JSON detached from the caller's objects."""
    if value is None:
        return None
    if field in _TIME_FIELDS:
        return value.astimezone(UTC)
    if field in _JSON_FIELDS:
        return copy.deepcopy(value)
    return value


# -- the model --------------------------------------------------------------------

_F = TypeVar("_F", bound=Callable[..., Any])


def _joining(operation: _F) -> _F:
    """An operation that, given ``connection=`` (a ``ModelTransaction``), works on that
    transaction's copy of the tables instead of the committed ones."""

    @functools.wraps(operation)
    def run(self: ModelBackend, *args: Any, **kwargs: Any) -> Any:
        connection = kwargs.get("connection")
        if connection is None:
            return operation(self, *args, **kwargs)
        with self._inside(connection):
            return operation(self, *args, **kwargs)

    return run  # type: ignore[return-value]


class ModelTransaction:
    """A caller's transaction on the model: the tables as it sees them, until it
    commits them (``commit``) or drops them (``rollback``).

    The model's stand-in for a SQLAlchemy ``Connection`` in a transaction. It
    sees its own writes; the model's committed tables see none of them until
    the commit. Ids it hands out are not handed out again after a rollback,
    as a database sequence does.
    """

    def __init__(self, model: ModelBackend) -> None:
        self.model = model
        self.jobs = dict(model._jobs)
        self.queues = dict(model._queues)
        self.open = True

    @property
    def connection(self) -> ModelTransaction:
        """What operations take as ``connection=``: the transaction itself."""
        return self

    def commit(self) -> None:
        self._end()
        self.model._jobs, self.model._queues = self.jobs, self.queues

    def rollback(self) -> None:
        self._end()

    def _end(self) -> None:
        if not self.open:
            raise ValueError("this transaction has ended")
        self.open = False



class ModelBackend:
    """An in-memory backend doing what the contract says; see the module docstring.

    Ids are handed out in increasing order and never reused, as a database
    sequence does; ``truncate()`` empties the tables but does not restart them.
    JSON may nest ``max_json_depth`` deep; beside a backend, give it that
    backend's own.
    """

    supports_schemas = False

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        worker_name: str | None = None,
        max_json_depth: int = DialectHooks.max_json_depth,
    ) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self._worker_name = worker_name
        self.max_json_depth = max_json_depth
        self._jobs: dict[int, JobData] = {}
        self._queues: dict[int, QueueConfig] = {}
        self._last_job_id = 0
        self._last_queue_id = 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {len(self._jobs)} jobs, {len(self._queues)} queues>"

    def __enter__(self) -> ModelBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def worker_name(self) -> str:
        return self._worker_name or f"sidequest@{socket.gethostname()}-{os.getpid()}"

    @_joining
    def migrate(self, *, connection: Any = None) -> list[str]:
        return []

    @_joining
    def rollback_migration(self, *, connection: Any = None) -> str | None:
        return None

    def close(self) -> None:
        pass

    def begin(self) -> ModelTransaction:
        """A caller's transaction, to pass as ``connection=`` (see ``ModelTransaction``)."""
        return ModelTransaction(self)

    @contextmanager
    def _inside(self, transaction: Any) -> Iterator[None]:
        if not isinstance(transaction, ModelTransaction) or transaction.model is not self:
            raise TypeError(f"connection must be a transaction of this model, not {type(transaction).__name__}")
        if not transaction.open:
            raise ValueError("connection is closed; pass an open one")
        committed = self._jobs, self._queues
        self._jobs, self._queues = transaction.jobs, transaction.queues
        try:
            yield
        finally:
            self._jobs, self._queues = committed

    # -- queues --------------------------------------------------------------------

    @_joining
    def create_new_queue(
        self, name: str, *, concurrency: int = 10, priority: int = 0, state: str = "active", connection: Any = None
    ) -> QueueConfig:
        values: dict[str, Any] = {"name": name, "concurrency": concurrency, "priority": priority, "state": state}
        check_changes(QUEUE_FIELDS, values, "queue", max_json_depth=self.max_json_depth)
        if self.get_queue(name) is not None:
            raise DuplicatedQueueError(f"a queue named {name!r} already exists")
        self._last_queue_id += 1
        self._queues[self._last_queue_id] = QueueConfig(id=self._last_queue_id, **values)
        return self._queues[self._last_queue_id]

    @_joining
    def get_queue(self, name: str, *, connection: Any = None) -> QueueConfig | None:
        check_text(name, "name")
        return next((queue for queue in self._queues.values() if queue.name == name), None)

    @_joining
    def get_queues_from_jobs(self, *, connection: Any = None) -> list[str]:
        return sorted({job.queue for job in self._jobs.values()})

    @_joining
    def list_queues(
        self, order_by: str = "priority", order: str = "desc", *, connection: Any = None
    ) -> list[QueueConfig]:
        check_queue_order(order_by, order)
        by_id = sorted(self._queues.values(), key=lambda queue: queue.id)
        # Python's sort is stable in both directions: ties stay in id order.
        return sorted(by_id, key=lambda queue: getattr(queue, order_by), reverse=order == "desc")

    @_joining
    def update_queue(self, queue_id: int, *, connection: Any = None, **changes: Any) -> QueueConfig:
        check_bigint(queue_id, "queue_id")
        check_changes(QUEUE_FIELDS, changes, "queue", max_json_depth=self.max_json_depth)
        queue = self._queues.get(queue_id)
        if queue is None:
            raise QueueNotFoundError(f"no queue has id {queue_id}")
        name = changes.get("name", queue.name)
        if any(other.name == name for other in self._queues.values() if other.id != queue_id):
            raise DuplicatedQueueError(f"a queue named {name!r} already exists")
        self._queues[queue_id] = replace(queue, **changes)
        return self._queues[queue_id]

    # -- jobs ------------------------------------------------------------------------

    @_joining
    def get_job(self, job_id: int, *, connection: Any = None) -> JobData | None:
        check_bigint(job_id, "job_id")
        return self._jobs.get(job_id)

    @_joining
    def create_new_job(self, job: NewJobData, *, connection: Any = None) -> JobData:
        [created] = self._insert([self._new_row(job, self._now(), "job")])
        return created

    @_joining
    def create_new_jobs(self, new_jobs: Iterable[NewJobData], *, connection: Any = None) -> list[JobData]:
        if isinstance(new_jobs, (str, bytes, NewJobData)) or not isinstance(new_jobs, Iterable):
            raise TypeError("jobs must be an iterable of NewJobData")
        now = self._now()
        return self._insert([self._new_row(job, now, f"jobs[{i}]") for i, job in enumerate(new_jobs)])

    @_joining
    def claim_pending_job(self, queue: str, quantity: int = 1, *, connection: Any = None) -> list[JobData]:
        check_text(queue, "queue")
        check_int(quantity, "quantity", minimum=1)
        now = self._now()
        claimable = [
            job
            for job in self._jobs.values()
            if job.queue == queue and job.state == "waiting" and job.available_at <= now
        ]
        claimable.sort(key=lambda job: (-job.priority, job.inserted_at, job.id))
        claimed = []
        for job in claimable[:quantity]:
            self._jobs[job.id] = replace(
                job, state="claimed", claimed_at=now.astimezone(UTC), claimed_by=self.worker_name
            )
            claimed.append(self._jobs[job.id])
        return claimed

    @_joining
    def update_job(self, job_id: int, *, connection: Any = None, **changes: Any) -> JobData:
        check_bigint(job_id, "job_id")
        check_changes(JOB_FIELDS, changes, "job", max_json_depth=self.max_json_depth)
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"no job has id {job_id}")
        digest = changes.get("unique_digest")
        holder = None if digest is None else self._digest_holder(digest)
        if holder is not None and holder.id != job_id:
            raise DuplicatedJobError(f"unique_digest {digest!r} is held by another job")
        self._jobs[job_id] = replace(job, **{name: _stored(name, value) for name, value in changes.items()})
        return self._jobs[job_id]

    @_joining
    def transition_jobs(self, transitions: Iterable[JobTransition], *, connection: Any = None) -> list[JobData | None]:
        if isinstance(transitions, (str, bytes, JobTransition)) or not isinstance(transitions, Iterable):
            raise TypeError("transitions must be an iterable of JobTransition")
        items = list(transitions)
        for i, item in enumerate(items):
            check_transition(item, f"transitions[{i}]", max_json_depth=self.max_json_depth)
            if any(other.job_id == item.job_id for other in items[:i]):
                raise ValueError(f"transitions[{i}]: job {item.job_id} appears twice in transitions")
        holds = [self._holds(item) for item in items]
        for item, held in zip(items, holds):
            digest = item.changes.get("unique_digest") if held else None
            holder = None if digest is None else self._digest_holder(digest)
            if holder is not None and holder.id != item.job_id:
                raise DuplicatedJobError("a unique_digest in transitions is held by another job")
        result: list[JobData | None] = []
        for item, held in zip(items, holds):
            if not held:
                result.append(None)
                continue
            job = self._jobs[item.job_id]
            self._jobs[item.job_id] = replace(
                job, **{name: _stored(name, value) for name, value in item.changes.items()}
            )
            result.append(self._jobs[item.job_id])
        return result

    def _holds(self, item: JobTransition) -> bool:
        """Whether the job of ``item`` is as it expects."""
        job = self._jobs.get(item.job_id)
        return (
            job is not None
            and job.state == item.expect_state
            and (item.expect_claimed_by is None or job.claimed_by == item.expect_claimed_by)
            and (item.expect_attempt is None or job.attempt == item.expect_attempt)
        )

    @_joining
    def transition_job(
        self,
        job_id: int,
        *,
        expect_state: str,
        expect_claimed_by: str | None = None,
        expect_attempt: int | None = None,
        connection: Any = None,
        **changes: Any,
    ) -> JobData | None:
        check_bigint(job_id, "job_id")
        expected = check_expected(expect_state, expect_claimed_by, expect_attempt)
        check_changes(JOB_FIELDS, changes, "job", max_json_depth=self.max_json_depth)
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"no job has id {job_id}")
        if any(getattr(job, name) != value for name, value in expected.items()):
            return None
        return self.update_job(job_id, **changes)

    @_joining
    def wait_for_jobs(self, queues: list[str], timeout: float, *, connection: Any = None) -> list[str]:
        """The queues holding a job claimable now, in the order given; else ``[]``, at once.

        Nothing else writes to a model while it waits, so a wait could only
        end the way a backend's ends when nothing comes: empty.
        """
        names = check_queue_names(queues)
        check_seconds(timeout, "timeout")
        now = self._now()
        claimable = {job.queue for job in self._jobs.values() if job.state == "waiting" and job.available_at <= now}
        return [name for name in names if name in claimable]

    @_joining
    def list_jobs(
        self,
        *,
        queue: str | list[str] | None = None,
        job_class: str | list[str] | None = None,
        state: str | list[str] | None = None,
        limit: int = 50,
        offset: int = 0,
        args: Any = None,
        since: datetime | None = None,
        until: datetime | None = None,
        connection: Any = None,
    ) -> list[JobData]:
        check_int(limit, "limit", minimum=0)
        check_int(offset, "offset", minimum=0)
        text_filters = [
            ("queue", _text_filter(queue, "queue")),
            ("job_class", _text_filter(job_class, "job_class")),
            ("state", _text_filter(state, "state")),
        ]
        if args is not None:
            check_json(args, "args", self.max_json_depth)
        if since is not None:
            check_time(since, "since")
        if until is not None:
            check_time(until, "until")

        def wanted(job: JobData) -> bool:
            if not all(matches(getattr(job, name)) for name, matches in text_filters):
                return False
            if args is not None and not json_equal(job.args, args):
                return False
            if since is not None and (job.attempted_at is None or job.attempted_at < since):
                return False
            return until is None or (job.attempted_at is not None and job.attempted_at <= until)

        newest_first = sorted(self._jobs.values(), key=lambda job: job.id, reverse=True)
        return [job for job in newest_first if wanted(job)][offset : offset + limit]

    # -- statistics -----------------------------------------------------------------

    @_joining
    def count_jobs(
        self, *, since: datetime | None = None, until: datetime | None = None, connection: Any = None
    ) -> JobCounts:
        if since is not None:
            check_time(since, "since")
        if until is not None:
            check_time(until, "until")
        return _counts(
            job
            for job in self._jobs.values()
            if (since is None or counted_at(job) >= since) and (until is None or counted_at(job) <= until)
        )

    @_joining
    def count_jobs_by_queues(self, *, connection: Any = None) -> dict[str, JobCounts]:
        names = {queue.name for queue in self._queues.values()} | {job.queue for job in self._jobs.values()}
        return {name: _counts(job for job in self._jobs.values() if job.queue == name) for name in sorted(names)}

    @_joining
    def count_jobs_over_time(self, time_range: str, *, connection: Any = None) -> list[JobCountsAt]:
        count, unit = check_time_range(time_range)
        now = self._now()
        newest = truncate_to(now, unit)
        starts = [newest - _STEPS[unit] * i for i in range(count - 1, -1, -1)]
        in_bucket: dict[datetime, list[JobData]] = {start: [] for start in starts}
        for job in self._jobs.values():
            moment = counted_at(job)
            if starts[0] <= moment <= now:
                in_bucket[truncate_to(moment, unit)].append(job)
        result = []
        for start in starts:
            counts = _counts(in_bucket[start])
            result.append(JobCountsAt(start, **{f.name: getattr(counts, f.name) for f in dataclass_fields(JobCounts)}))
        return result

    @_joining
    def stale_jobs(
        self, max_stale_ms: int = 600_000, max_claimed_ms: int = 60_000, *, connection: Any = None
    ) -> list[JobData]:
        check_bigint(max_stale_ms, "max_stale_ms")
        check_bigint(max_claimed_ms, "max_claimed_ms")
        now = self._now()

        def stale(job: JobData) -> bool:
            if job.state == "claimed":
                return job.claimed_at is not None and job.claimed_at < _minus_ms(now, max_claimed_ms)
            if job.state == "running" and job.attempted_at is not None:
                limit = max_stale_ms if job.timeout is None else job.timeout
                return job.attempted_at < _minus_ms(now, limit)
            return False

        return [job for _, job in sorted(self._jobs.items()) if stale(job)]

    # -- cleanup --------------------------------------------------------------------

    @_joining
    def delete_finished_jobs(self, cutoff: datetime, *, limit: int | None = None, connection: Any = None) -> int:
        check_time(cutoff, "cutoff")
        if limit is not None:
            check_int(limit, "limit", minimum=1)

        def finished_before(job: JobData) -> bool:
            ends = (job.completed_at, job.failed_at, job.canceled_at)
            return job.state in FINISHED_STATES and any(end is not None and end < cutoff for end in ends)

        doomed = [job_id for job_id, job in self._jobs.items() if finished_before(job)][:limit]
        for job_id in doomed:
            del self._jobs[job_id]
        return len(doomed)

    @_joining
    def truncate(self, *, connection: Any = None) -> None:
        self._jobs.clear()
        self._queues.clear()

    # -- helpers --------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self.clock()
        check_time(now, "the backend clock's value")
        return now

    def _insert(self, rows: list[dict[str, Any]]) -> list[JobData]:
        """Add the rows, all or none: a digest repeated or already held refuses them all."""
        digests = [row["unique_digest"] for row in rows if row["unique_digest"] is not None]
        if len(digests) != len(set(digests)):
            raise DuplicatedJobError("a unique_digest appears twice in jobs")
        if any(self._digest_holder(digest) is not None for digest in digests):
            raise DuplicatedJobError("a unique_digest in jobs is held by another job")
        created = []
        for row in rows:
            self._last_job_id += 1
            job = JobData(id=self._last_job_id, **row)
            self._jobs[job.id] = job
            created.append(job)
        return created

    def _digest_holder(self, digest: str) -> JobData | None:
        return next((job for job in self._jobs.values() if job.unique_digest == digest), None)

    def _new_row(self, job: Any, now: datetime, argument: str) -> dict[str, Any]:
        if not isinstance(job, NewJobData):
            raise TypeError(f"{argument} must be a NewJobData, not {type(job).__name__}")
        row = {
            "queue": job.queue,
            "state": "waiting",
            "script": job.script,
            "job_class": job.job_class,
            "args": job.args,
            "constructor_args": job.constructor_args,
            "attempt": 0,
            "max_attempts": job.max_attempts,
            "inserted_at": now,
            "available_at": now if job.available_at is None else job.available_at,
            "timeout": job.timeout,
            "unique_digest": job.unique_digest,
            "uniqueness_config": job.uniqueness_config,
            "retry_delay": job.retry_delay,
            "backoff_strategy": job.backoff_strategy,
            "priority": job.priority,
        }
        check_changes(JOB_FIELDS, row, "job", max_json_depth=self.max_json_depth)
        return {name: _stored(name, value) for name, value in row.items()}


def _text_filter(value: Any, name: str) -> Callable[[str], bool]:
    """The predicate of one text filter of ``list_jobs``: None all, str LIKE, list IN."""
    if value is None:
        return lambda text: True
    if isinstance(value, str):
        check_text(value, name)
        try:
            pattern = _like_regex(value)
        except ValueError:
            raise ValueError(f"{name} ends with a lone backslash; write '\\\\' for a literal one") from None
        return lambda text: pattern.fullmatch(text) is not None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_text(item, f"{name}[{i}]")
        allowed = set(value)
        return lambda text: text in allowed
    raise TypeError(f"{name} must be a str pattern, a list of str or None, not {type(value).__name__}")
