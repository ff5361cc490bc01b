"""A partial index over waiting jobs that serves the claim.

With it a claim reads only waiting rows of its queue in claim order, so its
cost does not grow with the finished jobs kept in the table.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "sidequest_jobs_claim_idx",
        "sidequest_jobs",
        ["queue", "inserted_at", "id"],
        postgresql_where=sa.text("state = 'waiting'"),
        sqlite_where=sa.text("state = 'waiting'"),
    )


def downgrade() -> None:
    op.drop_index("sidequest_jobs_claim_idx", table_name="sidequest_jobs")
