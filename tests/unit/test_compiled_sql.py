"""Each dialect's SQL, compiled without a server and read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Select, literal, select

import sidequest_sql as sq
from sidequest_sql.base import SQLBackend
from sidequest_sql.statements import finished_moment, update_expected
from sidequest_sql.dialects.postgres import PostgresBackend
from sidequest_sql.dialects.sqlite import SQLiteBackend, like_to_glob
from sidequest_sql.schema import Timestamp, jobs

NOW = datetime(2030, 1, 15, 12, 30, 45, 123456, tzinfo=UTC)


@pytest.fixture
def postgres() -> Iterator[SQLBackend]:
    # Nothing listens on port 1, and nothing here connects.
    backend = sq.create_backend("postgresql://user:pw@127.0.0.1:1/db")
    assert isinstance(backend, PostgresBackend)
    yield backend
    backend.close()


@pytest.fixture
def sqlite() -> Iterator[SQLBackend]:
    backend = sq.create_backend("sqlite://")
    assert isinstance(backend, SQLiteBackend)
    yield backend
    backend.close()


def sql_of(backend: SQLBackend, stmt: Any, *, literal_binds: bool = False) -> str:
    kwargs = {"compile_kwargs": {"literal_binds": True}} if literal_binds else {}
    return " ".join(str(stmt.compile(dialect=backend.engine.dialect, **kwargs)).split())


def candidates(backend: SQLBackend, quantity: int = 3) -> Select[Any]:
    """The rows ``claim_pending_job`` picks, as the base class builds them."""
    c = jobs.c
    return backend.lock_for_claim(
        select(c.id)
        .where(c.state == "waiting", c.queue == "default", c.available_at <= NOW)
        .order_by(c.inserted_at, c.id)
        .limit(quantity)
    )


def claim_sql(backend: SQLBackend) -> str:
    values = {"state": "claimed", "claimed_at": NOW, "claimed_by": "worker"}
    return sql_of(backend, backend.claim_statement(candidates(backend), values))


# -- claim ----------------------------------------------------------------------


def test_postgres_claim_is_one_materialized_cte_with_skip_locked_then_update_returning(
    postgres: SQLBackend,
) -> None:
    sql = claim_sql(postgres)
    match = re.fullmatch(
        r"WITH claimable AS MATERIALIZED \((?P<cte>SELECT .*)\) "
        r"UPDATE sidequest_jobs SET (?P<set>.*) FROM claimable "
        r"WHERE sidequest_jobs\.id = claimable\.id RETURNING (?P<returning>.*)",
        sql,
    )
    assert match, sql
    cte = match["cte"]
    assert cte.endswith("FOR UPDATE SKIP LOCKED"), cte
    assert "ORDER BY sidequest_jobs.inserted_at, sidequest_jobs.id" in cte
    assert " LIMIT " in cte
    assert sql.count("SELECT") == 1
    assert sql.count("FOR UPDATE") == 1
    assert sql.count(" AS MATERIALIZED ") == 1
    assert {"state=", "claimed_by=", "claimed_at="} <= {
        part.split("%")[0] for part in match["set"].split(", ")
    }
    returned = {name.removeprefix("sidequest_jobs.") for name in match["returning"].split(", ")}
    assert returned == {column.name for column in jobs.columns}


def test_postgres_claim_candidates_lock_with_skip_locked(postgres: SQLBackend) -> None:
    sql = sql_of(postgres, candidates(postgres))
    assert sql.endswith("FOR UPDATE SKIP LOCKED")


def test_sqlite_claim_has_no_row_lock_clause(sqlite: SQLBackend) -> None:
    sql = claim_sql(sqlite)
    assert "FOR UPDATE" not in sql
    assert "SKIP LOCKED" not in sql
    assert sql.startswith("WITH claimable AS MATERIALIZED (SELECT ")
    assert "UPDATE sidequest_jobs SET " in sql and " FROM claimable " in sql
    assert " RETURNING " in sql


@contextmanager
def traced(backend: SQLBackend) -> Iterator[list[str]]:
    """Every statement the SQLite driver runs while the block runs, BEGIN and COMMIT included."""
    sent: list[str] = []
    with backend.engine.connect() as conn:  # sqlite:// has one connection, shared
        sqlite_connection: Any = conn.connection.dbapi_connection
    sqlite_connection.set_trace_callback(lambda statement: sent.append(" ".join(statement.split())))
    try:
        yield sent
    finally:
        sqlite_connection.set_trace_callback(None)


def test_sqlite_claim_runs_as_one_immediate_write_transaction() -> None:
    """What reaches the driver: BEGIN IMMEDIATE, then one UPDATE … RETURNING, no FOR UPDATE."""
    with sq.create_backend("sqlite://", clock=lambda: NOW) as backend:
        backend.migrate()
        job = backend.create_new_job(sq.NewJobData(queue="default", script="s.js", job_class="Echo"))
        with traced(backend) as sent:
            [claimed] = backend.claim_pending_job("default")
        assert claimed.id == job.id
    assert sent[0] == "BEGIN IMMEDIATE"
    data = [sql for sql in sent[1:] if sql not in ("COMMIT", "ROLLBACK")]
    assert len(data) == 1 and data[0].startswith("WITH claimable") and " RETURNING " in data[0]
    assert not any("FOR UPDATE" in sql for sql in sent)


# -- checked transitions ------------------------------------------------------------


def test_postgres_transition_is_one_update_returning_under_its_precondition(postgres: SQLBackend) -> None:
    _, build = update_expected(jobs, {"state": "completed", "completed_at": NOW}, ("state", "claimed_by", "attempt"))
    sql = sql_of(postgres, build())
    match = re.fullmatch(r"UPDATE sidequest_jobs SET (?P<set>.*) WHERE (?P<where>.*) RETURNING (?P<returning>.*)", sql)
    assert match, sql
    assert match["where"] == (
        "sidequest_jobs.id = %(id_1)s::BIGINT AND sidequest_jobs.state = %(expect_state)s::VARCHAR "
        "AND sidequest_jobs.claimed_by = %(expect_claimed_by)s::VARCHAR "
        "AND sidequest_jobs.attempt = %(expect_attempt)s::INTEGER"
    )
    assert sorted(match["set"].split(", ")) == ["completed_at=%(completed_at)s::TIMESTAMP WITH TIME ZONE",
                                                "state=%(state)s::VARCHAR"]  # fmt: skip
    assert "SELECT" not in sql


def test_sqlite_transition_runs_as_one_immediate_write_transaction() -> None:
    """What reaches the driver for a hit: BEGIN IMMEDIATE, then one UPDATE … RETURNING;
    for a miss, the same and then one read, to tell a job that moved on from a missing one."""
    with sq.create_backend("sqlite://", clock=lambda: NOW) as backend:
        backend.migrate()
        job = backend.create_new_job(sq.NewJobData(queue="default", script="s.js", job_class="Echo"))
        with traced(backend) as hit:
            assert backend.transition_job(job.id, expect_state="waiting", state="claimed") is not None
        with traced(backend) as sent:
            assert backend.transition_job(job.id, expect_state="waiting", state="claimed") is None
    assert hit[0] == "BEGIN IMMEDIATE" and hit[-1] == "COMMIT", hit
    assert len(hit) == 3 and hit[1].startswith("UPDATE sidequest_jobs SET state=") and " RETURNING " in hit[1]
    assert sent[:3] == ["BEGIN IMMEDIATE", hit[1], "COMMIT"], sent
    assert len(sent) == 4 and sent[3].startswith("SELECT "), sent


# -- time buckets -----------------------------------------------------------------


@pytest.mark.parametrize(("unit", "field"), [("m", "minute"), ("h", "hour"), ("d", "day")])
def test_postgres_time_bucket_is_date_trunc_in_utc(postgres: SQLBackend, unit: str, field: str) -> None:
    sql = sql_of(postgres, select(postgres.time_bucket(finished_moment(), unit)), literal_binds=True)  # type: ignore[arg-type]
    assert re.search(rf"date_trunc\('{field}', timezone\('UTC', coalesce\(.*\)\)\)", sql), sql


@pytest.mark.parametrize(
    ("unit", "format_"),
    [("m", "%Y-%m-%d %H:%M:00.000000"), ("h", "%Y-%m-%d %H:00:00.000000"), ("d", "%Y-%m-%d 00:00:00.000000")],
)
def test_sqlite_time_bucket_is_strftime(sqlite: SQLBackend, unit: str, format_: str) -> None:
    sql = sql_of(sqlite, select(sqlite.time_bucket(finished_moment(), unit)), literal_binds=True)  # type: ignore[arg-type]
    assert f"strftime('{format_}', coalesce(" in sql, sql


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("m", datetime(2030, 1, 15, 12, 30, tzinfo=UTC)),
        ("h", datetime(2030, 1, 15, 12, tzinfo=UTC)),
        ("d", datetime(2030, 1, 15, tzinfo=UTC)),
    ],
)
def test_sqlite_time_bucket_truncates_stored_times(sqlite: SQLBackend, unit: str, expected: datetime) -> None:
    with sqlite.engine.connect() as conn:
        bucket = conn.scalar(select(sqlite.time_bucket(literal(NOW, Timestamp()), unit)))  # type: ignore[arg-type]
    assert bucket == expected
    assert bucket.tzinfo is UTC


# -- LIKE -----------------------------------------------------------------------------


LIKE_CASES = [
    ("%", "*"),
    ("_", "?"),
    ("a%b_c", "a*b?c"),
    ("%%", "**"),
    ("\\%", "%"),
    ("\\_", "_"),
    ("\\\\", "\\"),
    ("50\\%_off", "50%?off"),
    ("*", "[*]"),
    ("?", "[?]"),
    ("[", "[[]"),
    ("]", "]"),
    ("[a-z]", "[[]a-z]"),
    ("\\*", "[*]"),
    ("\\?", "[?]"),
    ("\\[", "[[]"),
    ("\\a", "a"),
    ("", ""),
    ("plain", "plain"),
    ("x'; DROP TABLE sidequest_jobs; --", "x'; DROP TABLE sidequest_jobs; --".replace("_", "?")),
    ("é_ü%", "é?ü*"),
    # A lone trailing backslash stands for itself; the backend refuses such a pattern anyway.
    ("ab\\", "ab\\"),
]


@pytest.mark.parametrize(("pattern", "glob"), LIKE_CASES)
def test_like_to_glob(pattern: str, glob: str) -> None:
    assert like_to_glob(pattern) == glob


@pytest.mark.parametrize(("pattern", "glob"), LIKE_CASES)
def test_sqlite_like_emits_glob(sqlite: SQLBackend, pattern: str, glob: str) -> None:
    compiled = sqlite.like(jobs.c.queue, pattern).compile(dialect=sqlite.engine.dialect)
    sql = str(compiled)
    assert re.fullmatch(r"sidequest_jobs\.queue GLOB \?", sql), sql
    assert list(compiled.params.values()) == [glob]


@pytest.mark.parametrize("pattern", ["a%b", "\\%", "x'; DROP TABLE sidequest_jobs; --", ""])
def test_postgres_like_is_like_with_backslash_escape(postgres: SQLBackend, pattern: str) -> None:
    compiled = postgres.like(jobs.c.queue, pattern).compile(dialect=postgres.engine.dialect)
    sql = str(compiled)
    assert re.fullmatch(r"sidequest_jobs\.queue LIKE %\(\w+\)s(::VARCHAR)? ESCAPE '\\'", sql), sql
    assert "ILIKE" not in sql
    assert list(compiled.params.values()) == [pattern]


# -- JSON equality -----------------------------------------------------------------------


def test_postgres_json_equals_casts_to_jsonb(postgres: SQLBackend) -> None:
    compiled = postgres.json_equals(jobs.c.args, {"b": 1, "a": [True]}).compile(
        dialect=postgres.engine.dialect
    )
    assert re.fullmatch(r"sidequest_jobs\.args = %\(\w+\)s::JSONB", str(compiled)), str(compiled)


def test_sqlite_json_equals_compares_canonical_text(sqlite: SQLBackend) -> None:
    sqlite.migrate()
    job = sqlite.create_new_job(
        sq.NewJobData(queue="q", script="s", job_class="c", args={"b": 1.0, "a": [1, "x"]})
    )
    assert sqlite.list_jobs(args={"a": [1, "x"], "b": 1}) == [job]
    assert sqlite.list_jobs(args={"a": [True, "x"], "b": 1}) == []
