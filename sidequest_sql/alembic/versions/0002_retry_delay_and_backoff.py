"""retry_delay and backoff_strategy, as Node Sidequest's migration 3 adds them.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sidequest_sql.schema import LiteralDefault

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sidequest_jobs", sa.Column("retry_delay", sa.Integer, nullable=True))
    op.add_column(
        "sidequest_jobs",
        sa.Column("backoff_strategy", sa.Text, nullable=False, server_default=LiteralDefault("exponential")),
    )


def downgrade() -> None:
    with op.batch_alter_table("sidequest_jobs") as batch:
        batch.drop_column("backoff_strategy")
        batch.drop_column("retry_delay")
