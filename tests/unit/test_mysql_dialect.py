"""The MySQL/MariaDB dialect's SQL, compiled without a server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.schema import CreateTable

import sidequest_sql as sq
from sidequest_sql.statements import finished_moment, select_expected
from sidequest_sql.dialects.mysql import MySQLBackend
from sidequest_sql.dialects.sqlite import SQLiteBackend
from sidequest_sql.schema import jobs, queues

MYSQL = mysql.dialect()
MARIADB = mysql.dialect(is_mariadb=True)  # what mysql:// gives once connected to MariaDB


@pytest.fixture
def backend() -> MySQLBackend:
    pytest.importorskip("pymysql")
    store = sq.create_backend("mysql://app@db.example.com/app")
    assert isinstance(store, MySQLBackend)
    return store


def sql(element: object, dialect: object = MYSQL) -> str:
    compiled = element.compile(dialect=dialect, compile_kwargs={"literal_binds": True})  # type: ignore[attr-defined]
    return " ".join(str(compiled).split())


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("mysql://app@db/app", "mysql+pymysql"),
        ("mysql+pymysql://app@db/app", "mysql+pymysql"),
        ("mariadb://app@db/app", "mariadb+pymysql"),
        ("mysql+mysqldb://app@db/app", "mysql+mysqldb"),
    ],
)
def test_schemes_reach_the_dialect_and_pick_pymysql(url: str, driver: str) -> None:
    assert sq.registry.dialect_for(url) is MySQLBackend
    assert MySQLBackend.engine_url(sq.registry.parse_url(url)).drivername == driver


def test_sessions_read_committed(backend: MySQLBackend) -> None:
    assert MySQLBackend.engine_options(backend.url)["isolation_level"] == "READ COMMITTED"


def test_password_is_hidden(backend: MySQLBackend) -> None:
    store = sq.create_backend("mysql://app:s3cret@db/app")
    assert "s3cret" not in repr(store)


@pytest.mark.parametrize("dialect", [MYSQL, MARIADB])
def test_claim_candidates_lock_with_skip_locked(backend: MySQLBackend, dialect: object) -> None:
    c = jobs.c
    candidates = backend.lock_for_claim(
        select(c.id).where(c.state == "waiting", c.queue == "q").order_by(c.inserted_at, c.id).limit(3)
    )
    text = sql(candidates, dialect)
    assert text.endswith("ORDER BY sidequest_jobs.inserted_at, sidequest_jobs.id LIMIT 3 FOR UPDATE SKIP LOCKED")


@pytest.mark.parametrize(
    ("unit", "fmt"), [("m", "%%Y-%%m-%%d %%H:%%i:00"), ("h", "%%Y-%%m-%%d %%H:00:00"), ("d", "%%Y-%%m-%%d 00:00:00")]
)
def test_time_bucket_formats_and_casts_back(backend: MySQLBackend, unit: str, fmt: str) -> None:
    bucket = backend.time_bucket(finished_moment(), unit)  # type: ignore[arg-type]
    text = sql(bucket)
    assert text.startswith("CAST(date_format(coalesce(sidequest_jobs.completed_at, ")
    assert text.endswith(f"'{fmt}') AS DATETIME(6))")


def test_like_is_plain_like_on_binary_collation(backend: MySQLBackend) -> None:
    assert sql(backend.like(jobs.c.queue, "a\\_%")) == "sidequest_jobs.queue LIKE 'a\\\\_%%' ESCAPE '\\\\'"


def test_json_equality_casts_on_mysql_and_compares_text_on_mariadb(backend: MySQLBackend) -> None:
    condition = backend.json_equals(jobs.c.args, {"b": 1, "a": [True]})
    on_mysql = condition.compile(dialect=MYSQL)
    assert str(on_mysql) == "sidequest_jobs.args = CAST(%s AS JSON)"
    assert str(condition.compile(dialect=MARIADB)) == "sidequest_jobs.args = %s"
    [param] = on_mysql.construct_params().values()
    processor = jobs.c.args.type.dialect_impl(MYSQL).bind_processor(backend.engine.dialect)
    assert processor(param) == '{"a":[true],"b":1}'  # canonical text, keys sorted


def test_json_equality_values_are_not_cached_together(backend: MySQLBackend) -> None:
    first = backend.json_equals(jobs.c.args, [1])
    second = backend.json_equals(jobs.c.args, [2])
    assert first.compile(dialect=MYSQL).params != second.compile(dialect=MYSQL).params


def _integrity(message: str) -> IntegrityError:
    return IntegrityError("INSERT …", {}, Exception(1062, message))


@pytest.mark.parametrize(
    ("message", "name"),
    [
        ("Duplicate entry 'emails' for key 'sidequest_queues_name_unique'", "sidequest_queues_name_unique"),
        (
            "Duplicate entry 'd' for key 'sidequest_jobs.sidequest_jobs_unique_digest_active_idx'",
            "sidequest_jobs_unique_digest_active_idx",
        ),
        ("Duplicate entry 'it's for key 'x'' for key 'sidequest_queues_name_unique'", "sidequest_queues_name_unique"),
        ("Cannot add or update a child row", None),
    ],
)
def test_violated_constraint_reads_the_key(backend: MySQLBackend, message: str, name: str | None) -> None:
    assert backend.violated_constraint(_integrity(message)) == name


def test_only_deadlocks_are_retried(backend: MySQLBackend) -> None:
    deadlock = OperationalError("UPDATE …", {}, Exception(1213, "Deadlock found when trying to get lock"))
    timeout = OperationalError("UPDATE …", {}, Exception(1205, "Lock wait timeout exceeded"))
    assert backend.retryable(deadlock)
    assert not backend.retryable(timeout)
    assert not backend.retryable(_integrity("Duplicate entry 'a' for key 'k'"))


@pytest.mark.parametrize(("dialect", "collation"), [(MYSQL, "utf8mb4_0900_bin"), (MARIADB, "utf8mb4_nopad_bin")])
def test_names_get_a_binary_no_pad_collation(dialect: object, collation: str) -> None:
    ddl = sql(CreateTable(queues), dialect)
    assert f"name VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {collation} NOT NULL" in ddl


def test_times_keep_microseconds_and_defaults_suit_mysql() -> None:
    ddl = sql(CreateTable(jobs), MYSQL)
    assert "inserted_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)" in ddl
    assert "claimed_at DATETIME(6)," in ddl
    assert "backoff_strategy TEXT NOT NULL DEFAULT ('exponential')" in ddl


@pytest.mark.parametrize("dialect", [postgresql.dialect(), sqlite.dialect()])
def test_other_dialects_keep_their_ddl(dialect: object) -> None:
    ddl = sql(CreateTable(jobs), dialect)
    assert "queue VARCHAR(255) NOT NULL" in ddl
    assert "inserted_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL" in ddl or (
        "inserted_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL" in ddl
    )
    assert "backoff_strategy TEXT DEFAULT 'exponential' NOT NULL" in ddl


def test_times_go_in_as_naive_utc() -> None:
    processor = jobs.c.claimed_at.type.bind_processor(MYSQL)
    moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    value = processor(moment) if processor else jobs.c.claimed_at.type.process_bind_param(moment, MYSQL)
    assert value == moment.replace(tzinfo=None)


class _Deadlocking(SQLiteBackend):
    """Fails its first writes as a deadlock victim would."""

    failures = 2

    def retryable(self, error: object) -> bool:
        return "deadlock" in str(error)


def test_the_base_runs_a_retryable_transaction_again() -> None:
    store = _Deadlocking("sqlite://")
    store.migrate()
    attempts = []

    def work(conn: object) -> str:
        attempts.append(1)
        if len(attempts) <= _Deadlocking.failures:
            raise OperationalError("UPDATE …", {}, Exception("deadlock"))
        return "done"

    assert store.execution.write(work) == "done"
    assert len(attempts) == 3
    attempts.clear()
    _Deadlocking.failures = 100
    with pytest.raises(OperationalError):
        store.execution.write(work)
    assert len(attempts) == 5  # bounded
    store.close()


def test_a_retryable_error_in_a_callers_transaction_is_not_run_again() -> None:
    store = _Deadlocking("sqlite://")
    store.migrate()
    attempts = []

    def work(conn: object) -> str:
        attempts.append(1)
        raise OperationalError("UPDATE …", {}, Exception("deadlock"))

    with store.engine.connect() as conn, conn.begin():
        with pytest.raises(OperationalError):
            store.execution.write(work, connection=conn)
    assert len(attempts) == 1  # the transaction is the caller's to run again
    store.close()


def test_a_transition_locks_its_row_with_its_precondition_waiting_rather_than_skipping() -> None:
    """Without UPDATE … RETURNING a transition locks the row first (then updates it
    and reads it back, in the same transaction): waiting for another writer's lock,
    not skipping the row as a claim does, then reading the precondition as that writer left it."""
    _, build = select_expected(jobs, ("state", "claimed_by"), lock=True)
    assert " ".join(str(build().compile(dialect=MARIADB)).split()) == (
        "SELECT sidequest_jobs.id FROM sidequest_jobs WHERE sidequest_jobs.id = %s "
        "AND sidequest_jobs.state = %s AND sidequest_jobs.claimed_by = %s FOR UPDATE"
    )
