"""Node Sidequest's migrations recorded as done, so that its own ``migrate()`` leaves these tables be.

Node Sidequest (``@sidequest/postgres-backend``) migrates with knex, which
keeps what it ran in ``sidequest_migrations`` (its ``migrations.tableName``)
and guards it with ``sidequest_migrations_lock`` (knex's ``_lock`` table).
On tables this library made, Node's ``migrate()`` would otherwise run its
migration 1 again, fail on the existing ``sidequest_queues`` and log the
error on every start. This revision records, under knex's names, the three
Sidequest migrations whose effect the tables hold (revisions 0001 and 0002),
in one new knex batch; the Node process then finds nothing to run.

Postgres only: on other databases it does nothing.

- knex's two tables are created as knex creates them (``increments``,
  ``string``, ``integer``, ``timestamp``: the same columns, types and
  constraint names, and the lock table's one row, unlocked) where they are
  missing, and left as they are where Node made them; a migration Node
  already recorded is not recorded twice.
- The lock table's row is locked (``FOR UPDATE``) before anything is read or
  written, as knex locks it around its own batch, so a Node ``migrate()``
  running meanwhile waits and then sees these rows.
- They go where Node Sidequest puts them for the same schema: Sidequest's
  Postgres backend takes a schema as knex's ``searchPath`` and keeps knex's
  tables in it (``migrations.schemaName``), and ``schema=`` puts them there
  too; with no schema, in ``current_schema()``, as knex's ``hasTable`` looks.
- What it wrote is listed in ``sidequest_sql_knex_records``, so that the
  downgrade deletes exactly those rows, and drops knex's tables only if it
  made them and they then hold nothing else.

A Node Sidequest release with a migration newer than these three runs just
that one on its next ``migrate()``, in a batch of its own, and this
library's ``migrate()`` leaves it be. This library reads and writes only its
own columns: a new index, or a new column that is nullable or has a
default, changes nothing for it; a new column without a default would make
its inserts fail until a release of it knows that column. (Should such a
migration make an index or constraint under a name this library already
uses, knex's batch fails and rolls back; Node Sidequest logs the error and
goes on.) A Node release older than migration 3 finds a migration recorded
that it does not have, and knex refuses to run ("the migration directory is
corrupt"), as it would after a newer Node process had migrated.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sidequest_sql.schema import KNEX_LOCK_TABLE, KNEX_MIGRATIONS_TABLE, KNEX_RECORDS_TABLE

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The migration files of @sidequest/postgres-backend whose effect revisions 0001 and 0002 hold.
SIDEQUEST_MIGRATIONS = (
    "1_create_queues.cjs",
    "2_create_jobs_table.cjs",
    "3_create_exponential_backoff_column.cjs",
)
# As knex 3 creates them (``ensureTable`` of its migrator) on Postgres.
KNEX_DDL = {
    KNEX_MIGRATIONS_TABLE: (
        f'CREATE TABLE "{KNEX_MIGRATIONS_TABLE}" ("id" serial primary key, "name" varchar(255), '
        '"batch" integer, "migration_time" timestamptz)'
    ),
    KNEX_LOCK_TABLE: f'CREATE TABLE "{KNEX_LOCK_TABLE}" ("index" serial primary key, "is_locked" integer)',
}
KNEX_MIGRATIONS = sa.table(KNEX_MIGRATIONS_TABLE, sa.column("name"), sa.column("batch"), sa.column("migration_time"))
RECORDS = sa.table(KNEX_RECORDS_TABLE, sa.column("kind"), sa.column("name"))


def _on_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _existing(conn: sa.Connection) -> set[str]:
    """Which of knex's tables exist where knex looks for them: in the current schema."""
    return set(
        conn.scalars(
            sa.text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name IN :names"
            ).bindparams(sa.bindparam("names", expanding=True)),
            {"names": list(KNEX_DDL)},
        )
    )


def _lock(conn: sa.Connection) -> None:
    """Wait for a Node ``migrate()`` under way, and hold it off until this transaction ends."""
    conn.exec_driver_sql(f'SELECT * FROM "{KNEX_LOCK_TABLE}" FOR UPDATE')


def upgrade() -> None:
    if not _on_postgres():
        return
    conn = op.get_bind()
    op.create_table(
        KNEX_RECORDS_TABLE,
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", name=f"{KNEX_RECORDS_TABLE}_pkey"),
    )
    existing = _existing(conn)
    made = [table for table in KNEX_DDL if table not in existing]
    for table in made:
        conn.exec_driver_sql(KNEX_DDL[table])
    if KNEX_LOCK_TABLE in made:
        conn.exec_driver_sql(f'INSERT INTO "{KNEX_LOCK_TABLE}" ("is_locked") VALUES (0)')
    _lock(conn)
    recorded = set(conn.scalars(sa.select(KNEX_MIGRATIONS.c.name)))
    missing = [name for name in SIDEQUEST_MIGRATIONS if name not in recorded]
    if missing:
        batch = conn.scalar(sa.select(sa.func.coalesce(sa.func.max(KNEX_MIGRATIONS.c.batch), 0) + 1))
        conn.execute(
            KNEX_MIGRATIONS.insert().values(migration_time=sa.func.now()),
            [{"name": name, "batch": batch} for name in missing],
        )
    wrote = [{"kind": "table", "name": table} for table in made]
    wrote += [{"kind": "migration", "name": name} for name in missing]
    if wrote:
        conn.execute(RECORDS.insert(), wrote)


def downgrade() -> None:
    if not _on_postgres():
        return
    conn = op.get_bind()
    wrote: dict[str, set[str]] = {"table": set(), "migration": set()}
    for kind, name in conn.execute(sa.select(RECORDS.c.kind, RECORDS.c.name)):
        wrote[kind].add(name)
    existing = _existing(conn)
    if KNEX_LOCK_TABLE in existing:
        _lock(conn)
    if KNEX_MIGRATIONS_TABLE in existing:
        conn.execute(KNEX_MIGRATIONS.delete().where(KNEX_MIGRATIONS.c.name.in_(sorted(wrote["migration"]))))
        # knex's tables go only if this revision made them and Node recorded nothing in them since.
        left = conn.scalar(sa.select(sa.func.count()).select_from(KNEX_MIGRATIONS))
        if KNEX_MIGRATIONS_TABLE in wrote["table"] and left == 0:
            op.drop_table(KNEX_MIGRATIONS_TABLE)
            if KNEX_LOCK_TABLE in wrote["table"]:
                op.drop_table(KNEX_LOCK_TABLE)
    op.drop_table(KNEX_RECORDS_TABLE)
