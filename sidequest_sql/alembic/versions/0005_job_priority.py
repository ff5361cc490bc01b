"""A priority per job, and the claim index in the claim's order: highest priority first.

The column has a default, so a Node Sidequest process that inserts rows
without it still works (its jobs get priority 0).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CLAIM_INDEX = "sidequest_jobs_claim_idx"


def _claim_index(columns: list[str | sa.TextClause]) -> None:
    waiting = sa.text("state = 'waiting'")
    op.create_index(CLAIM_INDEX, "sidequest_jobs", columns, postgresql_where=waiting, sqlite_where=waiting)


def upgrade() -> None:
    op.add_column("sidequest_jobs", sa.Column("priority", sa.Integer, nullable=False, server_default=sa.text("0")))
    op.drop_index(CLAIM_INDEX, table_name="sidequest_jobs")
    _claim_index(["queue", sa.text("priority DESC"), "inserted_at", "id"])


def downgrade() -> None:
    op.drop_index(CLAIM_INDEX, table_name="sidequest_jobs")
    _claim_index(["queue", "inserted_at", "id"])
    if op.get_bind().dialect.name == "sqlite":
        # Not a batch: its copy of the table would lose the index on an
        # expression (revision 0004), which SQLite's reflection cannot read.
        # SQLite drops a column itself since 3.35.
        op.execute("ALTER TABLE sidequest_jobs DROP COLUMN priority")
    else:
        op.drop_column("sidequest_jobs", "priority")
