"""The backend under test and ``ModelBackend``, driven side by side by Hypothesis.

Each example empties the database and sets the clock back, then runs a random
program of operations (enqueue, claim, the transitions a worker makes, any
field change, queues, time passing, cleanup) on both, and after every step
that may have changed something compares everything the two report (after a
step that only read, the state is the one already compared). Ids may differ
between the two (a database sequence survives ``truncate()``, SQLite reuses
the highest id after a delete), so the machine maps the model's ids to the
backend's.

How long it runs is the Hypothesis profile's business: ``sidequest-quick``
locally, ``sidequest-ci`` when ``$CI`` is set (the ``sidequest_settings``
fixture of ``plugin``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sidequest_sql.base import SQLBackend
from sidequest_sql.errors import SidequestError
from sidequest_sql.records import FINISHED_STATES, JOB_STATES, JobData, JobTransition, NewJobData, QueueConfig

from .clock import START, ManualClock
from .documents import SHAPES, nested
from .model import ModelBackend, json_equal
from .fixtures import backend  # noqa: F401  (the suite's fixture)

EVERYTHING = 2**31 - 1
"""A ``limit`` no test reaches."""

QUEUES = ("default", "Default", "mail", "mail_2", "a%b", "a\\b")
CLASSES = ("Echo", "echo", "SendMail", "Send_Mail", "Send%Mail")
SCRIPTS = ("jobs/echo.js", "jobs/mail.js")
DIGESTS = ("d1", "d2", "d3")
JSON_FIELDS = ("args", "constructor_args", "result", "errors", "uniqueness_config")

# -- strategies -----------------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=6)
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(-(2.0**53) + 1, 2.0**53 - 1, allow_nan=False)
    | _text
)
json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
# Documents that differ only where JSON and Python disagree (1, 1.0 and true; key order).
TRICKY_ARGS = (
    [], [1], [1.0], [True], [0], [False], [None], ["1"], {},
    {"a": 1, "b": [2, "x"]}, {"b": [2, "x"], "a": 1.0}, {"a": True},
)  # fmt: skip
args_values = st.sampled_from(TRICKY_ARGS) | json_values
digests = st.none() | st.sampled_from(DIGESTS)

_zones = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])
offsets = st.one_of(
    st.just(timedelta(0)),
    st.sampled_from([timedelta(seconds=-1), timedelta(minutes=-5), timedelta(hours=-3), timedelta(days=-2),
                     timedelta(seconds=1), timedelta(hours=1)]),
    st.integers(-3 * 86_400_000_000, 86_400_000_000).map(lambda us: timedelta(microseconds=us)),
)  # fmt: skip
"""Where a time lies relative to now: mostly the recent past, some future."""

clock_steps = st.one_of(
    st.integers(1, 999_999).map(lambda us: timedelta(microseconds=us)),
    st.integers(1, 59).map(lambda s: timedelta(seconds=s)),
    st.integers(1, 59).map(lambda m: timedelta(minutes=m)),
    st.integers(1, 23).map(lambda h: timedelta(hours=h)),
    st.integers(1, 3).map(lambda d: timedelta(days=d)),
)


def like_patterns(patterns: list[str], alphabet: str) -> st.SearchStrategy[str]:
    """LIKE filters where case, wildcards and escapes decide; a lone trailing backslash
    must raise ValueError on both sides."""
    return st.sampled_from(["%", "", *patterns]) | st.text(alphabet + "%_\\", max_size=5)


def text_filters(patterns: list[str], alphabet: str, values: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """A ``list_jobs`` text filter: None, a LIKE pattern, or a list (IN)."""
    return st.none() | like_patterns(patterns, alphabet) | st.lists(st.sampled_from(values), max_size=3, unique=True)


queue_filters = text_filters(
    ["default", "Default", "d%", "D%", "%ault", "mail_2", "mail\\_2", "mail\\_%", "mail%", "a%b", "a\\%b",
     "a\\\\b", "a_b", "___", "%\\\\%"],
    "adDm2",
    QUEUES,
)  # fmt: skip
class_filters = text_filters(
    ["Echo", "echo", "e%", "E%", "%Mail", "%mail", "Send_Mail", "Send\\_Mail", "Send\\%Mail", "Send%Mail", "____"],
    "eEoSM",
    CLASSES,
)  # fmt: skip
state_filters = text_filters(["waiting", "Waiting", "wait%", "%ed", "c%", "C%", "runn_ng", "%e%"], "acdeg", JOB_STATES)


CHECKED_QUEUE_PATTERNS = ("d%", "Default", "mail\\_2", "a\\%b", "a\\\\b", "%a_l%")
"""Queue filters the invariant takes in turn."""


def moments(now: datetime) -> st.SearchStrategy[datetime]:
    return st.builds(lambda delta, zone: (now + delta).astimezone(zone), offsets, _zones)


@st.composite
def new_jobs(draw: st.DrawFn) -> tuple[NewJobData, timedelta | None]:
    """A job to enqueue, and when it becomes available relative to now (None: the default)."""
    job = NewJobData(
        queue=draw(st.sampled_from(QUEUES)),
        script=draw(st.sampled_from(SCRIPTS)),
        job_class=draw(st.sampled_from(CLASSES)),
        args=draw(args_values),
        constructor_args=draw(json_values),
        max_attempts=draw(st.integers(0, 5)),
        timeout=draw(st.none() | st.integers(-1_000, 10_000_000)),
        unique_digest=draw(digests),
        uniqueness_config=draw(st.none() | json_values),
        retry_delay=draw(st.none() | st.integers(0, 1_000_000)),
        backoff_strategy=draw(st.sampled_from(["exponential", "fixed"])),
    )
    return job, draw(st.none() | offsets)


def job_changes(now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    """Any subset of a job's fields with any valid value (None where the field allows it)."""
    times, optional_times = moments(now), st.none() | moments(now)
    return st.fixed_dictionaries(
        {},
        optional={
            "queue": st.sampled_from(QUEUES),
            "state": st.sampled_from(JOB_STATES),
            "script": st.sampled_from(SCRIPTS),
            "job_class": st.sampled_from(CLASSES),
            "args": args_values,
            "constructor_args": json_values,
            "timeout": st.none() | st.integers(-1_000, 10_000_000),
            "attempt": st.integers(0, 6),
            "max_attempts": st.integers(0, 6),
            "result": st.none() | json_values,
            "errors": st.none() | json_values,
            "inserted_at": times,
            "attempted_at": optional_times,
            "available_at": times,
            "completed_at": optional_times,
            "failed_at": optional_times,
            "canceled_at": optional_times,
            "claimed_at": optional_times,
            "claimed_by": st.none() | st.sampled_from(["w1", "w2"]),
            "unique_digest": digests,
            "uniqueness_config": st.none() | json_values,
            "retry_delay": st.none() | st.integers(0, 1_000_000),
            "backoff_strategy": st.sampled_from(["exponential", "fixed"]),
        },
    )


CLAIMERS = ("w1", "w2", "")
"""Values of ``claimed_by`` beside the backend's ``worker_name``."""


@st.composite
def preconditions(draw: st.DrawFn, job: JobData | None, holds: bool, worker: str) -> dict[str, Any]:
    """``transition_job``'s ``expect_*`` arguments for ``job``: true of it, or (not
    ``holds``) false in one part; anything for a job that is gone."""
    states, claimers = st.sampled_from(JOB_STATES), st.sampled_from((*CLAIMERS, worker))
    if job is None:
        optional = {"expect_claimed_by": claimers, "expect_attempt": st.integers(0, 6)}
        return draw(st.fixed_dictionaries({"expect_state": states}, optional=optional))
    expected: dict[str, Any] = {"expect_state": job.state}
    if job.claimed_by is not None and draw(st.booleans()):
        expected["expect_claimed_by"] = job.claimed_by
    if draw(st.booleans()):
        expected["expect_attempt"] = job.attempt
    if not holds:
        wrong = {
            "expect_state": states.filter(lambda state: state != job.state),
            "expect_claimed_by": claimers.filter(lambda claimer: claimer != job.claimed_by),
            "expect_attempt": st.integers(-1, 7).filter(lambda attempt: attempt != job.attempt),
        }
        part = draw(st.sampled_from(sorted(wrong)), label="wrong part")
        expected[part] = draw(wrong[part])
    return expected


queue_changes = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(QUEUES),
        "concurrency": st.integers(0, 20),  # 0 is refused on both sides
        "priority": st.integers(-3, 3),
        "state": st.sampled_from(["active", "paused"]),
    },
)

time_ranges = st.sampled_from(["1m", "90m", "24h", "7d", "10000m", "0m", "10001m", "5s", "m", " 5m", "5m\n", "٥m"]) | (
    st.builds(lambda n, unit: f"{n}{unit}", st.integers(1, 400), st.sampled_from("mhd"))
)
stale_thresholds = st.sampled_from([600_000, 60_000, 1_000, 0, -1, 30 * 86_400_000, 2**62, -(2**62)]) | st.integers(
    -(10**9), 10**9
)
missing_ids = st.integers(-3, 0) | st.sampled_from([2**31 - 1, 2**31, 2**63 - 1])
"""Ids no job or queue has, on any database."""
wait_queue_lists = st.lists(st.sampled_from(QUEUES), max_size=4) | st.sampled_from(["default", ("mail",), [None]])
wait_timeouts = st.sampled_from([0, 0.0, -1, math.nan, math.inf, "0", True])
"""``wait_for_jobs``'s arguments: any that return at once (a timeout of 0), and bad ones."""


# -- comparing ----------------------------------------------------------------------


def job_differences(actual: JobData, expected: JobData, backend_id: int) -> list[str]:
    """What differs between the backend's record and the model's, field by field."""
    problems = [] if actual.id == backend_id else [f"id: backend {actual.id}, expected {backend_id}"]
    for field in fields(JobData):
        if field.name == "id":
            continue
        got, want = getattr(actual, field.name), getattr(expected, field.name)
        if field.name in JSON_FIELDS:
            same = json_equal(got, want)
        elif isinstance(want, datetime):
            same = isinstance(got, datetime) and got == want and got.utcoffset() == timedelta(0)
        else:
            same = type(got) is type(want) and got == want
        if not same:
            problems.append(f"{field.name}: backend {got!r}, model {want!r}")
    return problems


def reads(rule_method: Callable[..., None]) -> Callable[..., None]:
    """Mark a rule that only reads: it leaves the backend as the invariant last saw it."""

    @functools.wraps(rule_method)
    def read_only(self: SidequestStateMachine, *args: Any, **kwargs: Any) -> None:
        unchecked = self.unchecked
        rule_method(self, *args, **kwargs)
        self.unchecked = unchecked

    return read_only


class Raised(Exception):
    """Both sides raised the same error: the step is done."""


class SidequestStateMachine(RuleBasedStateMachine):
    """Drives ``backend`` (anything with ``SQLBackend``'s methods) beside a ``ModelBackend``."""

    jobs = Bundle("jobs")
    """Model job ids, deleted ones included."""
    queues = Bundle("queues")
    """Queue names, whether or not a queue has that name now."""

    def __init__(self, backend: SQLBackend | ModelBackend, clock: ManualClock) -> None:
        super().__init__()
        self.backend = backend
        self.clock = clock
        clock.set(START)
        backend.truncate()
        self.model = ModelBackend(
            clock=clock, worker_name=backend.worker_name, max_json_depth=backend.max_json_depth
        )
        self.backend_job_ids: dict[int, int] = {}
        self.backend_queue_ids: dict[int, int] = {}
        self.touched: set[int] = set()
        self.unchecked = True
        """Whether a step may have changed something since the invariant last ran."""
        self.checks = 0
        """How many times the invariant ran: it varies some filters from one run to the next."""

    # -- plumbing -------------------------------------------------------------------

    def both(self, what: str, on_backend: Callable[[Any], Any], on_model: Callable[[Any], Any]) -> tuple[Any, Any]:
        """Run one operation on each side; the same error on both raises ``Raised``."""
        self.unchecked = True
        try:
            expected, expected_error = on_model(self.model), None
        except (SidequestError, ValueError, TypeError) as exc:
            expected, expected_error = None, exc
        try:
            actual = on_backend(self.backend)
        except Exception as exc:
            if type(exc) is type(expected_error):
                note(f"{what}: both raised {type(exc).__name__}")
                raise Raised from exc
            outcome = f"raised {expected_error!r}" if expected_error else f"returned {expected!r}"
            raise AssertionError(f"{what}: the backend raised {exc!r}; the model {outcome}") from exc
        if expected_error is not None:
            raise AssertionError(f"{what}: the backend returned {actual!r}; the model raised {expected_error!r}")
        return actual, expected

    def backend_job_id(self, model_id: int) -> int:
        """The backend's id for a model job; for a deleted job whose id the backend gave
        to another since, an id no job has."""
        backend_id = self.backend_job_ids.get(model_id, -model_id)
        if self.model.get_job(model_id) is None and backend_id in self.live_backend_job_ids():
            return -model_id
        return backend_id

    def live_backend_job_ids(self) -> set[int]:
        return {self.backend_job_ids[job.id] for job in self.model.list_jobs(limit=EVERYTHING)}

    def adopt(self, actual: list[JobData], expected: list[JobData], what: str) -> None:
        """Learn the backend's ids of jobs just created, and check their records."""
        assert len(actual) == len(expected), f"{what}: backend made {len(actual)} jobs, model {len(expected)}"
        for got, want in zip(actual, expected, strict=True):
            self.backend_job_ids[want.id] = got.id
            note(f"model job {want.id} is backend job {got.id}")
        self.check_jobs(what, actual, expected)

    def check_job(self, what: str, actual: JobData | None, expected: JobData | None) -> None:
        if expected is None or actual is None:
            assert actual is None and expected is None, f"{what}: backend {actual!r}, model {expected!r}"
            return
        problems = job_differences(actual, expected, self.backend_job_ids[expected.id])
        assert not problems, f"{what}: model job {expected.id} differs:\n  " + "\n  ".join(problems)

    def check_jobs(self, what: str, actual: list[JobData], expected: list[JobData]) -> None:
        got = [job.id for job in actual]
        want = [self.backend_job_ids[job.id] for job in expected]
        assert got == want, f"{what}: backend ids {got}, expected {want} (model ids {[j.id for j in expected]})"
        for one, other in zip(actual, expected, strict=True):
            self.check_job(what, one, other)

    def check_queues(self, what: str, actual: list[QueueConfig], expected: list[QueueConfig]) -> None:
        mapped = [
            QueueConfig(self.backend_queue_ids[q.id], q.name, q.concurrency, q.state, q.priority) for q in expected
        ]
        assert actual == mapped, f"{what}: backend {actual}, expected {mapped}"

    def update(self, model_id: int, **changes: Any) -> None:
        self.write_job("update_job", model_id, changes)

    def write_job(self, operation: str, model_id: int, arguments: dict[str, Any]) -> None:
        """``update_job`` or ``transition_job`` of one job on both sides; the records compared."""
        self.touched.add(model_id)
        backend_id = self.backend_job_id(model_id)
        what = f"{operation}({backend_id}, **{arguments!r}) (model job {model_id})"
        try:
            actual, expected = self.both(
                what,
                lambda b: getattr(b, operation)(backend_id, **arguments),
                lambda m: getattr(m, operation)(model_id, **arguments),
            )
        except Raised:
            return
        self.check_job(what, actual, expected)

    def step(self, job: JobData, checked: bool, **changes: Any) -> None:
        """A worker's or a sweeper's write to a job it read: blind (``update_job``),
        or ``checked`` against what it read (``transition_job``, which then applies)."""
        if not checked:
            self.update(job.id, **changes)
            return
        expected = {"expect_state": job.state, "expect_claimed_by": job.claimed_by, "expect_attempt": job.attempt}
        self.write_job("transition_job", job.id, {**expected, **changes})

    def pick(self, data: st.DataObject, states: tuple[str, ...]) -> JobData:
        candidates = self.model.list_jobs(state=list(states), limit=EVERYTHING)
        return data.draw(st.sampled_from(candidates[::-1]), label="job")

    def has(self, *states: str) -> bool:
        return bool(self.model.list_jobs(state=list(states), limit=1))

    # -- enqueueing -------------------------------------------------------------------

    def to_enqueue(self, spec: tuple[NewJobData, timedelta | None]) -> NewJobData:
        job, available_in = spec
        if available_in is None:
            return job
        return replace(job, available_at=self.clock() + available_in)

    @rule(target=jobs, spec=new_jobs())
    def create_job(self, spec: tuple[NewJobData, timedelta | None]) -> Any:
        job = self.to_enqueue(spec)
        what = f"create_new_job({job!r})"
        try:
            actual, expected = self.both(what, lambda b: b.create_new_job(job), lambda m: m.create_new_job(job))
        except Raised:
            return multiple()
        self.adopt([actual], [expected], what)
        return expected.id

    @rule(target=jobs, specs=st.lists(new_jobs(), max_size=5))
    def create_jobs(self, specs: list[tuple[NewJobData, timedelta | None]]) -> Any:
        batch = [self.to_enqueue(spec) for spec in specs]
        what = f"create_new_jobs({batch!r})"
        try:
            actual, expected = self.both(what, lambda b: b.create_new_jobs(batch), lambda m: m.create_new_jobs(batch))
        except Raised:
            return multiple()
        self.adopt(actual, expected, what)
        return multiple(*(job.id for job in expected))

    @rule(
        bad=st.sampled_from([
            {"queue": "q" * 256}, {"script": "nul\x00"}, {"args": [float("nan")]}, {"args": None},
            {"constructor_args": {"k": float("inf")}}, {"max_attempts": 2**31}, {"max_attempts": True},
            {"available_at": datetime(2030, 1, 1)}, {"available_at": "2030-01-01T00:00:00Z"},
            {"uniqueness_config": ("not", "json")}, {"args": {1: "key"}},
        ]),
        in_batch=st.booleans(),
    )  # fmt: skip
    def create_invalid_job(self, bad: dict[str, Any], in_batch: bool) -> None:
        job = replace(NewJobData(queue="default", script="s.js", job_class="Echo", unique_digest="d1"), **bad)

        def call(side: Any) -> Any:
            return side.create_new_jobs([NewJobData("default", "s.js", "Echo"), job]) if in_batch else side.create_new_job(job)

        try:
            result = self.both(f"enqueue {bad!r}", call, call)
        except Raised:
            return
        raise AssertionError(f"enqueueing {bad!r} was accepted by both: {result!r}")

    # -- claiming and the transitions a worker makes ------------------------------------

    @rule(data=st.data(), quantity=st.integers(1, 4) | st.just(100))
    def claim(self, data: st.DataObject, quantity: int) -> None:
        waiting = sorted({job.queue for job in self.model.list_jobs(state="waiting", limit=EVERYTHING)})
        names = st.sampled_from(waiting) | st.sampled_from(QUEUES) if waiting else st.sampled_from(QUEUES)
        queue = data.draw(names, label="queue")
        what = f"claim_pending_job({queue!r}, {quantity})"
        actual, expected = self.both(
            what, lambda b: b.claim_pending_job(queue, quantity), lambda m: m.claim_pending_job(queue, quantity)
        )
        self.touched.update(job.id for job in expected)
        self.check_jobs(what, actual, expected)

    @precondition(lambda self: self.has("claimed"))
    @rule(data=st.data(), checked=st.booleans())
    def start(self, data: st.DataObject, checked: bool) -> None:
        job = self.pick(data, ("claimed",))
        self.step(job, checked, state="running", attempted_at=self.clock(), attempt=job.attempt + 1)

    @precondition(lambda self: self.has("running"))
    @rule(data=st.data(), result=json_values, checked=st.booleans())
    def complete(self, data: st.DataObject, result: Any, checked: bool) -> None:
        job = self.pick(data, ("running",))
        self.step(job, checked, state="completed", completed_at=self.clock(), result=result)

    @precondition(lambda self: self.has("running"))
    @rule(data=st.data(), errors=json_values, checked=st.booleans())
    def fail(self, data: st.DataObject, errors: Any, checked: bool) -> None:
        job = self.pick(data, ("running",))
        self.step(job, checked, state="failed", failed_at=self.clock(), errors=errors)

    @precondition(lambda self: self.has("running"))
    @rule(data=st.data(), errors=json_values, delay=offsets, checked=st.booleans())
    def retry(self, data: st.DataObject, errors: Any, delay: timedelta, checked: bool) -> None:
        job = self.pick(data, ("running",))
        self.step(job, checked, state="waiting", available_at=self.clock() + abs(delay), errors=errors)

    @precondition(lambda self: self.has("waiting", "claimed", "running"))
    @rule(data=st.data(), checked=st.booleans())
    def cancel(self, data: st.DataObject, checked: bool) -> None:
        job = self.pick(data, ("waiting", "claimed", "running"))
        self.step(job, checked, state="canceled", canceled_at=self.clock())

    @precondition(lambda self: self.has("claimed", "running"))
    @rule(data=st.data(), checked=st.booleans())
    def release(self, data: st.DataObject, checked: bool) -> None:
        job = self.pick(data, ("claimed", "running"))
        self.step(job, checked, state="waiting", claimed_at=None, claimed_by=None)

    @precondition(lambda self: self.has(*FINISHED_STATES))
    @rule(data=st.data(), checked=st.booleans())
    def rerun(self, data: st.DataObject, checked: bool) -> None:
        job = self.pick(data, FINISHED_STATES)
        finished = {"completed_at": None, "failed_at": None, "canceled_at": None}
        self.step(job, checked, state="waiting", available_at=self.clock(), **finished)

    @rule(
        picked=st.lists(jobs, max_size=4, unique=True),
        data=st.data(),
        claimed_by=st.sampled_from([None, "contract-worker", "another-worker"]),
        attempt=st.none() | st.integers(0, 2),
        result=json_values,
    )
    def transition(
        self, picked: list[int], data: st.DataObject, claimed_by: str | None, attempt: int | None, result: Any
    ) -> None:
        """Checked changes of several jobs at once, some expecting what no longer holds."""
        now = self.clock()
        present = [job.state for job in map(self.model.get_job, picked) if job is not None]
        expect_state = data.draw(st.sampled_from(present or JOB_STATES) | st.sampled_from(JOB_STATES), label="state")
        outcomes = [
            {"state": "completed", "completed_at": now, "result": result},
            {"state": "running", "attempted_at": now, "attempt": (attempt or 0) + 1},
            {"state": "waiting", "available_at": now, "claimed_by": None, "claimed_at": None},
        ]
        changes = [data.draw(st.sampled_from(outcomes), label=f"changes of job {job}") for job in picked]
        with_ids = [(self.backend_job_id(job), job) for job in picked]

        def batch(ids: list[int]) -> list[JobTransition]:
            return [
                JobTransition(job_id, expect_state, change, expect_claimed_by=claimed_by, expect_attempt=attempt)
                for job_id, change in zip(ids, changes)
            ]

        what = f"transition_jobs({batch([backend_id for backend_id, _ in with_ids])})"
        try:
            actual, expected = self.both(
                what,
                lambda b: b.transition_jobs(batch([backend_id for backend_id, _ in with_ids])),
                lambda m: m.transition_jobs(batch(picked)),
            )
        except Raised:
            return
        self.touched.update(picked)
        assert len(actual) == len(expected), f"{what}: {len(actual)} results, model {len(expected)}"
        for got, want in zip(actual, expected):
            self.check_job(what, got, want)

    @rule(job=jobs, data=st.data())
    def change_fields(self, job: int, data: st.DataObject) -> None:
        self.update(job, **data.draw(job_changes(self.clock()), label="changes"))

    @rule(job=jobs, field=st.sampled_from(JSON_FIELDS), shape=st.sampled_from(SHAPES), beyond=st.sampled_from([0, 1]))
    def set_a_deep_document(self, job: int, field: str, shape: Any, beyond: int) -> None:
        """A document as deep as the backend declares it takes (``max_json_depth``), or one
        level deeper, which both sides refuse."""
        self.update(job, **{field: nested(self.backend.max_json_depth + beyond, shape)})

    @rule(job=jobs, bad=st.sampled_from([{"id": 1}, {"class": "X"}, {"state": "done"}, {"nope": 1},
                                         {"attempted_at": datetime(2030, 1, 1)}, {"args": None}]))  # fmt: skip
    def change_fields_wrongly(self, job: int, bad: dict[str, Any]) -> None:
        self.update(job, **bad)

    @rule(missing=missing_ids, changes=st.sampled_from([{}, {"state": "running"}]), checked=st.booleans())
    def update_missing_job(self, missing: int, changes: dict[str, Any], checked: bool) -> None:
        operation = "transition_job" if checked else "update_job"
        arguments = {"expect_state": "waiting", **changes} if checked else changes
        try:
            self.both(f"{operation}({missing}, **{arguments})", lambda b: getattr(b, operation)(missing, **arguments),
                      lambda m: getattr(m, operation)(missing, **arguments))  # fmt: skip
        except Raised:
            return
        raise AssertionError(f"{operation}({missing}) found a job")

    @rule(job=jobs, data=st.data(), holds=st.booleans())
    def transition(self, job: int, data: st.DataObject, holds: bool) -> None:
        """Any change, checked against a precondition that holds or, in one of its parts, does not."""
        precondition = preconditions(self.model.get_job(job), holds, self.backend.worker_name)
        expected = data.draw(precondition, label="precondition")
        self.write_job("transition_job", job, {**expected, **data.draw(job_changes(self.clock()), label="changes")})

    @rule(job=jobs, bad=st.sampled_from([{"expect_state": "done"}, {"expect_state": None}, {"expect_state": 1},
                                         {"expect_state": "waiting", "expect_claimed_by": 5},
                                         {"expect_state": "running", "expect_attempt": "1"},
                                         {"expect_state": "waiting", "state": "done"},
                                         {"expect_state": "waiting", "class": "X"}]))  # fmt: skip
    def transition_wrongly(self, job: int, bad: dict[str, Any]) -> None:
        self.write_job("transition_job", job, bad)

    # -- queues -------------------------------------------------------------------------

    @rule(
        target=queues,
        name=st.sampled_from(QUEUES),
        concurrency=st.integers(0, 20),
        priority=st.integers(-3, 3),
        state=st.sampled_from(["active", "paused"]),
    )
    def create_queue(self, name: str, concurrency: int, priority: int, state: str) -> str:
        what = f"create_new_queue({name!r}, concurrency={concurrency}, priority={priority}, state={state!r})"
        options = {"concurrency": concurrency, "priority": priority, "state": state}
        try:
            actual, expected = self.both(
                what, lambda b: b.create_new_queue(name, **options), lambda m: m.create_new_queue(name, **options)
            )
        except Raised:
            return name
        self.backend_queue_ids[expected.id] = actual.id
        note(f"model queue {expected.id} is backend queue {actual.id}")
        self.check_queues(what, [actual], [expected])
        return name

    @rule(name=queues, changes=queue_changes)
    def update_queue(self, name: str, changes: dict[str, Any]) -> None:
        queue = self.model.get_queue(name)
        model_id, backend_id = (queue.id, self.backend_queue_ids[queue.id]) if queue else (-1, -1)
        what = f"update_queue({backend_id}, **{changes!r}) (queue {name!r})"
        try:
            actual, expected = self.both(
                what, lambda b: b.update_queue(backend_id, **changes), lambda m: m.update_queue(model_id, **changes)
            )
        except Raised:
            return
        self.check_queues(what, [actual], [expected])

    @rule(name=st.sampled_from(QUEUES))
    @reads
    def get_queue(self, name: str) -> None:
        actual, expected = self.both(f"get_queue({name!r})", lambda b: b.get_queue(name), lambda m: m.get_queue(name))
        self.check_queues(f"get_queue({name!r})", [actual] if actual else [], [expected] if expected else [])

    @rule()
    @reads
    def get_queues_from_jobs(self) -> None:
        actual, expected = self.both(
            "get_queues_from_jobs()", lambda b: b.get_queues_from_jobs(), lambda m: m.get_queues_from_jobs()
        )
        # In the database's collation, which the contract leaves open.
        assert sorted(actual) == expected, f"get_queues_from_jobs(): backend {actual}, model {expected}"

    @rule(
        order_by=st.sampled_from(["id", "name", "concurrency", "state", "priority", "nope"]),
        order=st.sampled_from(["asc", "desc", "up"]),
    )
    @reads
    def list_queues(self, order_by: str, order: str) -> None:
        what = f"list_queues({order_by!r}, {order!r})"
        try:
            actual, expected = self.both(
                what, lambda b: b.list_queues(order_by, order), lambda m: m.list_queues(order_by, order)
            )
        except Raised:
            return
        if order_by == "name":
            # How names sort is the database's collation, which the contract leaves open.
            actual, expected = sorted(actual, key=lambda q: q.id), sorted(expected, key=lambda q: q.id)
        self.check_queues(what, actual, expected)

    # -- time and cleanup -----------------------------------------------------------------

    @rule(step=clock_steps)
    def advance_clock(self, step: timedelta) -> None:
        self.unchecked = True
        note(f"now is {self.clock.advance(step).isoformat()}")

    @rule(before_now=offsets)
    def delete_finished_jobs(self, before_now: timedelta) -> None:
        cutoff = self.clock() + before_now
        known = {job.id for job in self.model.list_jobs(limit=EVERYTHING)}
        what = f"delete_finished_jobs({cutoff.isoformat()})"
        actual, expected = self.both(
            what, lambda b: b.delete_finished_jobs(cutoff), lambda m: m.delete_finished_jobs(cutoff)
        )
        assert actual == expected, f"{what}: backend deleted {actual}, model {expected}"
        self.touched |= known - {job.id for job in self.model.list_jobs(limit=EVERYTHING)}

    @rule()
    def truncate(self) -> None:
        self.touched |= {job.id for job in self.model.list_jobs(limit=EVERYTHING)}
        self.both("truncate()", lambda b: b.truncate(), lambda m: m.truncate())

    # -- queries with drawn arguments --------------------------------------------------------

    @rule(job=jobs)
    @reads
    def get_job(self, job: int) -> None:
        backend_id = self.backend_job_id(job)
        what = f"get_job({backend_id}) (model job {job})"
        actual, expected = self.both(what, lambda b: b.get_job(backend_id), lambda m: m.get_job(job))
        self.check_job(what, actual, expected)

    @rule(missing=missing_ids)
    @reads
    def get_missing_job(self, missing: int) -> None:
        actual, _ = self.both(f"get_job({missing})", lambda b: b.get_job(missing), lambda m: m.get_job(missing))
        assert actual is None, f"get_job({missing}) returned {actual!r}"

    @rule(
        data=st.data(),
        queue=queue_filters,
        job_class=class_filters,
        state=state_filters,
        limit=st.sampled_from([EVERYTHING, 50, 3, 1, 0, -1]),
        offset=st.sampled_from([0, 0, 1, 4, -1]),
        since=st.none() | offsets,
        until=st.none() | offsets,
    )
    @reads
    def list_jobs(self, data: st.DataObject, queue: Any, job_class: Any, state: Any, limit: int, offset: int,
                  since: timedelta | None, until: timedelta | None) -> None:  # fmt: skip
        existing = [job.args for job in self.model.list_jobs(limit=EVERYTHING)]
        documents = st.sampled_from(TRICKY_ARGS) | (st.sampled_from(existing) if existing else json_values)
        args = data.draw(st.none() | documents, label="args")
        now = self.clock()
        filters = {
            "queue": queue,
            "job_class": job_class,
            "state": state,
            "limit": limit,
            "offset": offset,
            "args": args,
            "since": None if since is None else now + since,
            "until": None if until is None else now + until,
        }
        self.compare_lists(filters)

    @rule(since=st.none() | offsets, until=st.none() | offsets)
    @reads
    def count_jobs(self, since: timedelta | None, until: timedelta | None) -> None:
        now = self.clock()
        bounds = {"since": None if since is None else now + since, "until": None if until is None else now + until}
        what = f"count_jobs(**{bounds!r})"
        actual, expected = self.both(what, lambda b: b.count_jobs(**bounds), lambda m: m.count_jobs(**bounds))
        assert actual == expected, f"{what}: backend {actual}, model {expected}"

    @rule(time_range=time_ranges)
    @reads
    def count_jobs_over_time(self, time_range: str) -> None:
        try:
            self.compare_time_series(time_range)
        except Raised:
            pass

    @rule(max_stale_ms=stale_thresholds, max_claimed_ms=stale_thresholds)
    @reads
    def stale_jobs(self, max_stale_ms: int, max_claimed_ms: int) -> None:
        self.compare_stale(max_stale_ms, max_claimed_ms)

    @rule(names=wait_queue_lists, timeout=wait_timeouts)
    @reads
    def wait_for_jobs(self, names: Any, timeout: Any) -> None:
        what = f"wait_for_jobs({names!r}, {timeout!r})"
        try:
            actual, expected = self.both(
                what, lambda b: b.wait_for_jobs(names, timeout), lambda m: m.wait_for_jobs(names, timeout)
            )
        except Raised:
            return
        assert actual == expected, f"{what}: backend {actual}, model {expected}"

    def compare_lists(self, filters: dict[str, Any]) -> None:
        what = f"list_jobs(**{filters!r})"
        try:
            actual, expected = self.both(what, lambda b: b.list_jobs(**filters), lambda m: m.list_jobs(**filters))
        except Raised:
            return
        self.check_jobs(what, actual, expected)

    def compare_time_series(self, time_range: str) -> None:
        what = f"count_jobs_over_time({time_range!r})"
        actual, expected = self.both(
            what, lambda b: b.count_jobs_over_time(time_range), lambda m: m.count_jobs_over_time(time_range)
        )
        assert actual == expected, f"{what}:\n  backend {actual}\n  model   {expected}"
        assert all(bucket.timestamp.utcoffset() == timedelta(0) for bucket in actual), f"{what}: not in UTC"

    def compare_stale(self, max_stale_ms: int, max_claimed_ms: int) -> None:
        what = f"stale_jobs({max_stale_ms}, {max_claimed_ms})"
        actual, expected = self.both(
            what,
            lambda b: b.stale_jobs(max_stale_ms, max_claimed_ms),
            lambda m: m.stale_jobs(max_stale_ms, max_claimed_ms),
        )
        # The contract gives no order for stale jobs.
        self.check_jobs(what, sorted(actual, key=lambda job: job.id), expected)

    # -- after every step that may have changed something -----------------------------------

    @precondition(lambda self: self.unchecked)
    @invariant()
    def backend_agrees_with_model(self) -> None:
        """Everything both sides report, compared; skipped after a step that only read."""
        self.compare_lists({"limit": EVERYTHING})
        for job in sorted(self.touched):
            backend_id = self.backend_job_id(job)
            what = f"get_job({backend_id}) (model job {job})"
            self.check_job(what, self.backend.get_job(backend_id), self.model.get_job(job))
        self.touched.clear()
        now = self.clock()
        self.checks += 1
        # One filter a run, in turn: each is checked every few steps at a quarter of the cost.
        filters = [
            {"queue": CHECKED_QUEUE_PATTERNS[self.checks // 4 % len(CHECKED_QUEUE_PATTERNS)]},
            {"job_class": "Send\\_Mail", "state": ["waiting", "claimed", "running"], "limit": 3, "offset": 1},
            {"args": TRICKY_ARGS[self.checks // 4 % len(TRICKY_ARGS)]},
            {"since": now - timedelta(hours=1), "until": now},
        ][self.checks % 4]
        self.compare_lists({"limit": EVERYTHING, **filters})
        for bounds in ({}, {"since": now - timedelta(days=1), "until": now - timedelta(minutes=5)}):
            actual, expected = self.backend.count_jobs(**bounds), self.model.count_jobs(**bounds)
            assert actual == expected, f"count_jobs(**{bounds!r}): backend {actual}, model {expected}"
        actual_by_queue, expected_by_queue = self.backend.count_jobs_by_queues(), self.model.count_jobs_by_queues()
        assert actual_by_queue == expected_by_queue, (
            f"count_jobs_by_queues():\n  backend {actual_by_queue}\n  model   {expected_by_queue}"
        )
        for time_range in ("5m", "3h", "2d"):
            self.compare_time_series(time_range)
        for max_stale_ms, max_claimed_ms in ((600_000, 60_000), (-1, -1)):
            self.compare_stale(max_stale_ms, max_claimed_ms)
        self.unchecked = False


def test_backend_behaves_like_the_model(
    backend: SQLBackend, sidequest_clock: ManualClock, sidequest_settings: settings
) -> None:
    run_state_machine_as_test(
        lambda: SidequestStateMachine(backend, sidequest_clock), settings=sidequest_settings
    )


def test_model_passes_its_own_machine(sidequest_clock: ManualClock, sidequest_settings: settings) -> None:
    """The model in the backend's place: the machine's expectations hold for the model too."""
    model = ModelBackend(clock=sidequest_clock, worker_name="contract-worker")
    run_state_machine_as_test(
        lambda: SidequestStateMachine(model, sidequest_clock), settings=sidequest_settings
    )
