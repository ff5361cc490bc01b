"""PostgreSQL over psycopg 3: the reference dialect.

- ``postgresql://``, ``postgres://`` and ``postgresql+psycopg://`` all use
  psycopg 3; query parameters such as ``?sslmode=require`` reach libpq as
  they are.
- Claims lock rows with ``FOR UPDATE SKIP LOCKED`` in a materialized CTE, so
  claimers never wait for each other and never take the same job.
- ``schema=`` puts every table, and the migration version table, in that
  schema; ``migrate()`` creates it.
- An operation that is a single statement (a claim, an enqueue, an
  ``update_job``, most reads) runs in autocommit: one round trip, no
  ``BEGIN``/``COMMIT``. A single statement is atomic in Postgres, and the
  claim's row locks last until it ends. Batches of several INSERTs and
  operations of several statements run in one transaction.
- Behind PgBouncer in transaction pooling mode, pass
  ``connect_args={"prepare_threshold": None}``: psycopg otherwise prepares
  statements that another server connection does not know.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, event, func, type_coerce
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import IntegrityError

from ..base import SQLBackend, TimeUnit
from ..schema import Timestamp

_DATE_TRUNC_FIELDS = {"m": "minute", "h": "hour", "d": "day"}


class PostgresBackend(SQLBackend):
    supports_schemas = True
    single_statement_autocommit = True

    @classmethod
    def engine_url(cls, url: URL) -> URL:
        if url.drivername in ("postgres", "postgresql"):
            return url.set(drivername="postgresql+psycopg")
        return url

    def configure_engine(self, engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _utc_session(dbapi_connection: Any, _record: Any) -> None:
            # psycopg reads timestamptz in the session's TimeZone: east of UTC,
            # an instant late in year 9999 would overflow datetime on the way out.
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True
            dbapi_connection.execute("SET TIME ZONE 'UTC'")
            dbapi_connection.autocommit = autocommit

    def time_bucket(self, moment: ColumnElement[datetime], unit: TimeUnit) -> ColumnElement[datetime]:
        # The three-argument form truncates in UTC whatever the session's TimeZone.
        return type_coerce(func.date_trunc(_DATE_TRUNC_FIELDS[unit], moment, "UTC"), Timestamp())

    def violated_constraint(self, error: IntegrityError) -> str | None:
        diag: Any = getattr(error.orig, "diag", None)
        return getattr(diag, "constraint_name", None)
