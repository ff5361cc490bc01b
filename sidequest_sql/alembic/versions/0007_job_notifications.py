"""Postgres only: triggers that NOTIFY when a waiting job is committed, for ``wait_for_jobs``.

The channel is ``sidequest_jobs.<schema of the table>`` (the md5 of the
schema's name in its place when that would not fit in 63 bytes), the payload
a queue's name; ``sidequest_sql.dialects.pg_notify.channel_for`` computes the
same. NOTIFY is delivered when, and only if, the transaction commits.

- After each INSERT statement, one notification per distinct queue of the
  waiting rows it added, read from the statement's transition table: a batch
  of 10,000 jobs in one queue costs one notification, not 10,000 (NOTIFY
  would fold identical ones together, but only after a call per row).
- After each UPDATE of a row that ends up waiting and was not, or whose
  ``available_at`` or queue changed: a row trigger, so that claims and
  completions, the updates nearly all are, fail its WHEN condition without
  any call, and build no transition table.

Other databases get no triggers: their waits poll.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Both functions begin by naming the channel of the table's schema.
_CHANNEL = """
DECLARE
    channel text := 'sidequest_jobs.' || TG_TABLE_SCHEMA;
BEGIN
    IF octet_length(channel) > 63 THEN
        channel := 'sidequest_jobs.' || md5(TG_TABLE_SCHEMA);
    END IF;
"""

UPGRADE = [
    f"""
    CREATE FUNCTION sidequest_jobs_notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    {_CHANNEL}
        PERFORM pg_notify(channel, woken.queue)
        FROM (SELECT DISTINCT queue FROM sidequest_inserted_jobs WHERE state = 'waiting') AS woken;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER sidequest_jobs_notify_inserted AFTER INSERT ON sidequest_jobs
    REFERENCING NEW TABLE AS sidequest_inserted_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION sidequest_jobs_notify_inserted()
    """,
    f"""
    CREATE FUNCTION sidequest_jobs_notify_waiting() RETURNS trigger LANGUAGE plpgsql AS $$
    {_CHANNEL}
        PERFORM pg_notify(channel, NEW.queue);
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER sidequest_jobs_notify_waiting AFTER UPDATE ON sidequest_jobs FOR EACH ROW
    WHEN (NEW.state = 'waiting' AND (OLD.state <> 'waiting' OR OLD.available_at <> NEW.available_at
                                     OR OLD.queue <> NEW.queue))
    EXECUTE FUNCTION sidequest_jobs_notify_waiting()
    """,
]

DOWNGRADE = [
    "DROP TRIGGER sidequest_jobs_notify_waiting ON sidequest_jobs",
    "DROP FUNCTION sidequest_jobs_notify_waiting()",
    "DROP TRIGGER sidequest_jobs_notify_inserted ON sidequest_jobs",
    "DROP FUNCTION sidequest_jobs_notify_inserted()",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWNGRADE:
            op.execute(statement)
