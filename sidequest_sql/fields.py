"""What each writable field of a job or queue accepts, checked before any write.

The limits are those of the strictest supported database (Postgres
``varchar(255)`` and ``integer``), applied on every dialect so that a value is
accepted or refused the same way everywhere; only how deep a JSON payload may
nest is each dialect's own (``max_json_depth``, which the checks are given).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .jsonvalues import check_json_fully, check_storable_text, plain_json
from .records import JOB_STATES, QUEUE_STATES, JobTransition

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
NAME_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Field:
    kind: Literal["text", "int", "time", "json"]
    nullable: bool = False
    max_length: int | None = None
    minimum: int = INT_MIN
    choices: tuple[str, ...] = ()
    plainly_fine: Callable[[Any], bool] = field(init=False, repr=False, compare=False)
    """A quick yes for the values nearly every call passes (plain ASCII text,
    an int in range, a UTC datetime, a flat list of plain scalars); anything
    else takes the full checks of ``check``, which say what is wrong."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "plainly_fine", _quick_check(self))

    def check(self, value: Any, name: str, max_json_depth: int) -> None:
        if value is None:
            if not self.nullable:
                raise ValueError(f"{name} cannot be None")
            return
        if not self.plainly_fine(value):
            self.check_fully(value, name, max_json_depth)

    def check_fully(self, value: Any, name: str, max_json_depth: int) -> None:
        """The checks of a value other than None, without the quick yes
        (``check`` and ``check_changes`` give None and the quick yes their turn first)."""
        if self.kind == "json":
            check_json_fully(value, name, max_json_depth)
        elif self.kind == "time":
            check_time(value, name)
        elif self.kind == "int":
            check_int(value, name, minimum=self.minimum)
        else:
            check_text(value, name, max_length=self.max_length, choices=self.choices)


def _quick_check(spec: Field) -> Callable[[Any], bool]:
    if spec.kind == "text":
        if spec.choices:
            choices = frozenset(spec.choices)
            return lambda value: type(value) is str and value in choices
        longest = INT_MAX if spec.max_length is None else spec.max_length
        return lambda value: (
            type(value) is str and len(value) <= longest and value.isascii() and "\x00" not in value
        )
    if spec.kind == "int":
        least = spec.minimum
        return lambda value: type(value) is int and least <= value <= INT_MAX
    if spec.kind == "time":
        # Already in UTC: no conversion to overflow.
        return lambda value: type(value) is datetime and value.tzinfo is UTC
    return plain_json


def check_time(value: Any, name: str) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got the naive datetime {value!r}")
    try:
        value.astimezone(UTC)
    except OverflowError:
        # Stored as UTC: an instant past year 1 or 9999 there has no representation.
        raise ValueError(f"{name} is out of range once converted to UTC: {value!r}") from None


def check_int(value: Any, name: str, *, minimum: int = INT_MIN, maximum: int = INT_MAX) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be between {minimum} and {maximum}, got {value}")


def check_bigint(value: Any, name: str) -> None:
    """An int that fits a 64-bit column: row ids, millisecond thresholds."""
    check_int(value, name, minimum=BIGINT_MIN, maximum=BIGINT_MAX)


def check_text(
    value: Any, name: str, *, max_length: int | None = None, choices: tuple[str, ...] = ()
) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if choices and value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    check_storable_text(value, name)
    if max_length is not None and len(value) > max_length:
        raise ValueError(f"{name} is {len(value)} characters long; at most {max_length} fit")


_name = Field("text", max_length=NAME_LENGTH)
_optional_name = Field("text", nullable=True, max_length=NAME_LENGTH)
_time = Field("time")
_optional_time = Field("time", nullable=True)
_optional_int = Field("int", nullable=True)

JOB_FIELDS: Mapping[str, Field] = {
    "queue": _name,
    "state": Field("text", choices=JOB_STATES),
    "script": _name,
    "job_class": _name,
    "args": Field("json"),
    "constructor_args": Field("json"),
    "timeout": _optional_int,
    "attempt": Field("int"),
    "max_attempts": Field("int"),
    "result": Field("json", nullable=True),
    "errors": Field("json", nullable=True),
    "inserted_at": _time,
    "attempted_at": _optional_time,
    "available_at": _time,
    "completed_at": _optional_time,
    "failed_at": _optional_time,
    "canceled_at": _optional_time,
    "claimed_at": _optional_time,
    "claimed_by": _optional_name,
    "unique_digest": _optional_name,
    "uniqueness_config": Field("json", nullable=True),
    "retry_delay": _optional_int,
    "backoff_strategy": Field("text"),
    "priority": Field("int"),
}

QUEUE_FIELDS: Mapping[str, Field] = {
    "name": _name,
    "concurrency": Field("int", minimum=1),
    "priority": Field("int"),
    "state": Field("text", choices=QUEUE_STATES),
}


def check_changes(fields: Mapping[str, Field], changes: Mapping[str, Any], what: str, *, max_json_depth: int) -> None:
    """Refuse unknown fields, ``id`` and bad values among ``changes`` (JSON
    nested deeper than ``max_json_depth`` among them)."""
    if "id" in changes:
        raise ValueError("id cannot be changed")
    for name, value in changes.items():
        spec = fields.get(name)
        if spec is None:
            hint = " (use job_class)" if name == "class" and "job_class" in fields else ""
            known = ", ".join(sorted(fields))
            raise ValueError(f"{name!r} is not a field of a {what} that can be changed{hint}; "
                             f"the fields are: {known}")
        # Field by field, the call of a method each cost a new job a measurable
        # share of its checks: None and the quick yes are looked at here, as ``Field.check`` does.
        if value is None:
            if not spec.nullable:
                raise ValueError(f"{name} cannot be None")
        elif not spec.plainly_fine(value):
            spec.check_fully(value, name, max_json_depth)


def check_expected(state: Any, claimed_by: Any, attempt: Any, where: str = "") -> dict[str, Any]:
    """The precondition of a checked transition (``expect_state``,
    ``expect_claimed_by``, ``expect_attempt``, named after ``where``), each
    checked as the field it compares with; returned by field, without those
    given as None (not compared). None of these fields is JSON, so no depth applies."""
    JOB_FIELDS["state"].check(state, f"{where}expect_state", 0)
    expected = {"state": state}
    if claimed_by is not None:
        JOB_FIELDS["claimed_by"].check(claimed_by, f"{where}expect_claimed_by", 0)
        expected["claimed_by"] = claimed_by
    if attempt is not None:
        JOB_FIELDS["attempt"].check(attempt, f"{where}expect_attempt", 0)
        expected["attempt"] = attempt
    return expected


# -- arguments of operations that are not fields ------------------------------------

MAX_BUCKETS = 10_000
QUEUE_ORDER_FIELDS = ("id", "name", "concurrency", "state", "priority")
_TIME_RANGE = re.compile(r"[1-9][0-9]*[mhd]", re.ASCII)


def check_time_range(time_range: Any) -> tuple[int, str]:
    """``'12h'`` → ``(12, 'h')``: a count of 1 to MAX_BUCKETS minutes, hours or days."""
    if not isinstance(time_range, str):
        raise TypeError(f"time_range must be a str such as '12h', not {type(time_range).__name__}")
    if not _TIME_RANGE.fullmatch(time_range) or int(time_range[:-1]) > MAX_BUCKETS:
        raise ValueError(
            f"time_range must be a count from 1 to {MAX_BUCKETS} followed by m, h or d "
            f"(such as '12h'); got {time_range!r}"
        )
    return int(time_range[:-1]), time_range[-1]


def check_queue_order(order_by: Any, order: Any) -> None:
    if order_by not in QUEUE_ORDER_FIELDS:
        raise ValueError(f"order_by must be one of {', '.join(QUEUE_ORDER_FIELDS)}; got {order_by!r}")
    if order not in ("asc", "desc"):
        raise ValueError(f"order must be 'asc' or 'desc'; got {order!r}")


def check_like_pattern(pattern: Any, name: str) -> None:
    """A LIKE pattern must be text and must not end in a lone escape character."""
    check_text(pattern, name)
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    if trailing % 2:
        raise ValueError(f"{name} ends with a lone backslash; write '\\\\' for a literal one")


def check_queue_names(queues: Any, name: str = "queues") -> list[str]:
    """A non-empty list (or tuple) of queue names, without repeats, in the order given."""
    if not isinstance(queues, (list, tuple)):
        raise TypeError(f"{name} must be a list of queue names, not {type(queues).__name__}")
    if not queues:
        raise ValueError(f"{name} must name at least one queue")
    for i, queue in enumerate(queues):
        check_text(queue, f"{name}[{i}]")
    return list(dict.fromkeys(queues))


def check_seconds(value: Any, name: str, *, positive: bool = False) -> float:
    """A finite number of seconds, at least 0 (more than 0 if ``positive``), as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds (an int or a float), not {type(value).__name__}")
    wanted = f"{name} must be a finite number of seconds, {'more than 0' if positive else '0 or more'}"
    try:
        seconds = float(value)
    except OverflowError:
        raise ValueError(f"{wanted}; got an int beyond a float's range") from None
    if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        raise ValueError(f"{wanted}; got {value!r}")
    return seconds


def check_transition(item: Any, name: str, *, max_json_depth: int) -> None:
    """A ``JobTransition``: a job id, a state to expect, fields to change that are fields."""
    if not isinstance(item, JobTransition):
        raise TypeError(f"{name} must be a JobTransition, not {type(item).__name__}")
    check_bigint(item.job_id, f"{name}.job_id")
    check_expected(item.expect_state, item.expect_claimed_by, item.expect_attempt, f"{name}.")
    if not isinstance(item.changes, Mapping):
        raise TypeError(f"{name}.changes must be a mapping of field names to values")
    check_changes(JOB_FIELDS, item.changes, "job", max_json_depth=max_json_depth)
