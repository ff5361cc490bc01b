"""Batch inserts: many rows in few ``INSERT … RETURNING`` statements.

A batch enqueue (``create_new_jobs``) used to send one single-row INSERT per
job; the server's work per statement, and the client's, then cost more than
the rows. A dialect names a ``BatchInsert`` (``SQLBackend.batch_insert``) and
the base class sends a batch as the few statements it builds:

- ``UnnestInsert`` (Postgres): one statement whatever the batch size,
  ``INSERT INTO t (a, b, …) SELECT … FROM unnest(CAST(%(a)s AS VARCHAR[]),
  CAST(%(b)s AS JSONB[]), …) WITH ORDINALITY AS t(a, b, …, ordinality)
  ORDER BY t.ordinality RETURNING …``, one array parameter per column. Its
  text does not depend on the batch size, so the server parses it (and
  psycopg prepares it) once. Strings are cast to unbounded ``VARCHAR[]``:
  an explicit cast to ``VARCHAR(255)[]`` would silently truncate, where the
  column's own assignment refuses an over-long value as a one-row INSERT does.
- ``ValuesInsert`` (SQLite): multi-row ``INSERT … VALUES (…), (…) …
  RETURNING …`` statements of at most ``MAX_VALUES_ROWS`` rows, under the
  driver's bound-parameter limit. Their row counts are powers of two (a
  batch of 300 is 128 + 128 + 32 + 8 + 4), so a backend compiles at most
  eight statements however its batch sizes vary; a statement of one size is
  compiled once and reused.

Values are encoded as the one-row INSERT encodes them: by each column's
bind processor for the dialect (``encoders``), once per distinct object in a
column, so a value every row shares (the batch's ``inserted_at``, an
``available_at`` left to default to it) is processed once per batch, not per
row. On Postgres a JSON value goes into the array as its JSON text (the
engine's ``json_serializer``, ``jsonvalues.dumps`` unless the caller gave
another): exactly what psycopg sends for a one-row ``jsonb`` parameter.
``None`` stays SQL NULL, inside arrays too; a JSON column never receives
JSON ``null`` for it (``none_as_null``).

The database gives the rows back in no promised order; they are sorted by
primary key, which follows the input order (the ``ORDER BY`` feeding the
sequence on Postgres, as SQLAlchemy's own insertmanyvalues relies on; the
order of VALUES on SQLite), and checked against the input
(``in_input_order``) before anyone sees them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ARRAY,
    Enum,
    Integer,
    String,
    bindparam,
    cast,
    func,
    insert,
    select,
)
from sqlalchemy.types import JSON, NullType, TypeDecorator, TypeEngine

if TYPE_CHECKING:
    from sqlalchemy import BindParameter, Table
    from sqlalchemy.engine import Dialect
    from sqlalchemy.sql.dml import Insert

Encoder = Callable[[Any], Any]
Encoders = Mapping[str, Encoder | None]
Row = Sequence[Any]
RunStatement = Callable[[Hashable, Callable[[], "Insert"], Mapping[str, Any]], list[Row]]
"""``(cache_key, build, parameters) -> rows``: how the base class runs one
statement, compiled once per backend under ``cache_key``."""

# More rows per VALUES statement do not make a batch faster on SQLite
# (measured: 64 to 2,048 rows per statement send 10,000 rows at the same
# rate), while compiling a statement costs about 0.15 ms per row, once per
# backend and size (all sizes up to 512 rows: half a second).
MAX_VALUES_ROWS = 128
_NOTHING = object()
_CONTAINERS = (list, dict)


class Encoded(TypeDecorator[Any]):
    """The type of a parameter whose value ``encode`` already ran through its
    column's bind processor: passed to the driver as it is.

    (An untyped parameter would not do: SQLAlchemy gives the first row of a
    multi-row VALUES the column's type, and so its processor, again.)
    """

    impl = NullType
    cache_ok = True


class BatchInsert:
    """How a dialect sends a batch of rows; the base class runs it (``insert``).

    ``split`` and ``statement`` only build: each statement is compiled and
    run by the base class, once per backend for each ``shape``.
    """

    def split(self, count: int, columns: int) -> list[int]:
        """The rows of each statement a batch of ``count`` rows of ``columns``
        values each is sent as, in order."""
        raise NotImplementedError

    def shape(self, rows: int) -> Hashable:
        """What the text of a statement of ``rows`` rows depends on: statements
        of the same shape are one compiled statement."""
        raise NotImplementedError

    def statement(self, table: Table, keys: Sequence[str], rows: int) -> Insert:
        """The ``INSERT … RETURNING`` every column of ``table`` that inserts
        ``rows`` rows of these column keys, with parameters as ``parameters``
        names them (of type ``Encoded``)."""
        raise NotImplementedError

    def parameters(self, keys: Sequence[str], columns: Mapping[str, list[Any]], start: int, stop: int) -> dict[str, Any]:
        """The parameters of the statement inserting rows ``start:stop``, from
        the encoded ``columns``."""
        raise NotImplementedError

    def encoders(self, table: Table, keys: Sequence[str], dialect: Dialect) -> dict[str, Encoder | None]:
        """How each column's values are encoded for the driver: the bind
        processors of the one-row ``INSERT`` of these keys on ``dialect``."""
        one_row = insert(table).values({key: bindparam(key, type_=table.c[key].type) for key in keys})
        processors: Mapping[str, Any] = one_row.compile(dialect=dialect)._bind_processors
        return {key: processors.get(key) for key in keys}

    def insert(self, table: Table, rows: Sequence[Mapping[str, Any]], encoders: Encoders, run: RunStatement) -> list[Row]:
        """Insert ``rows`` (each with the keys of ``encoders``) with ``run`` and
        return them as stored, every column in table order, in input order."""
        keys = tuple(encoders)
        columns = encode(rows, encoders)
        returned: list[Row] = []
        start = 0
        for size in self.split(len(rows), len(keys)):
            stop = start + size
            returned += run(
                ("insert_batch", table.name, keys, self.shape(size)),
                lambda size=size: self.statement(table, keys, size),  # type: ignore[misc]
                self.parameters(keys, columns, start, stop),
            )
            start = stop
        return in_input_order(table, rows, returned)


class UnnestInsert(BatchInsert):
    """One ``INSERT … SELECT … FROM unnest(arrays) WITH ORDINALITY ORDER BY``
    for any batch (Postgres): one array parameter per column."""

    def split(self, count: int, columns: int) -> list[int]:
        return [count]

    def shape(self, rows: int) -> Hashable:
        return None

    def parameter(self, key: str) -> BindParameter[Any]:
        """The array parameter of column ``key`` (a dialect may send it otherwise)."""
        return bindparam(key, type_=Encoded())

    def statement(self, table: Table, keys: Sequence[str], rows: int) -> Insert:
        arrays = [cast(self.parameter(key), ARRAY(_array_item(table.c[key].type))) for key in keys]
        source = func.unnest(*arrays).table_valued(*keys, with_ordinality="ordinality").render_derived(name="t")
        ordered = select(*(source.c[key] for key in keys)).order_by(source.c.ordinality)
        return insert(table).from_select(list(keys), ordered).returning(*table.c)

    def parameters(self, keys: Sequence[str], columns: Mapping[str, list[Any]], start: int, stop: int) -> dict[str, Any]:
        if start == 0 and all(len(columns[key]) == stop for key in keys):
            return {key: columns[key] for key in keys}
        return {key: columns[key][start:stop] for key in keys}

    def encoders(self, table: Table, keys: Sequence[str], dialect: Dialect) -> dict[str, Encoder | None]:
        encoders = super().encoders(table, keys, dialect)
        # psycopg's one-row JSON processor only wraps the value (psycopg.types.json.Jsonb)
        # for psycopg to serialize with the engine's json_serializer; an array
        # of jsonb takes that text. SQLAlchemy's own JSON processor, given the
        # serializer, writes it with the same NULL rules.
        serializer = getattr(dialect, "_json_serializer", None) or json.dumps
        for key in keys:
            impl: Any = table.c[key].type.dialect_impl(dialect)
            if isinstance(impl, JSON):
                encoders[key] = impl._make_bind_processor(None, serializer)
        return encoders


class ValuesInsert(BatchInsert):
    """Multi-row ``INSERT … VALUES … RETURNING`` statements of at most
    ``max_parameters`` bound parameters (and ``MAX_VALUES_ROWS`` rows) each."""

    def __init__(self, max_parameters: int) -> None:
        self.max_parameters = max_parameters

    def split(self, count: int, columns: int) -> list[int]:
        most = min(MAX_VALUES_ROWS, self.max_parameters // max(columns, 1))
        if most < 1:
            raise ValueError(f"a row of {columns} values exceeds the limit of {self.max_parameters} parameters")
        most = 1 << (most.bit_length() - 1)  # a power of two
        sizes = [most] * (count // most)
        rest = count % most
        while rest:
            size = 1 << (rest.bit_length() - 1)
            sizes.append(size)
            rest -= size
        return sizes

    def shape(self, rows: int) -> Hashable:
        return rows

    def statement(self, table: Table, keys: Sequence[str], rows: int) -> Insert:
        names = _row_names(tuple(keys), rows)
        width = len(keys)
        values = [
            {key: bindparam(names[i * width + k], type_=Encoded()) for k, key in enumerate(keys)} for i in range(rows)
        ]
        return insert(table).values(values).returning(*table.c)

    def parameters(self, keys: Sequence[str], columns: Mapping[str, list[Any]], start: int, stop: int) -> dict[str, Any]:
        by_row = zip(*(columns[key][start:stop] for key in keys), strict=True)
        return dict(zip(_row_names(tuple(keys), stop - start), chain.from_iterable(by_row), strict=True))


@lru_cache(maxsize=64)
def _row_names(keys: tuple[str, ...], rows: int) -> tuple[str, ...]:
    """The parameter names of ``rows`` rows of a VALUES statement, row by row."""
    return tuple(f"{key}_{i}" for i in range(rows) for key in keys)


def _array_item(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """The element type an array parameter of a column of ``type_`` is cast to."""
    plain = type_.impl_instance if isinstance(type_, TypeDecorator) else type_
    if isinstance(plain, String) and not isinstance(plain, Enum):
        return String()  # no length: see the module docstring
    return type_


def encode(rows: Sequence[Mapping[str, Any]], encoders: Encoders) -> dict[str, list[Any]]:
    """The values of ``rows``, column by column, each run through its encoder
    once per run of the same object (a value every row shares: once)."""
    columns: dict[str, list[Any]] = {}
    for key, process in encoders.items():
        values = [row[key] for row in rows]
        if process is not None:
            values = _encoded(values, process)
        columns[key] = values
    return columns


def _encoded(values: list[Any], process: Encoder) -> list[Any]:
    out: list[Any] = []
    append = out.append
    last: Any = _NOTHING
    done: Any = None
    # An empty list or dict (a default ``constructor_args``: a new [] per job)
    # encodes alike whatever the object: once.
    empty: dict[type, Any] = {}
    for value in values:
        if value is not last:
            last = value
            if not value and value.__class__ in _CONTAINERS:
                kind = value.__class__
                done = empty[kind] if kind in empty else empty.setdefault(kind, process(value))
            else:
                done = process(value)
        append(done)
    return out


def in_input_order(table: Table, rows: Sequence[Mapping[str, Any]], returned: list[Row]) -> list[Row]:
    """``returned`` sorted by primary key, checked to line up with ``rows``.

    Text and integer columns are compared row by row: they come back exactly
    as they went in (JSON numbers and datetimes in other zones need not
    compare equal, so those are left out).
    """
    [key_column] = table.primary_key.columns
    ordered = sorted(returned, key=itemgetter(list(table.c).index(key_column)))
    if len(ordered) != len(rows):
        raise RuntimeError(f"a batch insert into {table.name} returned {len(ordered)} rows for {len(rows)}")
    keys = [key for key in rows[0] if _compares_exactly(table.c[key].type)] if rows else []
    if keys:
        positions = [list(table.c).index(table.c[key]) for key in keys]
        stored, given = _getter(positions), _getter(keys)
        for i, (row, values) in enumerate(zip(ordered, rows, strict=True)):
            if stored(row) != given(values):
                raise RuntimeError(
                    f"the rows a batch insert into {table.name} returned do not line up with the rows sent: "
                    f"row {i} came back as {dict(zip(keys, stored(row)))!r}"
                )
    return ordered


def _compares_exactly(type_: TypeEngine[Any]) -> bool:
    plain = type_.impl_instance if isinstance(type_, TypeDecorator) else type_
    return isinstance(plain, (String, Integer)) and not isinstance(plain, Enum)


def _getter(items: list[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """A tuple of these items of its argument (one item too)."""
    if len(items) == 1:
        get_one = itemgetter(items[0])
        return lambda obj: (get_one(obj),)
    return itemgetter(*items)
