"""MariaDB: parameters PyMySQL would write wrong, and statements the server would drop.

See ``sidequest_sql.dialects.mysql_parameters``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum, IntEnum
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import sidequest_sql as sq
from sidequest_sql import NewJobData
from sidequest_sql.base import SQLBackend

pytestmark = pytest.mark.mariadb

PAGE = Path(__file__).resolve().parents[2] / "docs" / "bad-input.md"


class Colour(str, Enum):
    RED = "red"


class Level(IntEnum):
    TWO = 2


class Code(int):
    def __str__(self) -> str:
        return f"Code {int(self)}"


class Loud(datetime):
    def __str__(self) -> str:
        return "whenever"


def job(**fields: Any) -> NewJobData:
    return NewJobData(**{"queue": "default", "script": "jobs.js", "job_class": "Echo", **fields})


@pytest.fixture
def store(mariadb_url: str) -> Iterator[SQLBackend]:
    backend = sq.create_backend(mariadb_url)
    backend.migrate()
    backend.truncate()
    try:
        yield backend
    finally:
        backend.close()


def max_allowed_packet(store: SQLBackend) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT @@max_allowed_packet")).scalar_one())


def snapshot(store: SQLBackend) -> tuple[Any, ...]:
    return store.list_jobs(limit=1000), store.list_queues()


def test_enum_members_and_subclasses_are_stored_as_their_values(store: SQLBackend) -> None:
    queue = store.create_new_queue(Colour.RED, concurrency=Level.TWO)
    assert store.get_queue("red") == queue and queue.name == "red"
    assert store.update_queue(Code(queue.id), priority=Code(7)).priority == 7
    made = store.create_new_jobs([job(queue=Colour.RED), job(queue="red", available_at=Loud(2000, 1, 1, tzinfo=UTC))])
    assert store.get_job(made[1].id).available_at == datetime(2000, 1, 1, tzinfo=UTC)  # type: ignore[union-attr]
    claimed = store.claim_pending_job(Colour.RED, Level.TWO)
    assert sorted(found.id for found in claimed) == sorted(found.id for found in made)
    assert store.list_jobs(queue=[Colour.RED], limit=Level.TWO, offset=Code(0)) == store.list_jobs(queue="red")


def test_a_statement_the_server_would_drop_is_refused_before_it_is_sent(store: SQLBackend) -> None:
    limit = max_allowed_packet(store)
    kept = store.create_new_job(job())
    before = snapshot(store)
    # Fits in characters; escaped twice (JSON, then SQL) it is twice the limit.
    quotes = '"' * (limit // 2 + 1)
    calls = [
        lambda: store.create_new_job(job(args=["x" * limit])),
        lambda: store.create_new_job(job(args=[quotes])),
        lambda: store.create_new_jobs([job(), job(), job(args={"big": "x" * limit})]),
        lambda: store.update_job(kept.id, state="completed", result="x" * limit),
        lambda: store.list_jobs(args=["x" * limit]),
    ]
    pattern = documented_message().replace("N", r"\d+").replace("16777216", str(limit))
    for call, name in zip(calls, ["args", "args", "args", "result", "args"], strict=True):
        with pytest.raises(ValueError) as info:
            call()
        assert re.fullmatch(pattern.replace("args", name, 1), str(info.value)), str(info.value)
        assert not isinstance(info.value.__context__, sa.exc.DBAPIError)
    assert snapshot(store) == before
    assert store.get_job(kept.id) == kept


def documented_message() -> str:
    """The message docs/bad-input.md gives for an over-long statement, as a pattern."""
    [row] = [line for line in PAGE.read_text().splitlines() if "max_allowed_packet of" in line]
    message = row.rsplit(" | ", 1)[1].strip(" |`")
    return re.escape(message)
