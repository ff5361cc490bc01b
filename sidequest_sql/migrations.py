"""Run the alembic migrations that ship inside the package, from code.

No ``alembic.ini`` is needed: the Config is built here and handed a
connection in a transaction (the backend's own, or a caller's), and the
schema the tables live in; nothing here knows the backend. The version table is ``sidequest_sql_version`` (an
application's ``alembic_version`` stays its own). Alembic's module-level
context is not thread-safe, so migrations in one process run one at a time.
"""

from __future__ import annotations

import threading
from importlib.resources import files
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.schema import CreateSchema

from .schema import VERSION_TABLE, jobs

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

SCRIPT_LOCATION = files("sidequest_sql") / "alembic"
# Revisions that match tables made by Node Sidequest's own migrations.
SIDEQUEST_TABLES = "0001"
SIDEQUEST_BACKOFF_COLUMNS = "0002"

_lock = threading.Lock()


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def revisions() -> list[str]:
    """Every shipped revision, oldest first: what ``upgrade`` of an empty database applies."""
    return [script.revision for script in reversed(list(script_directory().walk_revisions("base", "heads")))]


def upgrade(conn: Connection, schema: str | None) -> list[str]:
    """Bring the tables in ``schema`` to head on ``conn``; return the revisions applied, in order."""
    applied: list[str] = []
    with _lock:
        if schema is not None:
            conn.execute(CreateSchema(schema, if_not_exists=True))
        _adopt_sidequest_tables(conn, schema)
        cfg = _config(conn, schema)
        cfg.attributes["on_version_apply"] = lambda step: applied.append(step.up_revision_id)
        command.upgrade(cfg, "head")
    return applied


def downgrade_one(conn: Connection, schema: str | None) -> str | None:
    """Undo the newest applied revision; return its id, or None if none is applied."""
    with _lock:
        current = current_revision(conn, schema)
        if current is None:
            return None
        command.downgrade(_config(conn, schema), "-1")
        return current


def current_revision(conn: Connection, schema: str | None) -> str | None:
    context = MigrationContext.configure(
        conn, opts={"version_table": VERSION_TABLE, "version_table_schema": schema}
    )
    return context.get_current_revision()


def _adopt_sidequest_tables(conn: Connection, schema: str | None) -> None:
    """Record the revision that matches tables Node Sidequest already created.

    Nothing is created or dropped: the rows stay, and only newer revisions run.
    """
    if current_revision(conn, schema) is not None:
        return
    inspector = inspect(conn)
    if not inspector.has_table(jobs.name, schema=schema):
        return
    columns = {column["name"] for column in inspector.get_columns(jobs.name, schema=schema)}
    adopted = SIDEQUEST_BACKOFF_COLUMNS if {"retry_delay", "backoff_strategy"} <= columns else SIDEQUEST_TABLES
    command.stamp(_config(conn, schema), adopted)


def _config(conn: Connection | None = None, schema: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    cfg.attributes["connection"] = conn
    cfg.attributes["schema"] = schema
    return cfg
