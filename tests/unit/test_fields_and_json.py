"""What a field accepts, what a JSON payload may hold, and the one way payloads are written."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidequest_sql.fields import (
    INT_MAX,
    INT_MIN,
    JOB_FIELDS,
    NAME_LENGTH,
    QUEUE_FIELDS,
    check_changes,
    check_int,
    check_text,
    check_time,
)
from sidequest_sql.jsonvalues import check_json, dumps, loads
from sidequest_sql.records import JOB_STATES, QUEUE_STATES


# A dialect's max_json_depth, as the checks are given it.
DEPTH = 31


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


# -- check_json ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -(2**53) + 1,
        2**63,
        1.5,
        -0.0,
        5e-324,
        1.7976931348623157e308,
        "",
        "text with 'quotes', \"doubles\", \\ and \n newlines",
        "日本語 🎉",
        [],
        {},
        [1, "a", None, [True, {"k": [2.5]}]],
        {"": 0, "nested": {"deep": [{}]}},
        nested(DEPTH),
    ],
)
def test_check_json_accepts(value: Any) -> None:
    check_json(value, "args", DEPTH)


@pytest.mark.parametrize(
    ("value", "error", "where"),
    [
        (math.nan, ValueError, "args"),
        (math.inf, ValueError, "args"),
        (-math.inf, ValueError, "args"),
        ([1, [2, math.nan]], ValueError, "args[1][1]"),
        ({"a": {"b": math.inf}}, ValueError, "args['a']['b']"),
        ("a\x00b", ValueError, "args"),
        (["ok", "\x00"], ValueError, "args[1]"),
        ({"a\x00": 1}, ValueError, "a key of args"),
        ({"k": {"a\x00": 1}}, ValueError, "a key of args['k']"),
        ("\ud800", ValueError, "args"),
        ({"\udfff": 1}, ValueError, "a key of args"),
        ({1: "x"}, TypeError, "args"),
        ({"a": {None: 1}}, TypeError, "args['a']"),
        ({(1, 2): "x"}, TypeError, "args"),
        ((1, 2), TypeError, "args"),
        ([(1, 2)], TypeError, "args[0]"),
        ({1, 2}, TypeError, "args"),
        (frozenset(), TypeError, "args"),
        (b"bytes", TypeError, "args"),
        ([bytearray(b"x")], TypeError, "args[0]"),
        (Decimal("1.5"), TypeError, "args"),
        ({"when": datetime(2030, 1, 1, tzinfo=UTC)}, TypeError, "args['when']"),
        (date(2030, 1, 1), TypeError, "args"),
        (object(), TypeError, "args"),
        ([1j], TypeError, "args[0]"),
        (10**4000, ValueError, "args"),
        (nested(DEPTH + 1), ValueError, "args"),
    ],
)
def test_check_json_refuses(value: Any, error: type[Exception], where: str) -> None:
    with pytest.raises(error) as info:
        check_json(value, "args", DEPTH)
    assert where in str(info.value)


def test_check_json_refuses_a_cycle_instead_of_looping() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="args"):
        check_json(cycle, "args", DEPTH)


# -- dumps --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"b": 1, "a": 2}, '{"a":2,"b":1}'),
        ({"z": {"y": 1, "x": [1, 2]}}, '{"z":{"x":[1,2],"y":1}}'),
        ([1.0, -2.0, 0.5], "[1,-2,0.5]"),
        (-0.0, "0"),
        (float(2**53 - 1), str(2**53 - 1)),
        (float(2**53), "9007199254740992.0"),
        (1e300, "1e+300"),
        (True, "true"),
        (1, "1"),
        (None, "null"),
        ("é\n", '"é\\n"'),
        ({"k": [None, {"b": 2.0, "a": True}]}, '{"k":[null,{"a":true,"b":2}]}'),
    ],
)
def test_dumps_is_canonical(value: Any, text: str) -> None:
    assert dumps(value) == text


def test_dumps_refuses_non_finite_floats() -> None:
    with pytest.raises(ValueError):
        dumps(math.nan)


def leaves(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    return [value]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00")),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00")),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_dumps_is_checked_loadable_and_independent_of_key_order(value: Any) -> None:
    check_json(value, "args", DEPTH)
    text = dumps(value)
    assert loads(text) == value
    assert not any(
        isinstance(item, float) and item.is_integer() and abs(item) < 2**53 for item in leaves(loads(text))
    )
    assert dumps(loads(text)) == text
    if isinstance(value, dict):
        assert dumps(dict(reversed(list(value.items())))) == text
    assert text == json.dumps(loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# -- field checks -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, -1, INT_MIN, INT_MAX])
def test_check_int_accepts_int32(value: int) -> None:
    check_int(value, "attempt")


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (INT_MAX + 1, ValueError),
        (INT_MIN - 1, ValueError),
        (2**63, ValueError),
        (True, TypeError),
        (False, TypeError),
        (1.0, TypeError),
        ("1", TypeError),
        (None, TypeError),
        (Decimal(1), TypeError),
    ],
)
def test_check_int_refuses(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="attempt"):
        check_int(value, "attempt")


def test_check_int_bounds_are_adjustable() -> None:
    check_int(2**40, "job_id", minimum=-(2**63), maximum=2**63 - 1)
    with pytest.raises(ValueError, match="quantity"):
        check_int(0, "quantity", minimum=1)
    with pytest.raises(ValueError, match="job_id"):
        check_int(2**63, "job_id", minimum=-(2**63), maximum=2**63 - 1)


def test_check_text_length() -> None:
    check_text("x" * NAME_LENGTH, "queue", max_length=NAME_LENGTH)
    check_text("🎉" * NAME_LENGTH, "queue", max_length=NAME_LENGTH)
    with pytest.raises(ValueError, match="queue"):
        check_text("x" * (NAME_LENGTH + 1), "queue", max_length=NAME_LENGTH)
    check_text("x" * 10_000, "pattern")


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (5, TypeError),
        (b"q", TypeError),
        (None, TypeError),
        (["q"], TypeError),
        ("a\x00", ValueError),
        ("\ud83d", ValueError),
    ],
)
def test_check_text_refuses(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="queue"):
        check_text(value, "queue")


@pytest.mark.parametrize("state", JOB_STATES)
def test_every_job_state_is_accepted(state: str) -> None:
    check_changes(JOB_FIELDS, {"state": state}, "job", max_json_depth=DEPTH)


@pytest.mark.parametrize("state", ["Waiting", "WAITING", "done", "", " waiting", "active", "paused"])
def test_other_job_states_are_refused(state: str) -> None:
    with pytest.raises(ValueError, match="state"):
        check_changes(JOB_FIELDS, {"state": state}, "job", max_json_depth=DEPTH)


@pytest.mark.parametrize("state", QUEUE_STATES)
def test_every_queue_state_is_accepted(state: str) -> None:
    check_changes(QUEUE_FIELDS, {"state": state}, "queue", max_json_depth=DEPTH)


@pytest.mark.parametrize("state", ["Active", "waiting", "stopped", ""])
def test_other_queue_states_are_refused(state: str) -> None:
    with pytest.raises(ValueError, match="state"):
        check_changes(QUEUE_FIELDS, {"state": state}, "queue", max_json_depth=DEPTH)


def test_the_six_job_states_and_two_queue_states() -> None:
    assert set(JOB_STATES) == {"waiting", "claimed", "running", "completed", "failed", "canceled"}
    assert set(QUEUE_STATES) == {"active", "paused"}


@pytest.mark.parametrize(
    ("changes", "error", "word"),
    [
        ({"bogus": 1}, ValueError, "bogus"),
        ({"class": "X"}, ValueError, "job_class"),
        ({"id": 1}, ValueError, "id"),
        ({"queue": None}, ValueError, "queue"),
        ({"args": None}, ValueError, "args"),
        ({"inserted_at": None}, ValueError, "inserted_at"),
        ({"attempt": None}, ValueError, "attempt"),
        ({"backoff_strategy": None}, ValueError, "backoff_strategy"),
        ({"claimed_by": "w" * 256}, ValueError, "claimed_by"),
        ({"unique_digest": "d" * 256}, ValueError, "unique_digest"),
        ({"timeout": True}, TypeError, "timeout"),
        ({"retry_delay": INT_MAX + 1}, ValueError, "retry_delay"),
        ({"attempted_at": datetime(2030, 1, 1)}, ValueError, "attempted_at"),
        ({"completed_at": "2030-01-01"}, TypeError, "completed_at"),
        ({"result": {1, 2}}, TypeError, "result"),
        ({"errors": [math.nan]}, ValueError, "errors"),
    ],
)
def test_job_changes_are_checked(changes: dict[str, Any], error: type[Exception], word: str) -> None:
    with pytest.raises(error, match=word):
        check_changes(JOB_FIELDS, changes, "job", max_json_depth=DEPTH)


@pytest.mark.parametrize(
    "changes",
    [
        {"result": None, "errors": None, "timeout": None, "claimed_by": None, "unique_digest": None},
        {"attempted_at": None, "completed_at": datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=-7)))},
        {"backoff_strategy": "x" * 1000},
        {"job_class": "c" * NAME_LENGTH},
    ],
)
def test_job_changes_accepted(changes: dict[str, Any]) -> None:
    check_changes(JOB_FIELDS, changes, "job", max_json_depth=DEPTH)


@pytest.mark.parametrize(
    ("changes", "error", "word"),
    [
        ({"concurrency": 0}, ValueError, "concurrency"),
        ({"concurrency": -5}, ValueError, "concurrency"),
        ({"concurrency": True}, TypeError, "concurrency"),
        ({"priority": INT_MIN - 1}, ValueError, "priority"),
        ({"name": "n" * 256}, ValueError, "name"),
        ({"name": None}, ValueError, "name"),
        ({"job_class": "X"}, ValueError, "job_class"),
    ],
)
def test_queue_changes_are_checked(changes: dict[str, Any], error: type[Exception], word: str) -> None:
    with pytest.raises(error, match=word):
        check_changes(QUEUE_FIELDS, changes, "queue", max_json_depth=DEPTH)


# -- check_time -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        datetime(2030, 1, 1, tzinfo=UTC),
        datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime.max.replace(tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_check_time_accepts_aware_datetimes(value: datetime) -> None:
    check_time(value, "since")


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (datetime(2030, 1, 1), ValueError),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), ValueError),
        (datetime.max.replace(tzinfo=timezone(timedelta(hours=-1))), ValueError),
        ("2030-01-01T00:00:00Z", TypeError),
        (1_900_000_000, TypeError),
        (date(2030, 1, 1), TypeError),
        (None, TypeError),
    ],
)
def test_check_time_refuses(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="since"):
        check_time(value, "since")


# -- the quick yes in front of the full checks ----------------------------------------

_any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
    st.text(alphabet="ab", min_size=250, max_size=260),
    st.sampled_from([*JOB_STATES, *QUEUE_STATES, "\x00", "a\x00b", "\ud800", "x" * 256]),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))])),
    st.datetimes(),
    st.lists(st.one_of(st.integers(min_value=-(2**1030), max_value=2**1030), st.text(max_size=5), st.none(),
                       st.booleans(), st.floats()), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted({**{f"job.{k}": v for k, v in JOB_FIELDS.items()},
                               **{f"queue.{k}": v for k, v in QUEUE_FIELDS.items()}}.items())),
       _any_value)
def test_a_quick_yes_is_never_given_to_a_value_the_full_checks_refuse(
    named: tuple[str, Any], value: Any
) -> None:
    name, spec = named
    if value is not None and spec.plainly_fine(value):
        spec.check_fully(value, name, DEPTH)
