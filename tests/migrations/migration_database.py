"""A fresh database for migration tests: backends on it and a plain engine to look inside.

On Postgres "empty" is a schema of its own, so these tests never touch what
other suites keep in ``public``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import sidequest_sql as sq
from sidequest_sql.base import SQLBackend
from sidequest_sql.schema import NODE_BOOKKEEPING_TABLES, VERSION_TABLE, metadata

# What SQLAlchemy and alembic say when SQLite's reflection skips an index on an expression.
_UNREFLECTED_EXPRESSION_INDEX = (
    (sa.exc.SAWarning, "Skipped unsupported reflection of expression-based index"),
    (UserWarning, "autogenerate skipping metadata-specified expression-based index"),
)


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

    @property
    def node_bookkeeping(self) -> set[str]:
        """The tables kept beside ours for Node Sidequest's own migrations: on Postgres only."""
        return set(NODE_BOOKKEEPING_TABLES) if self.dialect == "postgresql" else set()

    def table_names(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())

    def schema_differences(self) -> list[Any]:
        """What alembic autogenerate finds between the database and ``schema.metadata``.

        SQLite's reflection cannot read an index on an expression, so there
        such indexes are compared by the ``CREATE INDEX`` SQLite keeps. The
        tables kept for Node Sidequest's migrations are not the models': they
        are left out (``tests/postgres/test_pg_node_tables.py`` checks them
        against the ones Node makes).
        """
        with self.engine.connect() as conn, warnings.catch_warnings():
            if self.dialect == "sqlite":
                for category, message in _UNREFLECTED_EXPRESSION_INDEX:
                    warnings.filterwarnings("ignore", message, category)
            context = MigrationContext.configure(
                conn,
                opts={
                    "version_table": VERSION_TABLE,
                    "target_metadata": metadata,
                    "render_as_batch": True,
                    "compare_type": True,
                    "compare_server_default": True,
                    "include_object": _not_node_bookkeeping,
                },
            )
            differences: list[Any] = compare_metadata(context, metadata)
            if self.dialect == "sqlite":
                differences += _sqlite_expression_index_differences(conn)
            return differences

    def close(self) -> None:
        for store in self._backends:
            store.close()
        if self._engine is not None:
            self._engine.dispose()


def _not_node_bookkeeping(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return getattr(table, "name", None) not in NODE_BOOKKEEPING_TABLES


def _sqlite_expression_index_differences(conn: sa.Connection) -> list[Any]:
    """Expression indexes of ``metadata`` that SQLite lacks or defines otherwise, as alembic reports them."""
    stored = {name: sql for name, sql in conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))}
    differences: list[Any] = []
    for table in metadata.tables.values():
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            if not any(not isinstance(e, sa.Column) for e in index.expressions):
                continue
            expected = " ".join(str(sa.schema.CreateIndex(index).compile(dialect=conn.dialect)).split())
            found = stored.get(index.name)
            if found is None:
                differences.append(("add_index", index))
            elif " ".join(found.split()) != expected:
                differences += [("remove_index", index), ("add_index", index)]
    return differences
