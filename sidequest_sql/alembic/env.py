"""Alembic environment for sidequest_sql: runs on the connection the backend hands over."""

from __future__ import annotations

from typing import Any

from alembic import context

from sidequest_sql.schema import VERSION_TABLE, metadata

config = context.config
connection = config.attributes["connection"]
record_step = config.attributes.get("on_version_apply")
schema = config.attributes.get("schema")

search_path = None
if schema is not None:
    # Alembic renders ALTER TABLE without the connection's schema_translate_map,
    # so unqualified names must resolve to the schema; SET LOCAL ends with the
    # transaction, and is undone below for a caller's transaction that goes on.
    search_path = connection.exec_driver_sql("SHOW search_path").scalar()
    quoted = connection.dialect.identifier_preparer.quote_identifier(schema)
    connection.exec_driver_sql(f"SET LOCAL search_path TO {quoted}")


def _on_version_apply(ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
    if record_step is not None and step.is_upgrade and not step.is_stamp:
        record_step(step)


context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    version_table_schema=schema,
    render_as_batch=True,
    on_version_apply=_on_version_apply,
)

try:
    with context.begin_transaction():
        context.run_migrations()
finally:
    if search_path is not None and not connection.invalidated:
        connection.exec_driver_sql("SELECT set_config('search_path', %(path)s, true)", {"path": search_path})
