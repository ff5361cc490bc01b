"""A fresh database for migration tests: backends on it and a plain engine to look inside.

On Postgres "empty" is a schema of its own, so these tests never touch what
other suites keep in ``public``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import sidequest_sql as sq
from sidequest_sql.base import SQLBackend
from sidequest_sql.schema import VERSION_TABLE, metadata


@dataclass
class Database:
    """An empty database: backends on it, and a plain engine to look inside it."""

    url: str
    schema: str | None
    _backends: list[SQLBackend] = field(default_factory=list)
    _engine: sa.Engine | None = None

    @property
    def dialect(self) -> str:
        return sa.make_url(self.url).get_backend_name()

    def backend(self, **options: Any) -> SQLBackend:
        store = sq.create_backend(self.url, schema=self.schema, **options)
        self._backends.append(store)
        return store

    @property
    def engine(self) -> sa.Engine:
        """An engine whose unqualified names resolve inside this database only."""
        if self._engine is None:
            url = self.backend().url
            connect_args = {}
            if self.schema is not None:
                connect_args["options"] = f"-c search_path={self.schema}"
            self._engine = sa.create_engine(url, connect_args=connect_args)
        return self._engine

    def create_schema(self) -> None:
        """Make the schema exist before ``migrate()`` does, as an application might."""
        if self.schema is not None:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')

    def table_names(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())

    def schema_differences(self) -> list[Any]:
        """What alembic autogenerate finds between the database and ``schema.metadata``."""
        with self.engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "version_table": VERSION_TABLE,
                    "target_metadata": metadata,
                    "render_as_batch": True,
                    "compare_type": True,
                    "compare_server_default": True,
                },
            )
            return compare_metadata(context, metadata)

    def close(self) -> None:
        for store in self._backends:
            store.close()
        if self._engine is not None:
            self._engine.dispose()
