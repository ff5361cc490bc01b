"""What MySQL's and MariaDB's parameters become before PyMySQL writes them, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from enum import Enum, IntEnum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.dialects import mysql

import sidequest_sql as sq
from sidequest_sql.dialects import mysql_parameters
from sidequest_sql.schema import jobs

pymysql = pytest.importorskip("pymysql")


class Colour(str, Enum):
    RED = "red"


class Level(IntEnum):
    TWO = 2


class Code(int):
    def __str__(self) -> str:
        return "Code"


class Ratio(float):
    def __repr__(self) -> str:
        return "a ratio"


class Loud(datetime):
    def __str__(self) -> str:
        return "whenever"


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        (Colour.RED, "red"),
        (Level.TWO, 2),
        (Code(7), 7),
        (Ratio(0.5), 0.5),
        (Loud(2030, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)), fold=1), None),
        (True, True),
        (None, None),
        (b"x", b"x"),
        ("text", "text"),
    ],
)
def test_subclasses_become_the_builtin_value_they_stand_for(value: Any, plain: Any) -> None:
    made = mysql_parameters.plain(value)
    if isinstance(value, datetime):
        assert type(made) is datetime and made == value and made.fold == value.fold
        assert made.tzinfo is value.tzinfo
        return
    assert type(made) is type(plain) and made == plain
    assert pymysql.converters.escape_item(made, "utf8mb4") == pymysql.converters.escape_item(plain, "utf8mb4")


@given(st.text() | st.binary())
def test_the_written_size_is_what_pymysql_writes(value: str | bytes) -> None:
    written = pymysql.converters.escape_item(value, "utf8mb4")
    assert mysql_parameters._written_size(value) == len(written.encode("utf-8", "surrogateescape"))


def test_an_args_filter_is_a_parameter_named_after_its_column() -> None:
    backend = sq.create_backend("mysql://app@db.example.com/app")
    condition = backend.json_equals(jobs.c.args, ["x"])
    compiled = select(jobs.c.id).where(condition).compile(dialect=mysql.dialect(is_mariadb=True))
    assert list(compiled.params) == ["args_1"]
    assert mysql_parameters._NUMBERED.sub("", "args_1") == "args"
    assert mysql_parameters._NUMBERED.sub("", "args__12") == "args"


class FakeConnection:
    def __init__(self, limit: int) -> None:
        self.info = {"sidequest_max_allowed_packet": limit}


def test_small_statements_are_not_measured() -> None:
    # No cursor is needed: the server's limit is not even looked up.
    mysql_parameters._refuse_oversized(object(), None, "SELECT 1", ("x" * 1000,), None)


def test_a_statement_over_the_limit_names_the_largest_parameter() -> None:
    parameters = {"queue": "default", "args": '["' + "x" * 600_000 + '"]', "result": "x" * 10}
    with pytest.raises(ValueError, match=r"^args is too large .* max_allowed_packet of 500000 bytes$"):
        mysql_parameters._refuse_oversized(FakeConnection(500_000), None, "INSERT ...", parameters, None)
    mysql_parameters._refuse_oversized(FakeConnection(700_000), None, "INSERT ...", parameters, None)


def test_now_is_left_alone() -> None:
    now = datetime.now(UTC)
    assert mysql_parameters.plain(now) is now
