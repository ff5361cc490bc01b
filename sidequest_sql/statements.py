"""Builders of the statements the operations send, with bind parameters for what varies.

Building a Core statement, and then SQLAlchemy walking it for its cache key,
costs far more client CPU than running it, so the hot operations build theirs
once per backend (``execution.Execution.statement``) from these builders. The
parameters are named as SQLAlchemy names those of a statement built with plain
values (``id_1`` for ``id = …``), so the SQL sent is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, Update, bindparam, case, insert, select, type_coerce, update

from .schema import Timestamp, counted_at

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.sql.dml import Insert

Builder = Callable[[], Any]
"""Makes a statement; called once per backend and cache key."""


def binds(table: Table, keys: Iterable[str]) -> dict[str, Any]:
    """A bind parameter per column key, named after it and of the column's type."""
    return {key: bindparam(key, type_=table.c[key].type) for key in keys}


def id_bind(table: Table) -> Any:
    """The one id of an ``id = …``, passed as ``id_1``."""
    return bindparam("id_1", type_=table.c.id.type)


def ids_bind(table: Table) -> Any:
    """The list of ids of an ``id IN (…)``, passed as ``id_1``."""
    return bindparam("id_1", type_=table.c.id.type, expanding=True)


def select_by_id(table: Table) -> Select[Any]:
    """Every column of the row ``id_1``."""
    return select(table).where(table.c.id == id_bind(table))


def insert_one(table: Table, values: Iterable[str]) -> tuple[Hashable, Callable[[], Insert]]:
    """The cache key and builder of the INSERT … RETURNING of one row with these keys
    (a row's values, or their keys)."""
    keys = frozenset(values)
    return ("insert_returning", table.name, keys), lambda: insert(table).values(binds(table, keys)).returning(*table.c)


def update_one(table: Table, values: Mapping[str, Any]) -> tuple[Hashable, Callable[[], Update]]:
    """The cache key and builder of the UPDATE … RETURNING of these columns of the row ``id_1``."""
    keys = frozenset(values)

    def build() -> Update:
        return update(table).where(table.c.id == id_bind(table)).values(binds(table, keys)).returning(*table.c)

    return ("update_one", table.name, keys), build


def expected_values(expected: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a precondition (``where_expected``): each expected value as ``expect_<column>``."""
    return {f"expect_{key}": value for key, value in expected.items()}


def where_expected(table: Table, expected: Iterable[str]) -> list[ColumnElement[bool]]:
    """The row ``id_1``, while each ``expected`` column still holds its ``expect_<column>`` parameter."""
    return [
        table.c.id == id_bind(table),
        *(table.c[key] == bindparam(f"expect_{key}", type_=table.c[key].type) for key in expected),
    ]


def update_expected(
    table: Table, values: Mapping[str, Any], expected: Iterable[str]
) -> tuple[Hashable, Callable[[], Update]]:
    """The cache key and builder of ``update_one`` where the row still holds
    the ``expected`` columns' values (``where_expected``): a checked transition."""
    keys, checked = frozenset(values), tuple(expected)

    def build() -> Update:
        return update(table).where(*where_expected(table, checked)).values(binds(table, keys)).returning(*table.c)

    return ("update_expected", table.name, keys, checked), build


def select_expected(table: Table, expected: Iterable[str], *, lock: bool = False) -> tuple[Hashable, Builder]:
    """The cache key and builder of the SELECT of the row that ``where_expected``
    names: every column; with ``lock``, only its id, locked until the
    transaction ends (a checked transition where there is no ``UPDATE … RETURNING``)."""
    checked = tuple(expected)

    def build() -> Select[Any]:
        if lock:
            return select(table.c.id).where(*where_expected(table, checked)).with_for_update()
        return select(table).where(*where_expected(table, checked))

    return ("select_expected", table.name, checked, lock), build


def finished_moment() -> ColumnElement[datetime]:
    """The time a job counts at: when it finished, else started, was claimed, was enqueued.

    Written as the index on it is, so that time-bounded counts can use it.
    """
    return type_coerce(counted_at(), Timestamp())


def same_for_all(values: list[Any]) -> bool:
    """Whether every row gets the same value (then one bind serves them all)."""
    first = values[0]
    return all(value is first or (type(value) is type(first) and _plain(value) and value == first) for value in values)


def per_row(table: Table, key: str, ids: list[int], values: list[Any]) -> Any:
    """The value of column ``key`` for the rows ``ids``: one bind when every row gets the
    same, else a ``CASE`` on the id (how one statement sets a different result per job)."""
    column = table.c[key]
    if same_for_all(values):
        return bindparam(None, values[0], type_=column.type)
    return case({i: bindparam(None, value, type_=column.type) for i, value in zip(ids, values)}, value=table.c.id)


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, datetime))
