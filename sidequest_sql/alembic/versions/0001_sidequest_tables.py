"""The queues and jobs tables, as Node Sidequest's migrations 1 and 2 create them.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from sidequest_sql.schema import CurrentTimestamp, Name, Timestamp, big_id

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def json_document() -> sa.types.TypeEngine[Any]:
    """A JSON column as this revision made it: declared ``JSON`` on SQLite too
    (revision 0008 declares it ``TEXT`` there)."""
    return sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sidequest_queues",
        sa.Column("id", big_id(), primary_key=True, autoincrement=True),
        sa.Column("name", Name(), nullable=False),
        sa.Column("state", Name(), nullable=False),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="sidequest_queues_pkey"),
        sa.UniqueConstraint("name", name="sidequest_queues_name_unique"),
    )
    op.create_table(
        "sidequest_jobs",
        sa.Column("id", big_id(), primary_key=True, autoincrement=True),
        sa.Column("queue", Name(), nullable=False),
        sa.Column("state", Name(), nullable=False),
        sa.Column("script", Name(), nullable=False),
        sa.Column("class", Name(), nullable=False),
        sa.Column("args", json_document(), nullable=False),
        sa.Column("constructor_args", json_document(), nullable=False),
        sa.Column("timeout", sa.Integer, nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("result", json_document(), nullable=True),
        sa.Column("errors", json_document(), nullable=True),
        sa.Column("inserted_at", Timestamp(), nullable=False, server_default=CurrentTimestamp()),
        sa.Column("attempted_at", Timestamp(), nullable=True),
        sa.Column("available_at", Timestamp(), nullable=False),
        sa.Column("completed_at", Timestamp(), nullable=True),
        sa.Column("failed_at", Timestamp(), nullable=True),
        sa.Column("canceled_at", Timestamp(), nullable=True),
        sa.Column("claimed_by", Name(), nullable=True),
        sa.Column("claimed_at", Timestamp(), nullable=True),
        sa.Column("unique_digest", Name(), nullable=True),
        sa.Column("uniqueness_config", json_document(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="sidequest_jobs_pkey"),
    )
    op.create_index("sidequest_jobs_queue_index", "sidequest_jobs", ["queue"])
    op.create_index(
        "sidequest_jobs_unique_digest_active_idx",
        "sidequest_jobs",
        ["unique_digest"],
        unique=True,
        postgresql_where=sa.text("unique_digest IS NOT NULL"),
        sqlite_where=sa.text("unique_digest IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("sidequest_jobs")
    op.drop_table("sidequest_queues")
