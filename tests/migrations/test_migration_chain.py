"""The shipped alembic chain: one head, empty → head matches the models, round trips keep rows."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from alembic import command

from sidequest_sql import DuplicatedJobError, NewJobData
from sidequest_sql.migrations import _config as migrations_config
from sidequest_sql.migrations import revisions, script_directory
from sidequest_sql.schema import CLAIM_INDEX, COUNTED_AT_INDEX, QUEUE_STATE_INDEX, VERSION_TABLE, jobs, queues

from migration_database import Database

REVISIONS = revisions()
TABLES = {queues.name, jobs.name}
JSON_COLUMNS = ("args", "constructor_args", "result", "errors", "uniqueness_config")


def roll_back_through(store: object, revision: str) -> list[str]:
    """Roll back every revision down to ``revision`` included; the ones rolled back, newest first."""
    done = [store.rollback_migration() for _ in REVISIONS[REVISIONS.index(revision) :]]  # type: ignore[attr-defined]
    assert done == REVISIONS[REVISIONS.index(revision) :][::-1]
    return done


def test_the_revisions_are_numbered_in_order() -> None:
    assert REVISIONS == [f"{n:04d}" for n in range(1, len(REVISIONS) + 1)]



def version_rows(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.scalars(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")))


# -- the script directory -------------------------------------------------------------


def test_exactly_one_head() -> None:
    assert script_directory().get_heads() == [REVISIONS[-1]]


def test_one_linear_chain_from_base_to_head() -> None:
    scripts = script_directory()
    chain = [script.revision for script in scripts.walk_revisions("base", "heads")]
    assert chain == REVISIONS[::-1]
    assert scripts.get_bases() == [REVISIONS[0]]
    for script in scripts.walk_revisions():
        assert not script.is_merge_point and not script.is_branch_point


# -- upgrade ------------------------------------------------------------------------------


def test_empty_database_to_head_matches_the_models(database: Database) -> None:
    assert database.table_names() == set()

    assert database.backend().migrate() == REVISIONS

    assert database.table_names() == TABLES | {VERSION_TABLE} | database.node_bookkeeping
    assert version_rows(database) == [REVISIONS[-1]]
    assert database.schema_differences() == []


def test_the_comparison_sees_a_missing_revision(database: Database) -> None:
    # Guards the test above against an autogenerate comparison that sees nothing.
    store = database.backend()
    store.migrate()
    roll_back_through(store, "0003")

    differences = database.schema_differences()

    # Changes to a column come as a list of them, one list per column.
    changed = [change for d in differences if isinstance(d, list) for change in d]
    differences = [d for d in differences if not isinstance(d, list)]
    indexes = sorted({d[1].name for d in differences if d[0] == "add_index"})
    columns = [d[3].name for d in differences if d[0] == "add_column"]
    assert indexes == sorted([CLAIM_INDEX, COUNTED_AT_INDEX, QUEUE_STATE_INDEX])
    assert columns == ["priority"]
    assert {d[0] for d in differences} == {"add_index", "add_column"}, differences
    # Revision 0008 declares SQLite's JSON columns TEXT.
    assert sorted((change[0], change[3]) for change in changed) == (
        [("modify_type", name) for name in sorted(JSON_COLUMNS)] if database.dialect == "sqlite" else []
    )


def test_migrate_twice_applies_nothing_the_second_time(database: Database) -> None:
    assert database.backend().migrate() == REVISIONS
    assert database.backend().migrate() == []
    assert version_rows(database) == [REVISIONS[-1]]
    assert database.schema_differences() == []


# -- downgrade ---------------------------------------------------------------------------


def test_rollback_one_step_at_a_time_then_up_again(database: Database) -> None:
    store = database.backend()
    store.migrate()

    for expected in reversed(REVISIONS):
        assert store.rollback_migration() == expected
        below = REVISIONS[: REVISIONS.index(expected)]
        assert version_rows(database) == below[-1:]
    assert store.rollback_migration() is None
    assert store.rollback_migration() is None
    assert database.table_names() <= {VERSION_TABLE}

    assert store.migrate() == REVISIONS
    assert database.schema_differences() == []


def test_each_step_up_and_down_again_from_every_revision(database: Database) -> None:
    store = database.backend()
    for done, revision in enumerate(REVISIONS, start=1):
        store.migrate()
        for _ in range(len(REVISIONS) - done):
            store.rollback_migration()
        assert version_rows(database) == [revision]
        assert store.rollback_migration() == revision
        assert store.migrate() == REVISIONS[done - 1 :]
        assert database.schema_differences() == []


def test_a_job_written_at_head_survives_rolling_back_the_claim_index(database: Database) -> None:
    store = database.backend()
    store.migrate()
    store.create_new_queue("mail", concurrency=3)
    job = store.create_new_job(
        NewJobData("mail", "send.js", "Send", args=[1, {"to": "a@b"}], retry_delay=5, backoff_strategy="fixed")
    )

    roll_back_through(store, "0003")
    with database.engine.connect() as conn:
        row = conn.execute(sa.text(f"SELECT id, queue, class, retry_delay FROM {jobs.name}")).one()
    assert tuple(row) == (job.id, "mail", "Send", 5)
    assert store.migrate() == REVISIONS[REVISIONS.index("0003") :]

    assert store.get_job(job.id) == job
    (claimed,) = store.claim_pending_job("mail")
    assert claimed == dataclasses.replace(
        job, state="claimed", claimed_at=claimed.claimed_at, claimed_by=store.worker_name
    )


def test_rows_survive_rolling_back_the_backoff_columns(database: Database) -> None:
    store = database.backend()
    store.migrate()
    queue = store.create_new_queue("mail", concurrency=3)
    job = store.create_new_job(
        NewJobData("mail", "send.js", "Send", args=["x"], unique_digest="d1", retry_delay=5, backoff_strategy="fixed")
    )

    roll_back_through(store, "0002")
    with database.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns(jobs.name)}
        row = conn.execute(sa.text(f"SELECT id, queue, class, unique_digest FROM {jobs.name}")).one()
    assert {"retry_delay", "backoff_strategy"}.isdisjoint(columns)
    assert tuple(row) == (job.id, "mail", "Send", "d1")

    assert store.migrate() == REVISIONS[REVISIONS.index("0002") :]

    # The dropped columns come back with their defaults; everything else is as it was.
    assert store.get_job(job.id) == dataclasses.replace(job, retry_delay=None, backoff_strategy="exponential")
    assert store.get_queue("mail") == queue
    assert database.schema_differences() == []


# Bare numbers among the documents: before 0008 SQLite stored them as numbers,
# the first one changed by its text-to-double conversion.
OLD_DOCUMENTS = [3.313808515801691e-303, 12, -0.5, 2**62, 1e20, "text", [1, 2.5], {"k": [None, True]}, None]


def sqlite_objects(db: Database) -> list[tuple[str, str, str]]:
    """What SQLite keeps for the jobs table and its indexes: (type, name, CREATE statement)."""
    with db.engine.connect() as conn:
        return sorted(
            tuple(row)
            for row in conn.execute(
                sa.text("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = :table"), {"table": jobs.name}
            )
        )


def declared_json_types(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return {str(c["type"]) for c in sa.inspect(conn).get_columns(jobs.name) if c["name"] in JSON_COLUMNS}


def test_jobs_written_at_0007_survive_0008_whole(database: Database) -> None:
    store = database.backend()
    database.create_schema()
    with database.engine.begin() as conn:
        command.upgrade(migrations_config(conn, database.schema), "0007")
    at_0007 = sqlite_objects(database) if database.dialect == "sqlite" else []
    queue = store.create_new_queue("mail", concurrency=3)
    written = []
    for i, document in enumerate(OLD_DOCUMENTS):
        job = store.create_new_job(
            NewJobData(
                "mail",
                "send.js",
                "Send",
                args=document if document is not None else [],
                constructor_args=document if document is not None else {},
                uniqueness_config=document,
                unique_digest=f"digest-{i}",
                retry_delay=i,
            )
        )
        written.append(store.update_job(job.id, result=document, errors=document))
    [claimed] = store.claim_pending_job("mail")
    before = store.list_jobs(limit=100)
    if database.dialect == "sqlite":
        assert declared_json_types(database) == {"JSON"}
        with database.engine.connect() as conn:
            stored = conn.execute(sa.text(f"SELECT typeof(args), args FROM {jobs.name} WHERE id = {written[0].id}"))
            # What an older version kept, still read back as a number (SQLite's nearest, not the one written).
            assert tuple(stored.one()) == ("real", 3.3138085158016914e-303)
        assert store.get_job(written[0].id).args == 3.3138085158016914e-303  # type: ignore[union-attr]

    assert store.migrate() == ["0008"]

    assert store.list_jobs(limit=100) == before
    assert store.get_queue("mail") == queue
    assert store.list_jobs(args=OLD_DOCUMENTS[1]) == [job for job in before if job.args == OLD_DOCUMENTS[1]]
    with pytest.raises(DuplicatedJobError):
        store.create_new_job(NewJobData("mail", "send.js", "Send", unique_digest="digest-3"))
    assert [job.id for job in store.claim_pending_job("mail", 100)] == [job.id for job in written if job.id != claimed.id]
    assert database.schema_differences() == []
    if database.dialect == "sqlite":
        assert declared_json_types(database) == {"TEXT"}
        with database.engine.connect() as conn:
            kinds = {
                kind
                for name in JSON_COLUMNS
                for kind in conn.scalars(sa.text(f"SELECT DISTINCT typeof({name}) FROM {jobs.name}"))
            }
        assert kinds == {"text", "null"}
        # Every index as it was, the claim index's DESC and the index on an expression included.
        assert [row for row in sqlite_objects(database) if row[0] == "index"] == [
            row for row in at_0007 if row[0] == "index"
        ]

    assert store.rollback_migration() == "0008"
    assert [job.id for job in store.list_jobs(limit=100)] == [job.id for job in before]
    if database.dialect == "sqlite":
        assert declared_json_types(database) == {"JSON"}
        assert [row for row in sqlite_objects(database) if row[0] == "index"] == [
            row for row in at_0007 if row[0] == "index"
        ]


def test_rebuilt_tables_keep_the_partial_unique_index(database: Database) -> None:
    # SQLite drops columns by copying the table: its indexes must come back as they were.
    store = database.backend()
    store.migrate()
    store.create_new_job(NewJobData("q", "s.js", "C", unique_digest="taken"))
    for _ in range(3):
        store.rollback_migration()
    store.migrate()

    with pytest.raises(DuplicatedJobError):
        store.create_new_job(NewJobData("q", "s.js", "C", unique_digest="taken"))
    without_digest = store.create_new_jobs([NewJobData("q", "s.js", "C") for _ in range(3)])
    assert len({job.id for job in without_digest}) == 3


def test_rolling_back_everything_drops_the_tables_and_rows(database: Database) -> None:
    store = database.backend()
    store.migrate()
    store.create_new_job(NewJobData("q", "s.js", "C"))
    while store.rollback_migration() is not None:
        pass

    assert database.table_names() <= {VERSION_TABLE}
    assert store.migrate() == REVISIONS
    assert store.list_jobs() == []


# -- the version table -----------------------------------------------------------------


def test_the_version_table_is_ours_and_alembic_version_is_never_created(database: Database) -> None:
    store = database.backend()
    store.migrate()
    store.rollback_migration()
    store.migrate()

    assert VERSION_TABLE == "sidequest_sql_version"
    assert VERSION_TABLE in database.table_names()
    assert "alembic_version" not in database.table_names()


def test_an_applications_alembic_version_is_left_untouched(database: Database) -> None:
    database.create_schema()
    with database.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"
        )
        conn.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES ('app_rev_42')")
    store = database.backend()

    assert store.migrate() == REVISIONS
    assert store.rollback_migration() == REVISIONS[-1]
    assert store.migrate() == REVISIONS[-1:]

    with database.engine.connect() as conn:
        assert list(conn.scalars(sa.text("SELECT version_num FROM alembic_version"))) == ["app_rev_42"]
    assert version_rows(database) == REVISIONS[-1:]
    # The application's own table is not taken for a difference of ours either.
    assert [d for d in database.schema_differences() if d[0] != "remove_table"] == []
