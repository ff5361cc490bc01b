"""What ``wait_for_jobs`` sends and listens on, compiled and computed without a server."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect

from sidequest_sql.dialects.pg_notify import CHANNEL_PREFIX, MAX_CHANNEL_BYTES, PostgresNotifier, channel_for
from sidequest_sql.fields import check_queue_names, check_seconds
from sidequest_sql.migrations import SCRIPT_LOCATION
from sidequest_sql.wakeups import look_statement

DIALECTS: dict[str, Dialect] = {
    "postgresql": postgresql.psycopg.dialect(),
    "sqlite": sqlite.pysqlite.dialect(),
    "mysql": mysql.pymysql.dialect(),
}


@pytest.mark.parametrize("name", DIALECTS)
def test_one_look_is_one_statement_of_two_subqueries_per_queue(name: str) -> None:
    sql = " ".join(str(look_statement(3).compile(dialect=DIALECTS[name])).split())
    assert sql.startswith("SELECT coalesce((SELECT sidequest_jobs.available_at FROM sidequest_jobs WHERE")
    assert sql.count("coalesce(") == 3
    assert sql.count("LIMIT") == 3
    assert sql.count("min(sidequest_jobs.available_at)") == 3
    assert re.findall(r"AS (queue_\d)", sql) == ["queue_0", "queue_1", "queue_2"]
    assert " FROM sidequest_jobs" in sql and sql.count("SELECT") == 7


def test_a_channel_is_named_after_its_schema_or_the_md5_of_a_long_one() -> None:
    assert channel_for("public") == "sidequest_jobs.public"
    assert channel_for("My Schema") == "sidequest_jobs.My Schema"
    fits = "s" * (MAX_CHANNEL_BYTES - len(CHANNEL_PREFIX))
    assert channel_for(fits) == CHANNEL_PREFIX + fits
    for too_long in (fits + "s", "é" * 25):
        channel = channel_for(too_long)
        assert channel == CHANNEL_PREFIX + hashlib.md5(too_long.encode()).hexdigest()
        assert len(channel.encode()) <= MAX_CHANNEL_BYTES


def test_revision_0007_names_the_channel_as_the_listener_does() -> None:
    revision = (SCRIPT_LOCATION / "versions" / "0007_job_notifications.py").read_text()
    assert f"'{CHANNEL_PREFIX}' || TG_TABLE_SCHEMA" in revision
    assert f"octet_length(channel) > {MAX_CHANNEL_BYTES}" in revision
    assert f"'{CHANNEL_PREFIX}' || md5(TG_TABLE_SCHEMA)" in revision


def test_the_probe_notifies_the_channel() -> None:
    probe = PostgresNotifier().probe("sidequest_jobs.public", "sidequest-probe:1")
    compiled = probe.compile(dialect=DIALECTS["postgresql"])
    assert " ".join(str(compiled).split()) == "SELECT pg_notify(%(channel)s::VARCHAR, %(payload)s::VARCHAR) AS pg_notify_1"
    assert compiled.params == {"channel": "sidequest_jobs.public", "payload": "sidequest-probe:1"}


def test_queue_names_keep_their_order_once_each() -> None:
    assert check_queue_names(["b", "a", "b"]) == ["b", "a"]
    assert check_queue_names(("a",)) == ["a"]


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0.0), (1, 1.0), (0.25, 0.25), (-0.0, 0.0), (2**63, float(2**63))]
)
def test_seconds_are_finite_numbers(value: object, expected: float) -> None:
    assert check_seconds(value, "timeout") == expected


@pytest.mark.parametrize(("value", "error"), [(10**400, ValueError), (float("inf"), ValueError), (True, TypeError)])
def test_seconds_refused(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="timeout"):
        check_seconds(value, "timeout")
    with pytest.raises(ValueError, match="more than 0"):
        check_seconds(0, "poll_interval", positive=True)
