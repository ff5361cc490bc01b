"""What a backend hands its driver, for tests that read the SQL it sends (and EXPLAIN it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from sidequest_sql.base import SQLBackend


@contextmanager
def job_queries(backend: SQLBackend) -> Iterator[list[tuple[str, Any]]]:
    """The statements on the jobs table the backend hands its driver while the block runs.

    Listening makes the backend take its ordinary path (``SQLBackend._alone``),
    which sends the same SQL.
    """
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if "sidequest_jobs" in statement:
            sent.append((statement, parameters))

    sa.event.listen(backend.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(backend.engine, "before_cursor_execute", record)
