"""Indexes that serve the statistics, so that they do not read every row.

- ``(queue, state)``: the counts per state and per queue and state read this
  small index alone, in order (on Postgres an index-only scan), not the table.
- ``COALESCE(completed_at, failed_at, canceled_at, attempted_at, claimed_at,
  inserted_at)``, the time a job counts at: time-bounded counts read only the
  rows of their window. Postgres and SQLite only: MariaDB cannot index an
  expression.

Building them locks the jobs table against writes for as long as it takes
(seconds per million rows).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

EXPRESSION_INDEX_DIALECTS = ("postgresql", "sqlite")


def upgrade() -> None:
    op.create_index("sidequest_jobs_queue_state_idx", "sidequest_jobs", ["queue", "state"])
    if op.get_bind().dialect.name in EXPRESSION_INDEX_DIALECTS:
        op.create_index(
            "sidequest_jobs_counted_at_idx",
            "sidequest_jobs",
            [sa.text("coalesce(completed_at, failed_at, canceled_at, attempted_at, claimed_at, inserted_at)")],
        )


def downgrade() -> None:
    if op.get_bind().dialect.name in EXPRESSION_INDEX_DIALECTS:
        op.drop_index("sidequest_jobs_counted_at_idx", table_name="sidequest_jobs")
    op.drop_index("sidequest_jobs_queue_state_idx", table_name="sidequest_jobs")
