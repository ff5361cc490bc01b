"""``Timestamp``: aware in, aware UTC out, exact to the microsecond, on SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Table,
    create_engine,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Engine

from sidequest_sql.schema import Timestamp

metadata = MetaData()
moments = Table("moments", metadata, Column("id", Integer, primary_key=True), Column("at", Timestamp()))

offsets = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)),
)
# A day inside datetime's range, so that every offset still has a UTC value.
aware = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def round_trip(engine: Engine, value: datetime | None) -> datetime | None:
    with engine.begin() as conn:
        key = conn.execute(insert(moments).values(at=value)).inserted_primary_key[0]
        return conn.scalar(select(moments.c.at).where(moments.c.id == key))


@settings(max_examples=300, deadline=None)
@given(aware)
def test_aware_datetimes_come_back_as_the_same_instant_in_utc(engine: Engine, value: datetime) -> None:
    back = round_trip(engine, value)
    assert back is not None
    assert back.tzinfo is UTC
    assert back == value
    assert back.replace(tzinfo=None) == value.astimezone(UTC).replace(tzinfo=None)


@settings(max_examples=100, deadline=None)
@given(aware, aware)
def test_stored_times_compare_in_sql_as_instants(engine: Engine, a: datetime, b: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(moments.delete())
        conn.execute(insert(moments), [{"id": 1, "at": a}, {"id": 2, "at": b}])
        earlier = set(conn.scalars(select(moments.c.id).where(moments.c.at < b)))
        ordered = list(conn.scalars(select(moments.c.at).order_by(moments.c.at, moments.c.id)))
    assert earlier == ({1} if a < b else set())
    assert ordered == sorted([a, b])


def test_extremes_round_trip(engine: Engine) -> None:
    for value in (datetime(1, 1, 1, tzinfo=UTC), datetime.max.replace(tzinfo=UTC)):
        assert round_trip(engine, value) == value


def test_none_round_trips(engine: Engine) -> None:
    assert round_trip(engine, None) is None


def test_a_naive_value_in_the_database_comes_back_utc_aware(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO moments (id, at) VALUES (1000, '2030-01-15 12:30:45.123456')"))
        back = conn.scalar(select(moments.c.at).where(moments.c.id == 1000))
    assert back == datetime(2030, 1, 15, 12, 30, 45, 123456, tzinfo=UTC)
    assert back.tzinfo is UTC


def test_result_processing() -> None:
    kind = Timestamp()
    naive = datetime(2030, 1, 15, 12, 30)
    assert kind.process_result_value(naive, sqlite.dialect()) == naive.replace(tzinfo=UTC)
    shifted = datetime(2030, 1, 15, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    out = kind.process_result_value(shifted, postgresql.dialect())
    assert out == shifted and out.tzinfo is UTC and out.hour == 12
    assert kind.process_result_value(None, sqlite.dialect()) is None


def test_bind_processing_per_dialect() -> None:
    kind = Timestamp()
    value = datetime(2030, 1, 15, 14, 30, 0, 1, tzinfo=timezone(timedelta(hours=2)))
    on_sqlite = kind.process_bind_param(value, sqlite.dialect())
    assert on_sqlite == datetime(2030, 1, 15, 12, 30, 0, 1) and on_sqlite.tzinfo is None
    on_postgres = kind.process_bind_param(value, postgresql.dialect())
    assert on_postgres == value and on_postgres.utcoffset() == timedelta(0)


def test_column_types_per_dialect() -> None:
    assert Timestamp().dialect_impl(postgresql.dialect()).timezone is True
    assert Timestamp().dialect_impl(sqlite.dialect()).timezone is False


def _sqlalchemy_chain(dialect: Dialect) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """What SQLAlchemy alone would do with a ``Timestamp``: ``process_bind_param``
    then the impl's bind processor, the impl's result processor then
    ``process_result_value``."""
    kind = Timestamp()
    impl = kind.load_dialect_impl(dialect)
    to_impl = impl.bind_processor(dialect) or (lambda value: value)
    from_impl = impl.result_processor(dialect, None) or (lambda value: value)
    return (
        lambda value: to_impl(kind.process_bind_param(value, dialect)),
        lambda value: kind.process_result_value(from_impl(value), dialect),
    )


@settings(max_examples=300, deadline=None)
@given(aware)
def test_sqlite_processors_write_and_read_what_sqlalchemys_would(value: datetime) -> None:
    dialect = sqlite.dialect()
    bind, read = _sqlalchemy_chain(dialect)
    ours_bind, ours_read = Timestamp().bind_processor(dialect), Timestamp().result_processor(dialect, None)
    text_form = bind(value)
    assert ours_bind(value) == text_form
    assert ours_read(text_form) == read(text_form) == value
    assert ours_read(text_form).tzinfo is UTC
    # As SQLite's CURRENT_TIMESTAMP writes it: no microseconds.
    assert ours_read(text_form[:19]) == read(text_form[:19])
    assert ours_bind(None) is None and ours_read(None) is None


@settings(max_examples=100, deadline=None)
@given(aware)
def test_postgres_result_processor_reads_what_sqlalchemys_would(value: datetime) -> None:
    dialect = postgresql.dialect()
    _, read = _sqlalchemy_chain(dialect)
    ours = Timestamp().result_processor(dialect, None)
    assert ours(value) == read(value) == value
    assert ours(value).tzinfo is UTC
    assert ours(None) is None
