"""The raw baseline's records: ``JobData`` from the driver's rows, in plain code.

What a competent user of the bare driver writes to turn the rows of the
library's statements (every column of the jobs table, in table order) into
the same records the library returns: each column taken by position, JSON
text loaded where the driver returns text, naive UTC times (SQLite's text,
MySQL's DATETIME) made aware. No argument checks and no SQLAlchemy, so that
a ratio against this baseline measures only the library's own layers.
``checks.same_records`` confirms that both build equal records for the same
rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sidequest_sql import JobData

JobDecoder = Callable[[Sequence[Any]], JobData]

# The jobs table's columns in order, as ``RETURNING`` and ``SELECT *`` give them.
COLUMNS = (
    "id", "queue", "state", "script", "job_class", "args", "constructor_args", "timeout", "attempt",
    "max_attempts", "result", "errors", "inserted_at", "attempted_at", "available_at", "completed_at",
    "failed_at", "canceled_at", "claimed_by", "claimed_at", "unique_digest", "uniqueness_config",
    "retry_delay", "backoff_strategy", "priority",
)


def job_from_psycopg(row: Sequence[Any]) -> JobData:
    """psycopg loads jsonb and reads timestamptz as aware datetimes (UTC in the session's UTC zone)."""
    return JobData(
        id=row[0], queue=row[1], state=row[2], script=row[3], job_class=row[4],
        args=row[5], constructor_args=row[6], timeout=row[7], attempt=row[8], max_attempts=row[9],
        result=row[10], errors=row[11], inserted_at=row[12], attempted_at=row[13], available_at=row[14],
        completed_at=row[15], failed_at=row[16], canceled_at=row[17], claimed_by=row[18], claimed_at=row[19],
        unique_digest=row[20], uniqueness_config=row[21], retry_delay=row[22], backoff_strategy=row[23],
        priority=row[24],
    )


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _utc_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def job_from_sqlite(row: Sequence[Any]) -> JobData:
    """sqlite3 returns JSON as text and times as naive UTC text."""
    return JobData(
        id=row[0], queue=row[1], state=row[2], script=row[3], job_class=row[4],
        args=json.loads(row[5]), constructor_args=json.loads(row[6]), timeout=row[7], attempt=row[8],
        max_attempts=row[9], result=_json(row[10]), errors=_json(row[11]),
        inserted_at=datetime.fromisoformat(row[12]).replace(tzinfo=UTC), attempted_at=_utc_text(row[13]),
        available_at=datetime.fromisoformat(row[14]).replace(tzinfo=UTC), completed_at=_utc_text(row[15]),
        failed_at=_utc_text(row[16]), canceled_at=_utc_text(row[17]), claimed_by=row[18],
        claimed_at=_utc_text(row[19]), unique_digest=row[20], uniqueness_config=_json(row[21]),
        retry_delay=row[22], backoff_strategy=row[23], priority=row[24],
    )


def _any_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _any_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def job_from_dbapi(row: Sequence[Any]) -> JobData:
    """Any other driver (PyMySQL): JSON as text or loaded, times as naive UTC datetimes."""
    return JobData(
        id=row[0], queue=row[1], state=row[2], script=row[3], job_class=row[4],
        args=_any_json(row[5]), constructor_args=_any_json(row[6]), timeout=row[7], attempt=row[8],
        max_attempts=row[9], result=_any_json(row[10]), errors=_any_json(row[11]),
        inserted_at=_any_time(row[12]), attempted_at=_any_time(row[13]),  # type: ignore[arg-type]
        available_at=_any_time(row[14]), completed_at=_any_time(row[15]),  # type: ignore[arg-type]
        failed_at=_any_time(row[16]), canceled_at=_any_time(row[17]), claimed_by=row[18],
        claimed_at=_any_time(row[19]), unique_digest=row[20], uniqueness_config=_any_json(row[21]),
        retry_delay=row[22], backoff_strategy=row[23], priority=row[24],
    )


DECODERS: dict[str, JobDecoder] = {
    "psycopg": job_from_psycopg,
    "sqlite3": job_from_sqlite,
    "aiosqlite": job_from_sqlite,
    "dbapi": job_from_dbapi,
}
