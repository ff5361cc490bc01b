"""Bad arguments to every operation: refused, named, and nothing written.

Every public operation refuses a value of the wrong type, range or shape
with ``ValueError`` or ``TypeError`` (or the documented ``SidequestError``)
whose message names the argument, never with an error of the driver or of
SQLAlchemy, and leaves the database exactly as it was. Text that looks like
SQL, or like a pattern, is only ever data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from sqlalchemy.exc import SQLAlchemyError

from sidequest_sql import (
    DuplicatedJobError,
    DuplicatedQueueError,
    JobData,
    JobNotFoundError,
    NewJobData,
    QueueConfig,
    QueueNotFoundError,
)
from sidequest_sql.base import SQLBackend
from sidequest_sql.testing.clock import ManualClock
from sidequest_sql.testing.fixtures import backend  # noqa: F401  (the suite's fixture)

INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
BIGINT_OVER = 2**63
NAIVE = datetime(2030, 1, 1, 12, 0)
# Aware, but with no UTC representation: a day before datetime.min there.
UNREPRESENTABLE = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
INJECTION = "x'; DROP TABLE sidequest_jobs; --"
# None where a value is required: either is a fair answer.
NONE_ERROR = (ValueError, TypeError)

# The suite's classes are collected once per database module, so one test
# method legitimately runs under several executors.
hypothesis_settings = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
)


def new_job(queue: str = "default", **fields: Any) -> NewJobData:
    fields.setdefault("script", "jobs.js")
    fields.setdefault("job_class", "Echo")
    return NewJobData(queue=queue, **fields)


def too_deep() -> list[Any]:
    value: list[Any] = []
    for _ in range(10_000):
        value = [value]
    return value


def snapshot(backend: SQLBackend) -> tuple[list[JobData], list[QueueConfig]]:
    return backend.list_jobs(limit=10_000), backend.list_queues()


def chained(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        item = stack.pop()
        if item is not None and id(item) not in seen:
            seen.add(id(item))
            yield item
            stack += [item.__cause__, item.__context__]


def assert_refused(
    backend: SQLBackend,
    call: Callable[[], object],
    error: type[Exception] | tuple[type[Exception], ...],
    *words: str,
) -> BaseException:
    """``call`` raises ``error`` naming every one of ``words``, and nothing changes."""
    before = snapshot(backend)
    with pytest.raises(error) as info:
        call()
    exc = info.value
    message = str(exc)
    for word in words:
        assert word in message, f"{word!r} is not named in {message!r}"
    if isinstance(exc, (ValueError, TypeError)):
        assert not isinstance(exc, UnicodeError), message
        for link in chained(exc):
            assert not isinstance(link, SQLAlchemyError), f"a database error escaped: {link!r}"
    assert snapshot(backend) == before
    return exc


@dataclass
class Seeded:
    default: QueueConfig
    other: QueueConfig
    waiting: JobData
    held: JobData
    completed: JobData
    running: JobData
    claimed: JobData


@pytest.fixture
def seeded(backend: SQLBackend, sidequest_clock: ManualClock) -> Seeded:
    """Queues and jobs in every kind of state that a wrong write would change."""
    default = backend.create_new_queue("default")
    other = backend.create_new_queue("other", concurrency=2, priority=5, state="paused")
    start = sidequest_clock()
    waiting = backend.create_new_job(new_job(args=[1, {"a": "b"}]))
    held = backend.create_new_job(new_job("other", unique_digest="held"))
    completed = backend.update_job(
        backend.create_new_job(new_job()).id, state="completed", completed_at=start, result={"ok": True}
    )
    running = backend.update_job(backend.create_new_job(new_job()).id, state="running", attempted_at=start)
    claimable = backend.create_new_job(new_job("claims"))
    [claimed] = backend.claim_pending_job("claims")
    assert claimed.id == claimable.id
    sidequest_clock.advance(days=1)
    # Now the completed job is deletable and the claimed and running jobs are stale.
    return Seeded(default, other, waiting, held, completed, running, claimed)


def case(call: Callable[[SQLBackend, Seeded], object], error: Any, *words: str, id: str) -> Any:
    return pytest.param(call, error, words, id=id)


# fmt: off
QUEUE_CASES = [
    case(lambda b, s: b.create_new_queue(None), NONE_ERROR, "name", id="create_queue-name-None"),
    case(lambda b, s: b.create_new_queue(5), TypeError, "name", id="create_queue-name-int"),
    case(lambda b, s: b.create_new_queue(b"q"), TypeError, "name", id="create_queue-name-bytes"),
    case(lambda b, s: b.create_new_queue("n" * 256), ValueError, "name", id="create_queue-name-256"),
    case(lambda b, s: b.create_new_queue("a\x00b"), ValueError, "name", id="create_queue-name-NUL"),
    case(lambda b, s: b.create_new_queue("a\ud800"), ValueError, "name", id="create_queue-name-surrogate"),
    case(lambda b, s: b.create_new_queue("q", concurrency=0), ValueError, "concurrency", id="create_queue-concurrency-0"),
    case(lambda b, s: b.create_new_queue("q", concurrency=-1), ValueError, "concurrency", id="create_queue-concurrency-neg"),
    case(lambda b, s: b.create_new_queue("q", concurrency=True), TypeError, "concurrency", id="create_queue-concurrency-bool"),
    case(lambda b, s: b.create_new_queue("q", concurrency=1.5), TypeError, "concurrency", id="create_queue-concurrency-float"),
    case(lambda b, s: b.create_new_queue("q", concurrency="10"), TypeError, "concurrency", id="create_queue-concurrency-str"),
    case(lambda b, s: b.create_new_queue("q", concurrency=None), NONE_ERROR, "concurrency", id="create_queue-concurrency-None"),
    case(lambda b, s: b.create_new_queue("q", concurrency=2**31), ValueError, "concurrency", id="create_queue-concurrency-int32"),
    case(lambda b, s: b.create_new_queue("q", priority=2**31), ValueError, "priority", id="create_queue-priority-over"),
    case(lambda b, s: b.create_new_queue("q", priority=INT32_MIN - 1), ValueError, "priority", id="create_queue-priority-under"),
    case(lambda b, s: b.create_new_queue("q", priority=True), TypeError, "priority", id="create_queue-priority-bool"),
    case(lambda b, s: b.create_new_queue("q", priority=1.0), TypeError, "priority", id="create_queue-priority-float"),
    case(lambda b, s: b.create_new_queue("q", priority=None), NONE_ERROR, "priority", id="create_queue-priority-None"),
    case(lambda b, s: b.create_new_queue("q", state="running"), ValueError, "state", id="create_queue-state-job-state"),
    case(lambda b, s: b.create_new_queue("q", state="Active"), ValueError, "state", id="create_queue-state-case"),
    case(lambda b, s: b.create_new_queue("q", state=None), NONE_ERROR, "state", id="create_queue-state-None"),
    case(lambda b, s: b.create_new_queue("q", state=1), TypeError, "state", id="create_queue-state-int"),
    case(lambda b, s: b.create_new_queue("default"), DuplicatedQueueError, "default", id="create_queue-duplicate"),
    case(lambda b, s: b.create_new_queue("default", concurrency=0), ValueError, "concurrency", id="create_queue-duplicate-and-bad"),
    case(lambda b, s: b.get_queue(None), NONE_ERROR, "name", id="get_queue-None"),
    case(lambda b, s: b.get_queue(5), TypeError, "name", id="get_queue-int"),
    case(lambda b, s: b.get_queue(b"default"), TypeError, "name", id="get_queue-bytes"),
    case(lambda b, s: b.get_queue(["default"]), TypeError, "name", id="get_queue-list"),
    case(lambda b, s: b.get_queue("de\x00fault"), ValueError, "name", id="get_queue-NUL"),
    case(lambda b, s: b.get_queue("\udc00"), ValueError, "name", id="get_queue-surrogate"),
    case(lambda b, s: b.list_queues(order_by="bogus"), ValueError, "order_by", id="list_queues-order_by-unknown"),
    case(lambda b, s: b.list_queues(order_by="NAME"), ValueError, "order_by", id="list_queues-order_by-case"),
    case(lambda b, s: b.list_queues(order_by=""), ValueError, "order_by", id="list_queues-order_by-empty"),
    case(lambda b, s: b.list_queues(order_by=None), NONE_ERROR, "order_by", id="list_queues-order_by-None"),
    case(lambda b, s: b.list_queues(order_by=["name"]), ValueError, "order_by", id="list_queues-order_by-list"),
    case(lambda b, s: b.list_queues(order_by="name; DROP TABLE sidequest_queues; --"), ValueError, "order_by", id="list_queues-order_by-injection"),
    case(lambda b, s: b.list_queues(order="up"), ValueError, "order", id="list_queues-order-unknown"),
    case(lambda b, s: b.list_queues(order=""), ValueError, "order", id="list_queues-order-empty"),
    case(lambda b, s: b.list_queues(order=None), NONE_ERROR, "order", id="list_queues-order-None"),
    case(lambda b, s: b.list_queues(order="desc; DROP TABLE sidequest_queues"), ValueError, "order", id="list_queues-order-injection"),
    case(lambda b, s: b.update_queue(None, concurrency=1), NONE_ERROR, "queue_id", id="update_queue-id-None"),
    case(lambda b, s: b.update_queue(str(s.default.id)), TypeError, "queue_id", id="update_queue-id-str"),
    case(lambda b, s: b.update_queue(True), TypeError, "queue_id", id="update_queue-id-bool"),
    case(lambda b, s: b.update_queue(float(s.default.id)), TypeError, "queue_id", id="update_queue-id-float"),
    case(lambda b, s: b.update_queue(BIGINT_OVER), ValueError, "queue_id", id="update_queue-id-over-bigint"),
    case(lambda b, s: b.update_queue(s.default.id, id=99), ValueError, "id", id="update_queue-id-field"),
    case(lambda b, s: b.update_queue(s.default.id, bogus=1), ValueError, "bogus", id="update_queue-unknown-field"),
    case(lambda b, s: b.update_queue(s.default.id, **{"class": "X"}), ValueError, "class", id="update_queue-class"),
    case(lambda b, s: b.update_queue(s.default.id, job_class="X"), ValueError, "job_class", id="update_queue-job-field"),
    case(lambda b, s: b.update_queue(s.default.id, concurrency=0), ValueError, "concurrency", id="update_queue-concurrency-0"),
    case(lambda b, s: b.update_queue(s.default.id, concurrency=True), TypeError, "concurrency", id="update_queue-concurrency-bool"),
    case(lambda b, s: b.update_queue(s.default.id, name=None), NONE_ERROR, "name", id="update_queue-name-None"),
    case(lambda b, s: b.update_queue(s.default.id, name="n" * 256), ValueError, "name", id="update_queue-name-256"),
    case(lambda b, s: b.update_queue(s.default.id, name=5), TypeError, "name", id="update_queue-name-int"),
    case(lambda b, s: b.update_queue(s.default.id, name="a\x00"), ValueError, "name", id="update_queue-name-NUL"),
    case(lambda b, s: b.update_queue(s.default.id, state="bogus"), ValueError, "state", id="update_queue-state-unknown"),
    case(lambda b, s: b.update_queue(s.default.id, state=None), NONE_ERROR, "state", id="update_queue-state-None"),
    case(lambda b, s: b.update_queue(s.default.id, priority=2**31), ValueError, "priority", id="update_queue-priority-over"),
    case(lambda b, s: b.update_queue(s.default.id, priority="1"), TypeError, "priority", id="update_queue-priority-str"),
    case(lambda b, s: b.update_queue(s.default.id, concurrency=5, priority="high"), TypeError, "priority", id="update_queue-good-and-bad"),
    case(lambda b, s: b.update_queue(s.default.id, name="other"), DuplicatedQueueError, "other", id="update_queue-duplicate"),
    case(lambda b, s: b.update_queue(2**40, concurrency=3), QueueNotFoundError, id="update_queue-missing"),
    case(lambda b, s: b.update_queue(2**40, concurrency=0), ValueError, "concurrency", id="update_queue-missing-and-bad"),
]
# fmt: on

# fmt: off
JOB_CASES = [
    case(lambda b, s: b.get_job(None), NONE_ERROR, "job_id", id="get_job-None"),
    case(lambda b, s: b.get_job(str(s.waiting.id)), TypeError, "job_id", id="get_job-str"),
    case(lambda b, s: b.get_job(float(s.waiting.id)), TypeError, "job_id", id="get_job-float"),
    case(lambda b, s: b.get_job(True), TypeError, "job_id", id="get_job-bool"),
    case(lambda b, s: b.get_job(BIGINT_OVER), ValueError, "job_id", id="get_job-over-bigint"),
    case(lambda b, s: b.get_job(-BIGINT_OVER - 1), ValueError, "job_id", id="get_job-under-bigint"),
    case(lambda b, s: b.create_new_job(None), NONE_ERROR, "job", id="create_job-None"),
    case(lambda b, s: b.create_new_job({"queue": "q", "script": "s", "job_class": "c"}), TypeError, "job", id="create_job-dict"),
    case(lambda b, s: b.create_new_job("job"), TypeError, "job", id="create_job-str"),
    case(lambda b, s: b.create_new_job(new_job(None)), NONE_ERROR, "queue", id="create_job-queue-None"),
    case(lambda b, s: b.create_new_job(new_job(5)), TypeError, "queue", id="create_job-queue-int"),
    case(lambda b, s: b.create_new_job(new_job("q" * 256)), ValueError, "queue", id="create_job-queue-256"),
    case(lambda b, s: b.create_new_job(new_job("a\x00")), ValueError, "queue", id="create_job-queue-NUL"),
    case(lambda b, s: b.create_new_job(new_job("\ud800")), ValueError, "queue", id="create_job-queue-surrogate"),
    case(lambda b, s: b.create_new_job(new_job(script=None)), NONE_ERROR, "script", id="create_job-script-None"),
    case(lambda b, s: b.create_new_job(new_job(script="s" * 256)), ValueError, "script", id="create_job-script-256"),
    case(lambda b, s: b.create_new_job(new_job(script=b"s.js")), TypeError, "script", id="create_job-script-bytes"),
    case(lambda b, s: b.create_new_job(new_job(job_class=None)), NONE_ERROR, "job_class", id="create_job-class-None"),
    case(lambda b, s: b.create_new_job(new_job(job_class="c" * 256)), ValueError, "job_class", id="create_job-class-256"),
    case(lambda b, s: b.create_new_job(new_job(job_class=5)), TypeError, "job_class", id="create_job-class-int"),
    case(lambda b, s: b.create_new_job(new_job(args=None)), NONE_ERROR, "args", id="create_job-args-None"),
    case(lambda b, s: b.create_new_job(new_job(args={1, 2})), TypeError, "args", id="create_job-args-set"),
    case(lambda b, s: b.create_new_job(new_job(args=b"x")), TypeError, "args", id="create_job-args-bytes"),
    case(lambda b, s: b.create_new_job(new_job(args=(1, 2))), TypeError, "args", id="create_job-args-tuple"),
    case(lambda b, s: b.create_new_job(new_job(args=object())), TypeError, "args", id="create_job-args-object"),
    case(lambda b, s: b.create_new_job(new_job(args=[math.nan])), ValueError, "args[0]", id="create_job-args-nan"),
    case(lambda b, s: b.create_new_job(new_job(args={"a": math.inf})), ValueError, "args['a']", id="create_job-args-inf"),
    case(lambda b, s: b.create_new_job(new_job(args=["a\x00"])), ValueError, "args[0]", id="create_job-args-NUL"),
    case(lambda b, s: b.create_new_job(new_job(args={"k\x00": 1})), ValueError, "args", id="create_job-args-NUL-key"),
    case(lambda b, s: b.create_new_job(new_job(args={1: "x"})), TypeError, "args", id="create_job-args-int-key"),
    case(lambda b, s: b.create_new_job(new_job(args=["\udfff"])), ValueError, "args[0]", id="create_job-args-surrogate"),
    case(lambda b, s: b.create_new_job(new_job(args=[Decimal("1.5")])), TypeError, "args[0]", id="create_job-args-decimal"),
    case(lambda b, s: b.create_new_job(new_job(args=[datetime.now(UTC)])), TypeError, "args[0]", id="create_job-args-datetime"),
    case(lambda b, s: b.create_new_job(new_job(args=[10**4000])), ValueError, "args[0]", id="create_job-args-huge-int"),
    case(lambda b, s: b.create_new_job(new_job(args=too_deep())), ValueError, "args", id="create_job-args-too-deep"),
    case(lambda b, s: b.create_new_job(new_job(constructor_args={1})), TypeError, "constructor_args", id="create_job-ctor-set"),
    case(lambda b, s: b.create_new_job(new_job(constructor_args=[-math.inf])), ValueError, "constructor_args", id="create_job-ctor-inf"),
    case(lambda b, s: b.create_new_job(new_job(constructor_args=None)), NONE_ERROR, "constructor_args", id="create_job-ctor-None"),
    case(lambda b, s: b.create_new_job(new_job(max_attempts=True)), TypeError, "max_attempts", id="create_job-max_attempts-bool"),
    case(lambda b, s: b.create_new_job(new_job(max_attempts="5")), TypeError, "max_attempts", id="create_job-max_attempts-str"),
    case(lambda b, s: b.create_new_job(new_job(max_attempts=5.0)), TypeError, "max_attempts", id="create_job-max_attempts-float"),
    case(lambda b, s: b.create_new_job(new_job(max_attempts=2**31)), ValueError, "max_attempts", id="create_job-max_attempts-int32"),
    case(lambda b, s: b.create_new_job(new_job(max_attempts=None)), NONE_ERROR, "max_attempts", id="create_job-max_attempts-None"),
    case(lambda b, s: b.create_new_job(new_job(available_at=NAIVE)), ValueError, "available_at", id="create_job-available_at-naive"),
    case(lambda b, s: b.create_new_job(new_job(available_at="2030-01-01")), TypeError, "available_at", id="create_job-available_at-str"),
    case(lambda b, s: b.create_new_job(new_job(available_at=0)), TypeError, "available_at", id="create_job-available_at-int"),
    case(lambda b, s: b.create_new_job(new_job(available_at=date(2030, 1, 1))), TypeError, "available_at", id="create_job-available_at-date"),
    case(lambda b, s: b.create_new_job(new_job(available_at=UNREPRESENTABLE)), ValueError, "available_at", id="create_job-available_at-out-of-range"),
    case(lambda b, s: b.create_new_job(new_job(timeout=True)), TypeError, "timeout", id="create_job-timeout-bool"),
    case(lambda b, s: b.create_new_job(new_job(timeout=2**31)), ValueError, "timeout", id="create_job-timeout-int32"),
    case(lambda b, s: b.create_new_job(new_job(timeout=1.5)), TypeError, "timeout", id="create_job-timeout-float"),
    case(lambda b, s: b.create_new_job(new_job(unique_digest=5)), TypeError, "unique_digest", id="create_job-digest-int"),
    case(lambda b, s: b.create_new_job(new_job(unique_digest="d" * 256)), ValueError, "unique_digest", id="create_job-digest-256"),
    case(lambda b, s: b.create_new_job(new_job(unique_digest="a\x00")), ValueError, "unique_digest", id="create_job-digest-NUL"),
    case(lambda b, s: b.create_new_job(new_job(uniqueness_config={1, 2})), TypeError, "uniqueness_config", id="create_job-uconf-set"),
    case(lambda b, s: b.create_new_job(new_job(uniqueness_config={"a": math.nan})), ValueError, "uniqueness_config", id="create_job-uconf-nan"),
    case(lambda b, s: b.create_new_job(new_job(retry_delay="10")), TypeError, "retry_delay", id="create_job-retry_delay-str"),
    case(lambda b, s: b.create_new_job(new_job(retry_delay=2**31)), ValueError, "retry_delay", id="create_job-retry_delay-int32"),
    case(lambda b, s: b.create_new_job(new_job(retry_delay=False)), TypeError, "retry_delay", id="create_job-retry_delay-bool"),
    case(lambda b, s: b.create_new_job(new_job(backoff_strategy=None)), NONE_ERROR, "backoff_strategy", id="create_job-backoff-None"),
    case(lambda b, s: b.create_new_job(new_job(backoff_strategy=5)), TypeError, "backoff_strategy", id="create_job-backoff-int"),
    case(lambda b, s: b.create_new_job(new_job(backoff_strategy="a\x00")), ValueError, "backoff_strategy", id="create_job-backoff-NUL"),
    case(lambda b, s: b.create_new_job(new_job(unique_digest="held")), DuplicatedJobError, "held", id="create_job-digest-held"),
    case(lambda b, s: b.create_new_jobs(None), NONE_ERROR, "jobs", id="create_jobs-None"),
    case(lambda b, s: b.create_new_jobs("abc"), TypeError, "jobs", id="create_jobs-str"),
    case(lambda b, s: b.create_new_jobs(b"abc"), TypeError, "jobs", id="create_jobs-bytes"),
    case(lambda b, s: b.create_new_jobs(5), TypeError, "jobs", id="create_jobs-int"),
    case(lambda b, s: b.create_new_jobs(new_job()), TypeError, "jobs", id="create_jobs-one-job"),
    case(lambda b, s: b.create_new_jobs([new_job(), None]), TypeError, "jobs[1]", id="create_jobs-None-item"),
    case(lambda b, s: b.create_new_jobs([new_job(), {"queue": "q"}]), TypeError, "jobs[1]", id="create_jobs-dict-item"),
    case(lambda b, s: b.create_new_jobs([new_job(), new_job(args=[math.nan])]), ValueError, "args", id="create_jobs-nan"),
    case(lambda b, s: b.create_new_jobs([new_job(), new_job(available_at=NAIVE)]), ValueError, "available_at", id="create_jobs-naive"),
    case(lambda b, s: b.create_new_jobs([new_job(), new_job("q" * 256)]), ValueError, "queue", id="create_jobs-queue-256"),
    case(lambda b, s: b.create_new_jobs([new_job(unique_digest="d"), new_job(unique_digest="d")]), DuplicatedJobError, id="create_jobs-digest-twice"),
    case(lambda b, s: b.create_new_jobs([new_job(), new_job(unique_digest="held")]), DuplicatedJobError, id="create_jobs-digest-held"),
    case(lambda b, s: b.claim_pending_job(None), NONE_ERROR, "queue", id="claim-queue-None"),
    case(lambda b, s: b.claim_pending_job(5), TypeError, "queue", id="claim-queue-int"),
    case(lambda b, s: b.claim_pending_job(["default"]), TypeError, "queue", id="claim-queue-list"),
    case(lambda b, s: b.claim_pending_job("de\x00fault"), ValueError, "queue", id="claim-queue-NUL"),
    case(lambda b, s: b.claim_pending_job("default", 0), ValueError, "quantity", id="claim-quantity-0"),
    case(lambda b, s: b.claim_pending_job("default", -1), ValueError, "quantity", id="claim-quantity-neg"),
    case(lambda b, s: b.claim_pending_job("default", True), TypeError, "quantity", id="claim-quantity-bool"),
    case(lambda b, s: b.claim_pending_job("default", 1.0), TypeError, "quantity", id="claim-quantity-float"),
    case(lambda b, s: b.claim_pending_job("default", "1"), TypeError, "quantity", id="claim-quantity-str"),
    case(lambda b, s: b.claim_pending_job("default", None), NONE_ERROR, "quantity", id="claim-quantity-None"),
    case(lambda b, s: b.update_job(None, state="running"), NONE_ERROR, "job_id", id="update_job-id-None"),
    case(lambda b, s: b.update_job(str(s.waiting.id)), TypeError, "job_id", id="update_job-id-str"),
    case(lambda b, s: b.update_job(True), TypeError, "job_id", id="update_job-id-bool"),
    case(lambda b, s: b.update_job(BIGINT_OVER), ValueError, "job_id", id="update_job-id-over-bigint"),
    case(lambda b, s: b.update_job(s.waiting.id, id=5), ValueError, "id", id="update_job-id-field"),
    case(lambda b, s: b.update_job(s.waiting.id, bogus=1), ValueError, "bogus", id="update_job-unknown-field"),
    case(lambda b, s: b.update_job(s.waiting.id, **{"class": "X"}), ValueError, "job_class", id="update_job-class"),
    case(lambda b, s: b.update_job(s.waiting.id, state="bogus"), ValueError, "state", id="update_job-state-unknown"),
    case(lambda b, s: b.update_job(s.waiting.id, state="Waiting"), ValueError, "state", id="update_job-state-case"),
    case(lambda b, s: b.update_job(s.waiting.id, state="active"), ValueError, "state", id="update_job-state-queue-state"),
    case(lambda b, s: b.update_job(s.waiting.id, state=None), NONE_ERROR, "state", id="update_job-state-None"),
    case(lambda b, s: b.update_job(s.waiting.id, state=5), TypeError, "state", id="update_job-state-int"),
    case(lambda b, s: b.update_job(s.waiting.id, attempt=True), TypeError, "attempt", id="update_job-attempt-bool"),
    case(lambda b, s: b.update_job(s.waiting.id, attempt=2**31), ValueError, "attempt", id="update_job-attempt-int32"),
    case(lambda b, s: b.update_job(s.waiting.id, attempt=None), NONE_ERROR, "attempt", id="update_job-attempt-None"),
    case(lambda b, s: b.update_job(s.waiting.id, attempt="1"), TypeError, "attempt", id="update_job-attempt-str"),
    case(lambda b, s: b.update_job(s.waiting.id, max_attempts=INT32_MIN - 1), ValueError, "max_attempts", id="update_job-max_attempts-int32"),
    case(lambda b, s: b.update_job(s.waiting.id, timeout=2**31), ValueError, "timeout", id="update_job-timeout-int32"),
    case(lambda b, s: b.update_job(s.waiting.id, retry_delay=True), TypeError, "retry_delay", id="update_job-retry_delay-bool"),
    case(lambda b, s: b.update_job(s.waiting.id, args=None), NONE_ERROR, "args", id="update_job-args-None"),
    case(lambda b, s: b.update_job(s.waiting.id, args={1}), TypeError, "args", id="update_job-args-set"),
    case(lambda b, s: b.update_job(s.waiting.id, args=[math.nan]), ValueError, "args", id="update_job-args-nan"),
    case(lambda b, s: b.update_job(s.waiting.id, constructor_args=b""), TypeError, "constructor_args", id="update_job-ctor-bytes"),
    case(lambda b, s: b.update_job(s.waiting.id, result={1}), TypeError, "result", id="update_job-result-set"),
    case(lambda b, s: b.update_job(s.waiting.id, result=math.nan), ValueError, "result", id="update_job-result-nan"),
    case(lambda b, s: b.update_job(s.waiting.id, result={"a\x00": 1}), ValueError, "result", id="update_job-result-NUL-key"),
    case(lambda b, s: b.update_job(s.waiting.id, errors=[b"x"]), TypeError, "errors", id="update_job-errors-bytes"),
    case(lambda b, s: b.update_job(s.waiting.id, errors=[math.inf]), ValueError, "errors", id="update_job-errors-inf"),
    case(lambda b, s: b.update_job(s.waiting.id, uniqueness_config=object()), TypeError, "uniqueness_config", id="update_job-uconf-object"),
    case(lambda b, s: b.update_job(s.waiting.id, attempted_at=NAIVE), ValueError, "attempted_at", id="update_job-attempted_at-naive"),
    case(lambda b, s: b.update_job(s.waiting.id, attempted_at="now"), TypeError, "attempted_at", id="update_job-attempted_at-str"),
    case(lambda b, s: b.update_job(s.waiting.id, completed_at=0), TypeError, "completed_at", id="update_job-completed_at-int"),
    case(lambda b, s: b.update_job(s.waiting.id, inserted_at=None), NONE_ERROR, "inserted_at", id="update_job-inserted_at-None"),
    case(lambda b, s: b.update_job(s.waiting.id, available_at=None), NONE_ERROR, "available_at", id="update_job-available_at-None"),
    case(lambda b, s: b.update_job(s.waiting.id, claimed_at=date(2030, 1, 1)), TypeError, "claimed_at", id="update_job-claimed_at-date"),
    case(lambda b, s: b.update_job(s.waiting.id, failed_at=UNREPRESENTABLE), ValueError, "failed_at", id="update_job-failed_at-out-of-range"),
    case(lambda b, s: b.update_job(s.waiting.id, canceled_at=NAIVE), ValueError, "canceled_at", id="update_job-canceled_at-naive"),
    case(lambda b, s: b.update_job(s.waiting.id, claimed_by="w" * 256), ValueError, "claimed_by", id="update_job-claimed_by-256"),
    case(lambda b, s: b.update_job(s.waiting.id, claimed_by=5), TypeError, "claimed_by", id="update_job-claimed_by-int"),
    case(lambda b, s: b.update_job(s.waiting.id, queue="q" * 256), ValueError, "queue", id="update_job-queue-256"),
    case(lambda b, s: b.update_job(s.waiting.id, script=None), NONE_ERROR, "script", id="update_job-script-None"),
    case(lambda b, s: b.update_job(s.waiting.id, job_class="c" * 256), ValueError, "job_class", id="update_job-class-256"),
    case(lambda b, s: b.update_job(s.waiting.id, unique_digest="a\x00"), ValueError, "unique_digest", id="update_job-digest-NUL"),
    case(lambda b, s: b.update_job(s.waiting.id, backoff_strategy=None), NONE_ERROR, "backoff_strategy", id="update_job-backoff-None"),
    case(lambda b, s: b.update_job(s.waiting.id, state="running", attempt="1"), TypeError, "attempt", id="update_job-good-and-bad"),
    case(lambda b, s: b.update_job(s.waiting.id, state="completed", completed_at=NAIVE), ValueError, "completed_at", id="update_job-good-and-naive"),
    case(lambda b, s: b.update_job(s.waiting.id, unique_digest="held"), DuplicatedJobError, "held", id="update_job-digest-held"),
    case(lambda b, s: b.update_job(2**40, state="running"), JobNotFoundError, id="update_job-missing"),
    case(lambda b, s: b.update_job(2**40, state="bogus"), ValueError, "state", id="update_job-missing-and-bad"),
    case(lambda b, s: b.transition_job(None, expect_state="waiting"), NONE_ERROR, "job_id", id="transition-id-None"),
    case(lambda b, s: b.transition_job(str(s.waiting.id), expect_state="waiting"), TypeError, "job_id", id="transition-id-str"),
    case(lambda b, s: b.transition_job(BIGINT_OVER, expect_state="waiting"), ValueError, "job_id", id="transition-id-over-bigint"),
    case(lambda b, s: b.transition_job(s.waiting.id, state="running"), TypeError, "expect_state", id="transition-expect_state-missing"),
    case(lambda b, s: b.transition_job(s.waiting.id, expect_state="bogus"), ValueError, "expect_state", id="transition-expect_state-unknown"),
    case(lambda b, s: b.transition_job(s.waiting.id, expect_state="Waiting"), ValueError, "expect_state", id="transition-expect_state-case"),
    case(lambda b, s: b.transition_job(s.waiting.id, expect_state="active"), ValueError, "expect_state", id="transition-expect_state-queue-state"),
    case(lambda b, s: b.transition_job(s.waiting.id, expect_state=None), NONE_ERROR, "expect_state", id="transition-expect_state-None"),
    case(lambda b, s: b.transition_job(s.waiting.id, expect_state=5), TypeError, "expect_state", id="transition-expect_state-int"),
    case(lambda b, s: b.transition_job(s.waiting.id, expect_state=["waiting"]), TypeError, "expect_state", id="transition-expect_state-list"),
    case(lambda b, s: b.transition_job(s.claimed.id, expect_state="claimed", expect_claimed_by=5), TypeError, "expect_claimed_by", id="transition-expect_claimed_by-int"),
    case(lambda b, s: b.transition_job(s.claimed.id, expect_state="claimed", expect_claimed_by=b"w"), TypeError, "expect_claimed_by", id="transition-expect_claimed_by-bytes"),
    case(lambda b, s: b.transition_job(s.claimed.id, expect_state="claimed", expect_claimed_by="w" * 256), ValueError, "expect_claimed_by", id="transition-expect_claimed_by-256"),
    case(lambda b, s: b.transition_job(s.claimed.id, expect_state="claimed", expect_claimed_by="w\x00"), ValueError, "expect_claimed_by", id="transition-expect_claimed_by-NUL"),
    case(lambda b, s: b.transition_job(s.running.id, expect_state="running", expect_attempt="0"), TypeError, "expect_attempt", id="transition-expect_attempt-str"),
    case(lambda b, s: b.transition_job(s.running.id, expect_state="running", expect_attempt=False), TypeError, "expect_attempt", id="transition-expect_attempt-bool"),
    case(lambda b, s: b.transition_job(s.running.id, expect_state="running", expect_attempt=0.0), TypeError, "expect_attempt", id="transition-expect_attempt-float"),
    case(lambda b, s: b.transition_job(s.running.id, expect_state="running", expect_attempt=2**31), ValueError, "expect_attempt", id="transition-expect_attempt-int32"),
    case(lambda b, s: b.transition_job(s.waiting.id, expect_state="waiting", id=5), ValueError, "id", id="transition-id-field"),
    case(lambda b, s: b.transition_job(s.waiting.id, expect_state="waiting", **{"class": "X"}), ValueError, "job_class", id="transition-class"),
    case(lambda b, s: b.transition_job(s.waiting.id, expect_state="waiting", state="bogus"), ValueError, "state", id="transition-state-unknown"),
    case(lambda b, s: b.transition_job(s.waiting.id, expect_state="waiting", attempted_at=NAIVE), ValueError, "attempted_at", id="transition-attempted_at-naive"),
    case(lambda b, s: b.transition_job(s.waiting.id, expect_state="waiting", result=math.nan), ValueError, "result", id="transition-result-nan"),
    case(lambda b, s: b.transition_job(s.waiting.id, expect_state="waiting", unique_digest="held"), DuplicatedJobError, "held", id="transition-digest-held"),
    case(lambda b, s: b.transition_job(2**40, expect_state="waiting", state="running"), JobNotFoundError, id="transition-missing"),
    case(lambda b, s: b.transition_job(2**40, expect_state="waiting"), JobNotFoundError, id="transition-missing-no-changes"),
    case(lambda b, s: b.transition_job(2**40, expect_state="bogus", state="running"), ValueError, "expect_state", id="transition-missing-and-bad"),
    case(lambda b, s: b.transition_job(s.waiting.id, expect_state="completed", state="bogus"), ValueError, "state", id="transition-not-holding-and-bad"),
]
# fmt: on

# fmt: off
LISTING_CASES = [
    case(lambda b, s: b.list_jobs(limit=-1), ValueError, "limit", id="list_jobs-limit-neg"),
    case(lambda b, s: b.list_jobs(limit=True), TypeError, "limit", id="list_jobs-limit-bool"),
    case(lambda b, s: b.list_jobs(limit="10"), TypeError, "limit", id="list_jobs-limit-str"),
    case(lambda b, s: b.list_jobs(limit=None), NONE_ERROR, "limit", id="list_jobs-limit-None"),
    case(lambda b, s: b.list_jobs(limit=1.5), TypeError, "limit", id="list_jobs-limit-float"),
    case(lambda b, s: b.list_jobs(offset=-1), ValueError, "offset", id="list_jobs-offset-neg"),
    case(lambda b, s: b.list_jobs(offset=None), NONE_ERROR, "offset", id="list_jobs-offset-None"),
    case(lambda b, s: b.list_jobs(offset=False), TypeError, "offset", id="list_jobs-offset-bool"),
    case(lambda b, s: b.list_jobs(queue=5), TypeError, "queue", id="list_jobs-queue-int"),
    case(lambda b, s: b.list_jobs(queue=b"default"), TypeError, "queue", id="list_jobs-queue-bytes"),
    case(lambda b, s: b.list_jobs(queue={"default"}), TypeError, "queue", id="list_jobs-queue-set"),
    case(lambda b, s: b.list_jobs(queue=[5]), TypeError, "queue[0]", id="list_jobs-queue-list-int"),
    case(lambda b, s: b.list_jobs(queue=["default", None]), NONE_ERROR, "queue[1]", id="list_jobs-queue-list-None"),
    case(lambda b, s: b.list_jobs(queue=["a\x00"]), ValueError, "queue[0]", id="list_jobs-queue-list-NUL"),
    case(lambda b, s: b.list_jobs(queue="a\x00"), ValueError, "queue", id="list_jobs-queue-NUL"),
    case(lambda b, s: b.list_jobs(queue="default\\"), ValueError, "queue", id="list_jobs-queue-lone-backslash"),
    case(lambda b, s: b.list_jobs(job_class=5), TypeError, "job_class", id="list_jobs-class-int"),
    case(lambda b, s: b.list_jobs(job_class="Echo\\"), ValueError, "job_class", id="list_jobs-class-lone-backslash"),
    case(lambda b, s: b.list_jobs(state=5), TypeError, "state", id="list_jobs-state-int"),
    case(lambda b, s: b.list_jobs(state=[1]), TypeError, "state[0]", id="list_jobs-state-list-int"),
    case(lambda b, s: b.list_jobs(args={1}), TypeError, "args", id="list_jobs-args-set"),
    case(lambda b, s: b.list_jobs(args=math.nan), ValueError, "args", id="list_jobs-args-nan"),
    case(lambda b, s: b.list_jobs(args=[b""]), TypeError, "args[0]", id="list_jobs-args-bytes"),
    case(lambda b, s: b.list_jobs(args={1: 2}), TypeError, "args", id="list_jobs-args-int-key"),
    case(lambda b, s: b.list_jobs(args=["\x00"]), ValueError, "args[0]", id="list_jobs-args-NUL"),
    case(lambda b, s: b.list_jobs(since=NAIVE), ValueError, "since", id="list_jobs-since-naive"),
    case(lambda b, s: b.list_jobs(since="2030"), TypeError, "since", id="list_jobs-since-str"),
    case(lambda b, s: b.list_jobs(since=date(2030, 1, 1)), TypeError, "since", id="list_jobs-since-date"),
    case(lambda b, s: b.list_jobs(until=5), TypeError, "until", id="list_jobs-until-int"),
    case(lambda b, s: b.list_jobs(until=NAIVE), ValueError, "until", id="list_jobs-until-naive"),
    case(lambda b, s: b.list_jobs(until=UNREPRESENTABLE), ValueError, "until", id="list_jobs-until-out-of-range"),
    case(lambda b, s: b.count_jobs(since=NAIVE), ValueError, "since", id="count_jobs-since-naive"),
    case(lambda b, s: b.count_jobs(since="x"), TypeError, "since", id="count_jobs-since-str"),
    case(lambda b, s: b.count_jobs(until=0), TypeError, "until", id="count_jobs-until-int"),
    case(lambda b, s: b.count_jobs(until=NAIVE), ValueError, "until", id="count_jobs-until-naive"),
    case(lambda b, s: b.count_jobs(since=UNREPRESENTABLE), ValueError, "since", id="count_jobs-since-out-of-range"),
    case(lambda b, s: b.stale_jobs(max_stale_ms="1"), TypeError, "max_stale_ms", id="stale-max_stale_ms-str"),
    case(lambda b, s: b.stale_jobs(max_stale_ms=None), NONE_ERROR, "max_stale_ms", id="stale-max_stale_ms-None"),
    case(lambda b, s: b.stale_jobs(max_stale_ms=1.5), TypeError, "max_stale_ms", id="stale-max_stale_ms-float"),
    case(lambda b, s: b.stale_jobs(max_stale_ms=True), TypeError, "max_stale_ms", id="stale-max_stale_ms-bool"),
    case(lambda b, s: b.stale_jobs(max_stale_ms=BIGINT_OVER), ValueError, "max_stale_ms", id="stale-max_stale_ms-huge"),
    case(lambda b, s: b.stale_jobs(max_claimed_ms="1"), TypeError, "max_claimed_ms", id="stale-max_claimed_ms-str"),
    case(lambda b, s: b.stale_jobs(max_claimed_ms=None), NONE_ERROR, "max_claimed_ms", id="stale-max_claimed_ms-None"),
    case(lambda b, s: b.stale_jobs(max_claimed_ms=False), TypeError, "max_claimed_ms", id="stale-max_claimed_ms-bool"),
    case(lambda b, s: b.stale_jobs(max_claimed_ms=-BIGINT_OVER - 1), ValueError, "max_claimed_ms", id="stale-max_claimed_ms-huge"),
    case(lambda b, s: b.delete_finished_jobs(NAIVE), ValueError, "cutoff", id="delete-cutoff-naive"),
    case(lambda b, s: b.delete_finished_jobs(None), NONE_ERROR, "cutoff", id="delete-cutoff-None"),
    case(lambda b, s: b.delete_finished_jobs("2030-01-01"), TypeError, "cutoff", id="delete-cutoff-str"),
    case(lambda b, s: b.delete_finished_jobs(0), TypeError, "cutoff", id="delete-cutoff-int"),
    case(lambda b, s: b.delete_finished_jobs(date(2031, 1, 1)), TypeError, "cutoff", id="delete-cutoff-date"),
    case(lambda b, s: b.delete_finished_jobs(UNREPRESENTABLE), ValueError, "cutoff", id="delete-cutoff-out-of-range"),
]
# fmt: on

BAD_TIME_RANGES_TYPE = [5, None, b"1m", ["1m"], 1.5, timedelta(hours=1)]
BAD_TIME_RANGES_VALUE = [
    "",
    "0m",
    "01m",
    "1",
    "m",
    "h",
    "1s",
    "1w",
    "1M",
    "1H",
    "1D",
    " 1m",
    "1m ",
    "1m\n",
    "\n1m",
    "-1m",
    "+1m",
    "1.5h",
    "1e3m",
    "10001m",
    "99999999999999999999d",
    "\uff11m",
    "\u0661m",
    "1 m",
    "1mh",
    "1m1m",
    "1m; DROP TABLE sidequest_jobs; --",
    "1m'",
    "%",
    "1m\x00",
]


class TestBadInputIsRefused:
    @pytest.mark.parametrize(("call", "error", "words"), QUEUE_CASES)
    def test_queue_operations(
        self, backend: SQLBackend, seeded: Seeded, call: Any, error: Any, words: tuple[str, ...]
    ) -> None:
        assert_refused(backend, lambda: call(backend, seeded), error, *words)

    @pytest.mark.parametrize(("call", "error", "words"), JOB_CASES)
    def test_job_operations(
        self, backend: SQLBackend, seeded: Seeded, call: Any, error: Any, words: tuple[str, ...]
    ) -> None:
        assert_refused(backend, lambda: call(backend, seeded), error, *words)

    @pytest.mark.parametrize(("call", "error", "words"), LISTING_CASES)
    def test_listing_statistics_and_cleanup(
        self, backend: SQLBackend, seeded: Seeded, call: Any, error: Any, words: tuple[str, ...]
    ) -> None:
        assert_refused(backend, lambda: call(backend, seeded), error, *words)

    @pytest.mark.parametrize("time_range", BAD_TIME_RANGES_TYPE)
    def test_time_range_of_another_type(self, backend: SQLBackend, seeded: Seeded, time_range: Any) -> None:
        assert_refused(backend, lambda: backend.count_jobs_over_time(time_range), TypeError, "time_range")

    @pytest.mark.parametrize("time_range", BAD_TIME_RANGES_VALUE)
    def test_malformed_time_range(self, backend: SQLBackend, seeded: Seeded, time_range: str) -> None:
        assert_refused(backend, lambda: backend.count_jobs_over_time(time_range), ValueError, "time_range")

    def test_lookups_are_lookup_errors(self, backend: SQLBackend, seeded: Seeded) -> None:
        assert isinstance(
            assert_refused(backend, lambda: backend.update_job(2**40), LookupError), JobNotFoundError
        )
        assert isinstance(
            assert_refused(backend, lambda: backend.update_queue(2**40), LookupError), QueueNotFoundError
        )
        assert isinstance(
            assert_refused(backend, lambda: backend.transition_job(2**40, expect_state="waiting"), LookupError),
            JobNotFoundError,
        )

    def test_a_bad_job_anywhere_in_a_generator_writes_nothing(
        self, backend: SQLBackend, seeded: Seeded
    ) -> None:
        def jobs() -> Iterator[Any]:
            yield new_job()
            yield new_job("q2")
            yield new_job(max_attempts=True)

        assert_refused(backend, lambda: backend.create_new_jobs(jobs()), TypeError, "max_attempts")


# Text that means something to SQL, to drivers' parameter styles, to LIKE or to GLOB.
HOSTILE = [
    INJECTION,
    "'); DELETE FROM sidequest_queues; --",
    '"; DROP TABLE "sidequest_queues"; --',
    "' OR '1'='1",
    "1 OR 1=1",
    "Robert'); DROP TABLE Students;--",
    "/* comment */",
    "-- comment",
    ";",
    "'",
    '"',
    "%",
    "_",
    "%%",
    "a_b%c",
    "\\",
    "\\\\",
    "\\%",
    "a\\_b",
    "*",
    "?",
    "[a-z]",
    "[",
    "]",
    "^",
    "{}",
    "%(name)s",
    "%s",
    "?, ?",
    ":name",
    "$1",
    "\n\r\t",
    " ",
    "",
    "NULL",
    "null",
    "\\x00",
    "日本語キュー",
    "🎉🚀",
    "\u202egnp.exe",
    "ＡＢＣ",
    "q" * 255,
]


def like_literal(text: str) -> str:
    """A LIKE pattern matching exactly ``text``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def check_text_is_data(backend: SQLBackend, text: str) -> None:
    """``text`` as a queue name, class, script, digest, payload and filter is only data."""
    decoy_queue = backend.create_new_queue("decoy " + text[:200])
    decoy = backend.create_new_job(new_job("decoy " + text[:200], job_class="Decoy", args=["decoy"]))
    queue = backend.create_new_queue(text, priority=7)
    assert queue.name == text
    assert backend.get_queue(text) == queue
    assert {q.name for q in backend.list_queues()} == {text, decoy_queue.name}
    job = backend.create_new_job(
        new_job(text, script=text, job_class=text, unique_digest=text, args=[text, {text: text}])
    )
    assert (job.queue, job.script, job.job_class, job.unique_digest) == (text, text, text, text)
    assert job.args == [text, {text: text}]
    assert backend.get_job(job.id) == job
    assert backend.list_jobs(queue=[text]) == [job]
    assert backend.list_jobs(queue=like_literal(text)) == [job]
    assert backend.list_jobs(job_class=like_literal(text)) == [job]
    assert backend.list_jobs(args=[text, {text: text}]) == [job]
    assert text in backend.get_queues_from_jobs()
    assert backend.count_jobs_by_queues()[text].waiting == 1
    updated = backend.update_job(job.id, result={text: [text]}, errors=[text], claimed_by=text)
    assert backend.get_job(job.id) == updated and updated.result == {text: [text]}
    assert backend.transition_job(job.id, expect_state="waiting", expect_claimed_by=text) == updated
    if text != "%":
        assert backend.transition_job(job.id, expect_state="waiting", expect_claimed_by="%", priority=9) is None
    [claimed] = backend.claim_pending_job(text)
    assert claimed.id == job.id
    assert backend.get_job(decoy.id) == decoy
    assert backend.get_queue(decoy_queue.name) == decoy_queue
    renamed = backend.update_queue(queue.id, name=text[:250] + "!")
    assert backend.get_queue(text) is None and backend.get_queue(renamed.name) == renamed


class TestHostileTextIsData:
    @pytest.mark.parametrize("text", HOSTILE)
    def test_round_trips_and_matches_only_itself(self, backend: SQLBackend, text: str) -> None:
        check_text_is_data(backend, text)

    def test_tables_survive_injection_attempts(self, backend: SQLBackend, seeded: Seeded) -> None:
        before = snapshot(backend)
        for text in HOSTILE[:8]:
            assert backend.get_queue(text) is None
            assert backend.list_jobs(queue=text, job_class=text, state=text) == []
            assert backend.list_jobs(queue=[text], job_class=[text], state=[text]) == []
            assert backend.list_jobs(args=text) == []
            assert backend.claim_pending_job(text) == []
        assert snapshot(backend) == before

    def test_an_unknown_state_filter_matches_nothing(self, backend: SQLBackend, seeded: Seeded) -> None:
        assert backend.list_jobs(state="bogus") == []
        assert backend.list_jobs(state=["bogus", "WAITING"]) == []

    def test_over_long_text_in_a_read_is_simply_not_found(self, backend: SQLBackend, seeded: Seeded) -> None:
        assert backend.get_queue("q" * 300) is None
        assert backend.list_jobs(queue="q" * 1000) == []
        assert backend.list_jobs(queue=["q" * 1000]) == []
        assert backend.claim_pending_job("q" * 1000) == []


class TestEdgesThatAreAccepted:
    def test_int32_and_length_boundaries(self, backend: SQLBackend) -> None:
        low = backend.create_new_queue("n" * 255, concurrency=1, priority=INT32_MIN)
        high = backend.create_new_queue("high", concurrency=INT32_MAX, priority=INT32_MAX)
        assert backend.list_queues() == [high, low]
        job = backend.create_new_job(
            new_job(
                "q" * 255,
                script="s" * 255,
                job_class="c" * 255,
                unique_digest="d" * 255,
                max_attempts=INT32_MAX,
                timeout=0,
                retry_delay=INT32_MAX,
            )
        )
        changed = backend.update_job(job.id, attempt=INT32_MIN, max_attempts=0, claimed_by="w" * 255)
        assert backend.get_job(job.id) == changed
        assert changed.attempt == INT32_MIN

    def test_ids_beyond_int32_are_simply_not_found(self, backend: SQLBackend, seeded: Seeded) -> None:
        for job_id in (2**31, 2**40, 2**63 - 1, -1, 0, -(2**63)):
            assert backend.get_job(job_id) is None
        with pytest.raises(JobNotFoundError):
            backend.update_job(2**63 - 1, state="running")
        with pytest.raises(QueueNotFoundError):
            backend.update_queue(2**63 - 1, concurrency=1)

    def test_extreme_thresholds_and_times(self, backend: SQLBackend, seeded: Seeded) -> None:
        assert backend.stale_jobs(max_stale_ms=2**63 - 1, max_claimed_ms=2**63 - 1) == []
        everything = backend.stale_jobs(max_stale_ms=-(2**63), max_claimed_ms=-(2**63))
        assert [job.id for job in everything] == [seeded.running.id, seeded.claimed.id]
        earliest, latest = datetime(1, 1, 1, tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
        assert backend.count_jobs(since=earliest, until=latest).total == 5
        assert backend.count_jobs(since=latest).total == 0
        assert backend.list_jobs(since=earliest, until=latest) == [seeded.running]
        assert backend.delete_finished_jobs(earliest) == 0
        assert backend.delete_finished_jobs(latest) == 1
        assert backend.get_job(seeded.completed.id) is None

    def test_the_largest_time_range(self, backend: SQLBackend, seeded: Seeded) -> None:
        buckets = backend.count_jobs_over_time("10000m")
        assert len(buckets) == 10_000
        assert sum(bucket.total for bucket in buckets) == 5

    def test_empty_limits_and_filters(self, backend: SQLBackend, seeded: Seeded) -> None:
        assert backend.list_jobs(limit=0) == []
        assert backend.list_jobs(offset=2**31 - 1) == []
        assert backend.list_jobs(queue=[]) == []
        assert backend.list_jobs(queue="") == []


# -- arbitrary input --------------------------------------------------------------------------

storable_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=255)
any_text = st.one_of(
    storable_text,
    st.sampled_from(HOSTILE),
    st.text(st.characters(), max_size=300),
    st.text(st.sampled_from(["a", "\x00", "\ud800", "%", "_", "\\", "'"]), max_size=8),
    st.text(st.sampled_from("ab"), min_size=250, max_size=260),
)


def storable(text: str) -> bool:
    return "\x00" not in text and len(text) <= 255 and not any("\ud800" <= char <= "\udfff" for char in text)


class TestArbitraryInput:
    @hypothesis_settings
    @given(text=any_text)
    def test_any_queue_name_round_trips_or_is_refused(self, backend: SQLBackend, text: str) -> None:
        backend.truncate()
        note(f"text={text!r}")
        event("storable" if storable(text) else "refused")
        if not storable(text):
            assert_refused(backend, lambda: backend.create_new_queue(text), ValueError, "name")
            assert_refused(backend, lambda: backend.create_new_job(new_job(text)), ValueError, "queue")
            return
        queue = backend.create_new_queue(text)
        assert backend.get_queue(text) == queue
        assert backend.list_queues() == [queue]
        job = backend.create_new_job(new_job(text, job_class=text))
        assert backend.list_jobs(queue=[text]) == [job]
        assert backend.list_jobs(queue=like_literal(text)) == [job]
        assert backend.list_jobs(job_class=like_literal(text)) == [job]
        [claimed] = backend.claim_pending_job(text)
        assert claimed.id == job.id

    @hypothesis_settings
    @given(text=storable_text.filter(lambda text: len(text) < 200))
    def test_a_filter_matches_exactly_its_own_text(self, backend: SQLBackend, text: str) -> None:
        backend.truncate()
        near = {text + "x", "x" + text, text.swapcase(), text.upper(), text.lower(), text[:-1], text[1:]} - {
            text
        }
        others = [backend.create_new_job(new_job(other)) for other in sorted(near)]
        job = backend.create_new_job(new_job(text))
        note(f"text={text!r} others={sorted(near)!r}")
        assert backend.list_jobs(queue=like_literal(text)) == [job]
        assert backend.list_jobs(queue=[text]) == [job]
        assert len(backend.list_jobs(queue="%")) == len(others) + 1

    @hypothesis_settings
    @given(value=st.deferred(lambda: json_ish))
    def test_any_payload_round_trips_or_is_refused(self, backend: SQLBackend, value: Any) -> None:
        backend.truncate()
        note(f"value={value!r}")
        event("stored" if valid_json(value) else "refused")
        if not valid_json(value):
            assert_refused(
                backend,
                lambda: backend.create_new_job(new_job(args=[value])),
                (ValueError, TypeError),
                "args",
            )
            assert_refused(backend, lambda: backend.list_jobs(args=[value]), (ValueError, TypeError), "args")
            assert_refused(
                backend,
                lambda: backend.create_new_job(new_job(uniqueness_config=value)),
                (ValueError, TypeError),
                "uniqueness_config",
            )
            return
        decoy = backend.create_new_job(new_job(args=["decoy", value]))
        job = backend.create_new_job(new_job(args=[value], constructor_args={"v": value}))
        stored = backend.get_job(job.id)
        assert stored is not None
        assert same_json(stored.args, [value]) and same_json(job.args, [value])
        assert same_json(stored.constructor_args, {"v": value})
        assert backend.list_jobs(args=[value]) == [stored]
        updated = backend.update_job(job.id, result=value, errors=[value], uniqueness_config=value)
        again = backend.get_job(job.id)
        assert again == updated
        assert same_json(again.result, value) and same_json(again.errors, [value])  # type: ignore[union-attr]
        assert same_json(again.uniqueness_config, value)  # type: ignore[union-attr]
        assert backend.get_job(decoy.id) == decoy


storable_chars = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
json_atoms = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.floats(min_value=-(2.0**53), max_value=2.0**53, exclude_min=True, exclude_max=True),
    st.text(storable_chars, max_size=10),
)
non_json_atoms = st.one_of(
    st.sampled_from(
        [math.nan, math.inf, -math.inf, "a\x00", "\ud800", b"x", Decimal("1.5"), (1,), frozenset(), object()]
    ),
    st.sets(st.integers(), max_size=2),
    st.datetimes(),
)
keys = st.one_of(
    st.text(storable_chars, max_size=6),
    st.text(storable_chars, max_size=6),
    st.sampled_from(["k\x00", 1, None, ("t",)]),
)
json_ish = st.recursive(
    st.one_of(json_atoms, json_atoms, json_atoms, non_json_atoms),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)


def valid_json(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return "\x00" not in value and not any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, list):
        return all(valid_json(item) for item in value)
    if isinstance(value, dict):
        return all(
            isinstance(key, str) and valid_json(key) and valid_json(item) for key, item in value.items()
        )
    return False


def same_json(a: Any, b: Any) -> bool:
    """JSON equality as documents: ``1`` is not ``true``; an integral float may come back an int."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[key], b[key]) for key in a)
    return type(a) is type(b) and a == b
