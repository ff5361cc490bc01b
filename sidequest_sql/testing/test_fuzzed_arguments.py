"""Every argument of every operation, fuzzed one at a time beside the model.

For each public operation and each of its arguments, Hypothesis draws a
value from a pool of wrong types, ranges and shapes — None, bools, floats,
NaN and infinities, bytes, containers, enum members and other subclasses,
naive and far-off datetimes, NUL characters, lone surrogates, empty and
over-long text, SQL and pattern meta-characters — while the other arguments
stay valid. The call runs on the backend and on ``ModelBackend`` (the
contract as plain Python), both holding the same queues and jobs. Either
both refuse it with the same documented error (``ValueError`` or
``TypeError`` naming the argument, or a ``SidequestError``) and the database
is exactly as it was, or both accept it, answer alike and are left alike.

``create_backend``'s own arguments are fuzzed the same way, and one job
carries a 10 MB payload.
"""

from __future__ import annotations

import math
import sys
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from fractions import Fraction
from pathlib import PurePosixPath
from typing import Any

import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from sidequest_sql import (
    JobData,
    JobTransition,
    NewJobData,
    QueueConfig,
    SidequestError,
    UnsupportedDatabaseError,
)
from sidequest_sql.base import SQLBackend
from sidequest_sql.hooks import DialectHooks
from sidequest_sql.testing.backends import BackendFactory
from sidequest_sql.testing.clock import START, ManualClock
from sidequest_sql.testing.documents import nested
from sidequest_sql.testing.fixtures import backend  # noqa: F401  (the suite's fixture)
from sidequest_sql.testing.model import ModelBackend
from sidequest_sql.testing.test_bad_input import HOSTILE, json_ish, snapshot

# -- values no caller should pass, and some every caller may ---------------------------------


class Code(int):
    """An int whose text is not its digits, as some wrappers of ids have."""

    def __str__(self) -> str:
        return f"Code {int(self)}"

    __repr__ = __str__


class Level(IntEnum):
    LOW = 1
    TOP = 2**31 - 1


class Colour(str, Enum):
    """A str mixin enum: its value is ``"active"``, its ``str()`` is ``"Colour.ACTIVE"``."""

    ACTIVE = "active"
    RUNNING = "running"


class Shout(str):
    def __str__(self) -> str:
        return self.upper()


class IsoTime(datetime):
    """A datetime whose text is ISO 8601 with a ``T``, as pendulum's and arrow's are."""

    def __str__(self) -> str:
        return self.isoformat()


class Ratio(float):
    def __repr__(self) -> str:
        return "a ratio"


class Tags(list[Any]):
    pass


class Mapping(dict[str, Any]):
    pass


@dataclass(frozen=True)
class AtDepthLimit:
    """A document as deep as the backend's ``max_json_depth``, plus ``beyond`` levels
    (its innermost an empty list), under a key of an object if ``under_key``."""

    beyond: int
    under_key: bool = False

    def make(self, limit: int) -> Any:
        if self.under_key:
            return {"k": nested(limit + self.beyond - 2, leaf=[])}
        return nested(limit + self.beyond - 1, leaf=[])


NAIVE = datetime(2030, 1, 1, 12, 0)
AWARE = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
ODD_OFFSET = timezone(timedelta(hours=5, minutes=30, seconds=15, microseconds=7))

WRONG_TYPES: list[Any] = [
    None,
    True,
    False,
    1.5,
    -0.0,
    math.nan,
    math.inf,
    -math.inf,
    b"default",
    bytearray(b"x"),
    [],
    ["default"],
    {},
    {"name": "default"},
    (),
    ("default",),
    {1},
    frozenset({"x"}),
    object(),
    Decimal("1"),
    Decimal("NaN"),
    Fraction(1, 3),
    1j,
    date(2030, 1, 1),
    time(12),
    timedelta(hours=1),
    NAIVE,
    AWARE,
    uuid.UUID(int=1),
    PurePosixPath("default"),
    Ellipsis,
    int,
    print,
    range(3),
    Ratio(2.0),
]

NUMBERS: list[Any] = [
    0,
    1,
    -1,
    2,
    2**31 - 1,
    2**31,
    -(2**31),
    -(2**31) - 1,
    2**53,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    10**30,
    Code(3),
    Code(-5),
    Level.LOW,
    Level.TOP,
]

TEXTS: list[Any] = [
    *HOSTILE,
    "",
    "default",
    "other",
    "held",
    "claims",
    "a\x00b",
    "\x00",
    "\ud800",
    "a\udfff",
    "n" * 256,
    "n" * 10_000,
    "x\\",
    Colour.ACTIVE,
    Shout("quiet"),
]

TIMES: list[Any] = [
    NAIVE,
    AWARE,
    datetime(1, 1, 1, tzinfo=UTC),
    datetime.max.replace(tzinfo=UTC),
    # Aware, but no UTC instant: before year 1 or after 9999 once converted.
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone(-timedelta(hours=1))),
    datetime(2030, 1, 15, 12, 30, 45, 123_456, tzinfo=ODD_OFFSET),
    datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=23, minutes=59))),
    IsoTime(2030, 1, 16, 12, 0, tzinfo=UTC),
    IsoTime(2000, 1, 1),
    "2030-01-01T00:00:00Z",
    0,
    1.9e9,
]

JSON_VALUES: list[Any] = [
    int(sys.float_info.max),
    int(sys.float_info.max) + 1,
    -(10**400),
    10**4000,
    2**64,
    5e-324,
    -0.0,
    "\\u0000",
    "\x00",
    {"\x00": 1},
    {1: "one"},
    {None: 1},
    {("t",): 1},
    {True: 1},
    AtDepthLimit(0),
    AtDepthLimit(1),
    AtDepthLimit(0, under_key=True),
    AtDepthLimit(1, under_key=True),
    Decimal("1.5"),
    (1, 2),
    [datetime(2030, 1, 1, tzinfo=UTC)],
    b"{}",
    Colour.ACTIVE,
    Code(5),
    Level.TOP,
    Ratio(0.5),
    Tags([1, "two"]),
    Mapping(a=1),
    OrderedDict(b=2, a=1),
    defaultdict(list, k=[1]),
    '"}; DROP TABLE sidequest_jobs; --',
    {"$where": "1 == 1", "'; --": "'"},
]


def with_wrong_types(*values: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from([*values, *WRONG_TYPES])


text_values = st.one_of(
    with_wrong_types(*TEXTS),
    st.text(max_size=20),
    st.text(st.sampled_from(["a", "%", "_", "\\", "'", '"', ";", "\x00", "\ud800", " "]), max_size=6),
)
int_values = st.one_of(with_wrong_types(*NUMBERS), st.integers(), st.integers(-(2**70), 2**70))
time_values = st.one_of(
    with_wrong_types(*TIMES),
    st.datetimes(
        timezones=st.none()
        | st.just(UTC)
        | st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)))
    ),
)
json_values = st.one_of(with_wrong_types(*JSON_VALUES), json_ish)
queue_states = with_wrong_types("active", "paused", "Active", "running", "", *TEXTS[:6])
job_states = with_wrong_types(
    "waiting", "claimed", "running", "completed", "failed", "canceled", "WAITING", "active", "", *TEXTS[:6]
)


@dataclass(frozen=True)
class Fresh:
    """A value each store gets its own of (an iterator is used up by the first)."""

    make: Callable[[], Any]

    def __repr__(self) -> str:
        return repr(self.make())


@dataclass(frozen=True)
class Ref:
    """An existing row, by the label it was seeded under; each store knows its own id."""

    label: str
    wrap: type[int] = int


def id_values(*labels: str) -> st.SearchStrategy[Any]:
    """Ids no store has (never small positive ones, which one store may have and not the other),
    existing ones, also as an int subclass, and wrong types."""
    refs = [Ref(label) for label in labels] + [Ref(label, Code) for label in labels]
    missing = [0, -1, 2**40, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**30]
    return st.one_of(
        st.sampled_from(refs),
        with_wrong_types(*missing),
        st.integers(max_value=0),
        st.integers(min_value=2**40),
    )


# -- the operations and their arguments --------------------------------------------------------


def job(queue: str = "default", **changes: Any) -> NewJobData:
    return NewJobData(queue=queue, script="jobs.js", job_class="Echo", **changes)


Resolve = Callable[[Any], Any]
Invoke = Callable[[Any, Resolve, Any], object]


@dataclass(frozen=True)
class Argument:
    """One argument of one operation: where a hostile value goes, and the word its refusal names."""

    operation: str
    name: str
    values: st.SearchStrategy[Any]
    invoke: Invoke

    def word(self, value: Any) -> str:
        return str(value) if self.name == "**changes" else self.name

    def __repr__(self) -> str:
        return f"{self.operation}({self.name})"


NEW_JOB_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "queue": text_values,
    "script": text_values,
    "job_class": text_values,
    "args": json_values,
    "constructor_args": json_values,
    "max_attempts": int_values,
    "available_at": time_values,
    "timeout": int_values,
    "unique_digest": text_values,
    "uniqueness_config": json_values,
    "retry_delay": int_values,
    "backoff_strategy": text_values,
}
UPDATE_JOB_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **{name: NEW_JOB_VALUES[name] for name in ("queue", "script", "job_class", "args", "constructor_args")},
    **{name: NEW_JOB_VALUES[name] for name in ("unique_digest", "uniqueness_config", "backoff_strategy")},
    **{name: int_values for name in ("attempt", "max_attempts", "timeout", "retry_delay")},
    **{name: json_values for name in ("result", "errors")},
    **{name: time_values for name in ("inserted_at", "attempted_at", "available_at", "completed_at")},
    **{name: time_values for name in ("failed_at", "canceled_at", "claimed_at")},
    "claimed_by": text_values,
    "state": job_states,
}
QUEUE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": text_values,
    "concurrency": int_values,
    "priority": int_values,
    "state": queue_states,
}
FIELD_NAMES = with_wrong_types(
    "id", "class", "bogus", "", "ID", "Queue", "job_class ", "name; DROP TABLE sidequest_jobs", "__class__"
).filter(lambda name: isinstance(name, str))
JOB_IDS = id_values("waiting", "held", "completed", "running", "claimed")
QUEUE_IDS = id_values("queue:default", "queue:other")
filter_values = st.one_of(
    text_values,
    st.lists(text_values, max_size=3),
    st.lists(text_values, max_size=3).map(tuple),
    st.just(Fresh(lambda: (name for name in ["default"]))),
)

queue_lists = st.one_of(
    with_wrong_types("default", ["default", "other", "default"]),
    st.lists(text_values, max_size=3),
    st.lists(text_values, max_size=3).map(tuple),
    st.just(Fresh(lambda: (name for name in ["default"]))),
)
second_values = st.one_of(with_wrong_types(*NUMBERS, 0.001, -0.5, 1e308, 10**400), st.floats())


def queue_arguments() -> list[Argument]:
    found = [
        Argument("create_new_queue", "name", text_values, lambda s, r, v: s.create_new_queue(v)),
        Argument("get_queue", "name", text_values, lambda s, r, v: s.get_queue(v)),
        Argument("list_queues", "order_by", with_wrong_types(*TEXTS[:8], "name", "NAME", "id", "priority"),
                 lambda s, r, v: s.list_queues(order_by=v)),
        Argument("list_queues", "order", with_wrong_types(*TEXTS[:8], "asc", "desc", "ASC", "descending"),
                 lambda s, r, v: s.list_queues(order=v)),
        Argument("update_queue", "queue_id", QUEUE_IDS, lambda s, r, v: s.update_queue(r(v), priority=3)),
        Argument("update_queue", "**changes", FIELD_NAMES, lambda s, r, v: s.update_queue(r(Ref("queue:default")), **{v: 1})),
    ]
    for name, values in QUEUE_VALUES.items():
        if name != "name":
            found.append(Argument("create_new_queue", name, values,
                                  lambda s, r, v, name=name: s.create_new_queue("fresh", **{name: v})))
        found.append(Argument("update_queue", name, values,
                              lambda s, r, v, name=name: s.update_queue(r(Ref("queue:default")), **{name: v})))
    return found


def job_arguments() -> list[Argument]:
    some_jobs = st.one_of(
        with_wrong_types("jobs", job()),
        st.just(Fresh(lambda: (item for item in [job(), job("other")]))),
        st.just(Fresh(lambda: {"a": job()})),
    )
    found = [
        Argument("get_job", "job_id", JOB_IDS, lambda s, r, v: s.get_job(r(v))),
        Argument("create_new_job", "job", with_wrong_types({"queue": "q", "script": "s", "job_class": "c"}),
                 lambda s, r, v: s.create_new_job(v)),
        Argument("create_new_jobs", "jobs", some_jobs, lambda s, r, v: s.create_new_jobs(v)),
        Argument("create_new_jobs", "jobs[1]", with_wrong_types("job"), lambda s, r, v: s.create_new_jobs([job(), v])),
        Argument("create_new_jobs", "unique_digest", text_values,
                 lambda s, r, v: s.create_new_jobs([job(unique_digest=v), job("other", unique_digest=v)])),
        Argument("claim_pending_job", "queue", text_values, lambda s, r, v: s.claim_pending_job(v)),
        Argument("claim_pending_job", "quantity", int_values, lambda s, r, v: s.claim_pending_job("default", v)),
        Argument("update_job", "job_id", JOB_IDS, lambda s, r, v: s.update_job(r(v), state="running")),
        Argument("update_job", "**changes", FIELD_NAMES, lambda s, r, v: s.update_job(r(Ref("waiting")), **{v: 1})),
    ]
    for name, values in NEW_JOB_VALUES.items():
        found.append(Argument("create_new_job", name, values,
                              lambda s, r, v, name=name: s.create_new_job(job(**{name: v}))))
        found.append(Argument("create_new_jobs", name, values,
                              lambda s, r, v, name=name: s.create_new_jobs([job("other"), job(**{name: v})])))
    for name, values in UPDATE_JOB_VALUES.items():
        found.append(Argument("update_job", name, values,
                              lambda s, r, v, name=name: s.update_job(r(Ref("waiting")), **{name: v})))
    return found + transition_arguments() + batch_transition_arguments()


def batch_transition_arguments() -> list[Argument]:
    """``transition_jobs``: the list itself, and each field of one of its ``JobTransition``s."""

    def batch(s: Any, r: Resolve, **fields: Any) -> object:
        item = {"job_id": r(Ref("running")), "expect_state": "running", "changes": {"state": "completed"}, **fields}
        return s.transition_jobs([JobTransition(**item)])

    found = [
        Argument("transition_jobs", "transitions", with_wrong_types([]), lambda s, r, v: s.transition_jobs(v)),
        Argument("transition_jobs", "transitions[0]", with_wrong_types("job"), lambda s, r, v: s.transition_jobs([v])),
        Argument("transition_jobs", "job_id", JOB_IDS, lambda s, r, v: batch(s, r, job_id=r(v))),
        Argument("transition_jobs", "expect_state", job_states, lambda s, r, v: batch(s, r, expect_state=v)),
        Argument("transition_jobs", "expect_claimed_by", text_values, lambda s, r, v: batch(s, r, expect_claimed_by=v)),
        Argument("transition_jobs", "expect_attempt", int_values, lambda s, r, v: batch(s, r, expect_attempt=v)),
        Argument("transition_jobs", "**changes", FIELD_NAMES, lambda s, r, v: batch(s, r, changes={v: 1})),
    ]
    for name, values in UPDATE_JOB_VALUES.items():
        found.append(Argument("transition_jobs", name, values,
                              lambda s, r, v, name=name: batch(s, r, changes={name: v})))
    return found


def transition_arguments() -> list[Argument]:
    """``transition_job``: its precondition against the seeded jobs it holds or fails for, and its changes."""
    def on_running(s: Any, r: Resolve, **arguments: Any) -> object:
        return s.transition_job(r(Ref("running")), **{"expect_state": "running", **arguments, "state": "completed"})

    found = [
        Argument("transition_job", "job_id", JOB_IDS,
                 lambda s, r, v: s.transition_job(r(v), expect_state="waiting", state="claimed")),
        Argument("transition_job", "expect_state", job_states, lambda s, r, v: on_running(s, r, expect_state=v)),
        Argument("transition_job", "expect_claimed_by", text_values,
                 lambda s, r, v: s.transition_job(r(Ref("claimed")), expect_state="claimed", expect_claimed_by=v,
                                                  state="waiting")),
        Argument("transition_job", "expect_attempt", int_values, lambda s, r, v: on_running(s, r, expect_attempt=v)),
        Argument("transition_job", "**changes", FIELD_NAMES,
                 lambda s, r, v: s.transition_job(r(Ref("waiting")), expect_state="waiting", **{v: 1})),
    ]
    for name, values in UPDATE_JOB_VALUES.items():
        found.append(Argument("transition_job", name, values,
                              lambda s, r, v, name=name: s.transition_job(r(Ref("waiting")), expect_state="waiting",
                                                                          **{name: v})))
    return found


def reading_arguments() -> list[Argument]:
    found = [
        Argument("list_jobs", "queue", filter_values, lambda s, r, v: s.list_jobs(queue=v)),
        Argument("list_jobs", "job_class", filter_values, lambda s, r, v: s.list_jobs(job_class=v)),
        Argument("list_jobs", "state", st.one_of(filter_values, job_states), lambda s, r, v: s.list_jobs(state=v)),
        Argument("list_jobs", "limit", int_values, lambda s, r, v: s.list_jobs(limit=v)),
        Argument("list_jobs", "offset", int_values, lambda s, r, v: s.list_jobs(offset=v)),
        Argument("list_jobs", "args", json_values, lambda s, r, v: s.list_jobs(args=v)),
        Argument("list_jobs", "since", time_values, lambda s, r, v: s.list_jobs(since=v)),
        Argument("list_jobs", "until", time_values, lambda s, r, v: s.list_jobs(until=v)),
        Argument("count_jobs", "since", time_values, lambda s, r, v: s.count_jobs(since=v)),
        Argument("count_jobs", "until", time_values, lambda s, r, v: s.count_jobs(until=v)),
        Argument("count_jobs_over_time", "time_range",
                 st.one_of(with_wrong_types("12h", "1m", "10000m", "10001m", "0d", "1w", "１h", *TEXTS[:8]),
                           st.from_regex(r"\A[0-9]{1,6}[mhdMs]?\Z")),
                 lambda s, r, v: s.count_jobs_over_time(v)),
        Argument("stale_jobs", "max_stale_ms", int_values, lambda s, r, v: s.stale_jobs(max_stale_ms=v)),
        Argument("stale_jobs", "max_claimed_ms", int_values, lambda s, r, v: s.stale_jobs(max_claimed_ms=v)),
        Argument("delete_finished_jobs", "cutoff", time_values, lambda s, r, v: s.delete_finished_jobs(v)),
        Argument("delete_finished_jobs", "limit", int_values,
                 lambda s, r, v: s.delete_finished_jobs(START + timedelta(days=2), limit=v)),
        # A timeout of 0 looks once; any valid timeout returns at once too, "default" holding a claimable job.
        Argument("wait_for_jobs", "queues", queue_lists, lambda s, r, v: s.wait_for_jobs(v, 0)),
        Argument("wait_for_jobs", "timeout", second_values, lambda s, r, v: s.wait_for_jobs(["default"], v)),
    ]
    return found


# -- one backend beside the model ------------------------------------------------------------


def seed(store: Any, clock: ManualClock) -> dict[str, int]:
    """Queues and jobs in every state a wrong write could change; their ids by label."""
    default = store.create_new_queue("default")
    other = store.create_new_queue("other", concurrency=2, priority=5, state="paused")
    made = store.create_new_jobs(
        [job(args=[1, {"a": "b"}]), job("other", unique_digest="held"), job(), job(), job("claims")]
    )
    ids = {"queue:default": default.id, "queue:other": other.id, "waiting": made[0].id, "held": made[1].id}
    now = clock()
    ids["completed"] = store.update_job(made[2].id, state="completed", completed_at=now, result={"ok": True}).id
    ids["running"] = store.update_job(made[3].id, state="running", attempted_at=now).id
    [claimed] = store.claim_pending_job("claims")
    ids["claimed"] = claimed.id
    return ids


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None


def outcome(call: Callable[[], object]) -> Outcome:
    try:
        return Outcome(value=call())
    except Exception as exc:  # noqa: BLE001 - judged by the caller
        return Outcome(error=exc)


def canonical(value: Any, jobs: dict[int, int], queues: dict[int, int]) -> Any:
    """``value`` with row ids replaced by their rank among the store's rows, JSON
    numbers compared as the contract allows, and ``true`` kept apart from ``1``."""
    if isinstance(value, JobData):
        rest = tuple(canonical(getattr(value, f.name), jobs, queues) for f in fields(value) if f.name != "id")
        return ("job", jobs.get(value.id, "gone"), rest)
    if isinstance(value, QueueConfig):
        rest = tuple(canonical(getattr(value, f.name), jobs, queues) for f in fields(value) if f.name != "id")
        return ("queue", queues.get(value.id, "gone"), rest)
    if is_dataclass(value) and not isinstance(value, type):
        return tuple(canonical(getattr(value, f.name), jobs, queues) for f in fields(value))
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        if abs(value) < 2**53:
            return ("number", value)
        try:
            return ("number", float(value))  # beyond 2**53 only the magnitude is promised
        except OverflowError:
            return ("number", value)
    if isinstance(value, str):
        return ("str", str.__str__(value))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(canonical(item, jobs, queues) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str.__str__(k), canonical(v, jobs, queues)) for k, v in value.items())))
    return value


def ranks(rows: list[Any]) -> dict[int, int]:
    return {row_id: rank for rank, row_id in enumerate(sorted(row.id for row in rows))}


def shown_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions a traceback of it shows (``from None`` hides the rest)."""
    link: BaseException | None = exc
    seen: set[int] = set()
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)


def names(message: str, word: str) -> bool:
    return word in message or repr(word) in message


class BesideTheModel:
    """A backend and a model, seeded alike and reseeded only after a call changed them."""

    def __init__(self, backend: SQLBackend, clock: ManualClock) -> None:
        self.backend = backend
        self.clock = clock
        self.model = ModelBackend(clock=clock, worker_name=backend.worker_name, max_json_depth=backend.max_json_depth)
        self.ids: dict[str, dict[str, int]] = {}
        self.fresh: tuple[list[JobData], list[QueueConfig]] = ([], [])
        self.dirty = True

    def reset(self) -> None:
        if not self.dirty:
            return
        self.backend.truncate()
        self.model.truncate()
        self.clock.set(START)
        self.ids = {"backend": seed(self.backend, self.clock), "model": seed(self.model, self.clock)}
        self.clock.set(START + timedelta(days=1))
        self.fresh = snapshot(self.backend)
        self.dirty = False

    def resolver(self, side: str) -> Resolve:
        ids = self.ids[side]

        def resolve(value: Any) -> Any:
            if isinstance(value, Ref):
                return value.wrap(ids[value.label])
            if isinstance(value, AtDepthLimit):
                return value.make(self.backend.max_json_depth)
            return value.make() if isinstance(value, Fresh) else value

        return resolve

    def run(self, side: str, argument: Argument, value: Any) -> Outcome:
        store = self.backend if side == "backend" else self.model
        resolve = self.resolver(side)
        return outcome(lambda: argument.invoke(store, resolve, resolve(value)))

    def check(self, argument: Argument, value: Any) -> None:
        self.reset()
        note(f"{argument.operation}: {argument.name} = {value!r}")
        before = self.fresh
        got = self.run("backend", argument, value)
        expected = self.run("model", argument, value)
        after = snapshot(self.backend)
        self.dirty = after != before
        if got.error is not None:
            self.check_refusal(got.error, expected, argument.word(value))
            assert after == before, "a refused call changed the database"
            return
        assert expected.error is None, f"the backend accepted what the contract refuses: {expected.error!r}"
        model_after = (self.model.list_jobs(limit=10_000), self.model.list_queues())
        db_ranks = ranks(after[0]), ranks(after[1])
        model_ranks = ranks(model_after[0]), ranks(model_after[1])
        assert canonical(got.value, *db_ranks) == canonical(expected.value, *model_ranks)
        assert canonical(after, *db_ranks) == canonical(model_after, *model_ranks)

    @staticmethod
    def check_refusal(error: BaseException, expected: Outcome, word: str) -> None:
        message = str(error)
        note(f"refused with {type(error).__name__}: {message[:300]}")
        assert isinstance(error, (ValueError, TypeError, SidequestError)), f"undocumented error: {error!r}"
        assert not isinstance(error, UnicodeError), message
        if isinstance(error, (ValueError, TypeError)):
            assert names(message, word), f"{word!r} is not named in {message!r}"
            # Refused before anything was sent: no database error behind it.
            for link in shown_chain(error):
                assert not isinstance(link, SQLAlchemyError), f"a database error escaped: {link!r}"
        assert expected.error is not None, f"the backend refused what the contract accepts: {error!r}"
        assert type(error) is type(expected.error), f"the contract raises {expected.error!r}"


ARGUMENTS = [*queue_arguments(), *job_arguments(), *reading_arguments()]
BY_OPERATION = {
    operation: [argument for argument in ARGUMENTS if argument.operation == operation]
    for operation in dict.fromkeys(argument.operation for argument in ARGUMENTS)
}


class TestEveryArgumentFuzzed:
    def test_refused_as_documented_or_done_as_the_model_does(
        self, backend: SQLBackend, sidequest_clock: ManualClock, sidequest_settings: Any
    ) -> None:
        pair = BesideTheModel(backend, sidequest_clock)

        @sidequest_settings
        @given(data=st.data())
        def fuzz(data: st.DataObject) -> None:
            # Operation first: update_job has two dozen arguments, get_job one.
            operation = data.draw(st.sampled_from(list(BY_OPERATION)), label="operation")
            argument = data.draw(st.sampled_from(BY_OPERATION[operation]), label="argument")
            value = data.draw(argument.values, label=repr(argument))
            pair.check(argument, value)

        fuzz()

    def test_every_operation_and_argument_is_fuzzed(self) -> None:
        public = {
            name
            for name in dir(SQLBackend)
            if not name.startswith("_") and callable(getattr(SQLBackend, name))
        }
        without_arguments = {"get_queues_from_jobs", "count_jobs_by_queues", "truncate", "close"}
        not_operations = {"migrate", "rollback_migration"}
        hooks = {name for name in dir(DialectHooks) if not name.startswith("_")}
        fuzzed = {argument.operation for argument in ARGUMENTS}
        assert public - without_arguments - not_operations - hooks <= fuzzed


# -- create_backend's own arguments ------------------------------------------------------------

SECRET = "Fuzz-S3cret-Pw"


class TestCreateBackendArguments:
    @staticmethod
    def refused_or_built(make: BackendFactory, sidequest_url: str, word: str, **arguments: Any) -> SQLBackend | None:
        note(f"create_backend({sidequest_url!r}, {arguments!r})")
        try:
            made = make(sidequest_url if "url" not in arguments else arguments.pop("url"), **arguments)
        except (ValueError, TypeError, UnsupportedDatabaseError) as exc:
            message = str(exc)
            assert SECRET not in message and SECRET not in repr(exc)
            for link in shown_chain(exc):
                assert not isinstance(link, SQLAlchemyError), f"a database error escaped: {link!r}"
                assert SECRET not in str(link) and SECRET not in repr(link)
            if not isinstance(exc, UnsupportedDatabaseError):
                assert names(message, word), f"{word!r} is not named in {message!r}"
            return None
        assert SECRET not in repr(made)
        return made

    def test_each_argument_is_refused_naming_it_or_builds_a_backend(
        self, sidequest_url: str, sidequest_settings: Any, sidequest_backends: BackendFactory
    ) -> None:
        scheme = sidequest_url.partition(":")[0]
        urls = st.one_of(
            st.sampled_from(
                [
                    "",
                    "::",
                    f"{scheme}:",
                    f"nosuchdb://u:{SECRET}@h/x",
                    f"{scheme}://u:{SECRET}@h:notaport/x",
                    f"{scheme}://u:{SECRET}@[::1/x",
                    f"u:{SECRET}@h/x",
                    f"{scheme}://u:{SECRET}@h/x\x00",
                    f"{scheme}+nosuchdriver://u:{SECRET}@h/x",
                    URL.create("nosuchdb", password=SECRET),
                    5,
                    b"sqlite://",
                    ["sqlite://"],
                    *HOSTILE[:8],
                ]
            ),
            st.text(max_size=30),
            st.text(max_size=30).map(lambda text: f"{scheme}://u:{SECRET}@{text}"),
        )
        arguments = st.one_of(
            st.tuples(st.just("url"), urls),
            st.tuples(st.just("schema"), text_values),
            st.tuples(st.just("worker_name"), text_values),
            st.tuples(st.just("clock"), with_wrong_types(lambda: AWARE)),
            st.tuples(st.sampled_from(["bogus", "sqlite_synchronous"]), with_wrong_types("FULL", "full", "")),
        )

        @sidequest_settings
        @given(argument=arguments)
        def fuzz(argument: tuple[str, Any]) -> None:
            name, value = argument
            made = self.refused_or_built(sidequest_backends, sidequest_url, name, **{name: value})
            if made is not None:
                made.close()

        fuzz()

    @pytest.mark.parametrize(
        ("clock", "error"),
        [
            (lambda: NAIVE, ValueError),
            (lambda: "2030-01-01T00:00:00Z", TypeError),
            (lambda: datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), ValueError),
            (lambda: None, TypeError),
        ],
        ids=["naive", "str", "out-of-range", "None"],
    )
    def test_a_clock_that_gives_no_aware_datetime_is_refused_before_anything_is_written(
        self,
        backend: SQLBackend,
        sidequest_url: str,
        clock: Callable[[], Any],
        error: type[Exception],
        sidequest_backends: BackendFactory,
    ) -> None:
        backend.create_new_queue("default")
        waiting = backend.create_new_job(job())
        before = snapshot(backend)
        with sidequest_backends(sidequest_url, clock=clock) as made:
            for call in (
                lambda: made.create_new_job(job()),
                lambda: made.create_new_jobs([job(), job()]),
                lambda: made.claim_pending_job("default"),
                lambda: made.count_jobs_over_time("1h"),
                lambda: made.stale_jobs(),
            ):
                with pytest.raises(error, match="clock"):
                    call()
        assert snapshot(backend) == before
        assert backend.get_job(waiting.id) == waiting


# -- a large payload ----------------------------------------------------------------------------

# 100 characters: text, quotes, a backslash, pattern characters, a newline. ASCII, since
# PyMySQL escapes non-ASCII text a hundred times slower (smaller values check the rest).
_CHUNK = "sidequest " * 9 + "'\"\\%_\n" + "abcd"
TEN_MB = 10_000_000


def ten_megabytes() -> str:
    return _CHUNK * (TEN_MB // len(_CHUNK.encode()) + 1)


class TestTenMegabytePayload:
    """Every dialect takes a 10 MB payload: MySQL's and MariaDB's max_allowed_packet
    (16 MiB by default) is bigger than the statement, even escaped."""

    def test_round_trips_and_is_found(self, backend: SQLBackend) -> None:
        text = ten_megabytes()
        assert len(text.encode()) >= TEN_MB
        created = backend.create_new_job(job(args=[text]))
        assert created.args == [text]
        assert backend.get_job(created.id) == created
