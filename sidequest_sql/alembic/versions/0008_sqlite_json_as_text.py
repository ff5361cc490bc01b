"""JSON documents kept as their text on SQLite: the JSON columns declared ``TEXT``.

SQLite gives a column declared ``JSON`` NUMERIC affinity, so a document that
is a bare number (``result=12``, ``constructor_args=3.313808515801691e-303``)
was stored as a number, converted by SQLite's text-to-double conversion,
which is not correctly rounded: the second came back as
3.3138085158016914e-303. Declared ``TEXT`` the columns keep the text this
library writes.

SQLite cannot change a column's declared type, so the jobs table is copied
(alembic's batch mode), every row, index and constraint with it. Two indexes
SQLite's reflection cannot read whole, the claim index (its ``DESC``
column) and the index on the time a job counts at (an expression), are
dropped before the copy and made again after it, as revisions 0004 and 0005
made them. Copying locks the database for as long as it takes (measured:
1.9 s for 200,000 jobs, a tenth of them holding a bare number).

A document an older version stored as a number is copied as the text of
that very number: Python's shortest text that reads back as the same
double (SQLite's own, 15 digits, would change it again), so that it reads
back as before, and compares with ``list_jobs(args=…)`` as the text written
for it now does.

Downgrade declares the columns ``JSON`` again (a bare number is then stored
as a number again, as before). SQLite only: nothing changes elsewhere.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLE = "sidequest_jobs"
# Column name → whether it is nullable.
JSON_COLUMNS = {"args": False, "constructor_args": False, "result": True, "errors": True, "uniqueness_config": True}
CLAIM_INDEX = "sidequest_jobs_claim_idx"
COUNTED_AT_INDEX = "sidequest_jobs_counted_at_idx"


def _on_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _declare(was: sa.types.TypeEngine[Any], now: sa.types.TypeEngine[Any]) -> None:
    """Copy the jobs table with its JSON columns declared ``now`` instead of ``was``."""
    op.drop_index(CLAIM_INDEX, table_name=TABLE)
    op.drop_index(COUNTED_AT_INDEX, table_name=TABLE)
    with op.batch_alter_table(TABLE, recreate="always") as batch:
        for name, nullable in JSON_COLUMNS.items():
            batch.alter_column(name, type_=now, existing_type=was, existing_nullable=nullable)
    waiting = sa.text("state = 'waiting'")
    op.create_index(
        CLAIM_INDEX, TABLE, ["queue", sa.text("priority DESC"), "inserted_at", "id"], sqlite_where=waiting
    )
    op.create_index(
        COUNTED_AT_INDEX,
        TABLE,
        [sa.text("coalesce(completed_at, failed_at, canceled_at, attempted_at, claimed_at, inserted_at)")],
    )


def _stored_as_numbers(conn: sa.Connection) -> dict[str, list[tuple[int, float]]]:
    """Per JSON column, the id and value of each document stored as a number."""
    return {
        name: [
            (id_, value)
            for id_, value in conn.execute(
                sa.text(f"SELECT id, {name} FROM {TABLE} WHERE typeof({name}) IN ('integer', 'real')")
            )
        ]
        for name in JSON_COLUMNS
    }


def upgrade() -> None:
    if not _on_sqlite():
        return
    conn = op.get_bind()
    numbers = _stored_as_numbers(conn)
    _declare(sa.JSON(), sa.Text())
    for name, rows in numbers.items():
        if rows:
            conn.execute(
                sa.text(f"UPDATE {TABLE} SET {name} = :document WHERE id = :id"),
                [{"id": id_, "document": json.dumps(value)} for id_, value in rows],
            )


def downgrade() -> None:
    if _on_sqlite():
        _declare(sa.Text(), sa.JSON())
