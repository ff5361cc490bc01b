"""What MySQL's and MariaDB's drivers make of parameters, made right before they are sent.

- PyMySQL writes a parameter by its exact type and anything else as its
  ``str()``: an ``IntEnum`` member in a ``LIMIT`` becomes the quoted text
  ``'2'`` (a syntax error), a ``(str, Enum)`` member is stored as
  ``'Colour.RED'`` instead of its value, a datetime subclass as whatever its
  ``__str__`` writes. Subclasses of int, float, str and datetime are sent as
  the plain value they stand for, as Postgres and SQLite store them.
- The server refuses a statement longer than its ``max_allowed_packet``
  (16 MiB by default on MariaDB, 64 MiB on MySQL 8) by closing the
  connection, which would look like a lost connection worth retrying. A
  statement that would not fit is refused with ``ValueError`` instead,
  before it is sent. Its length counts the parameters as written into SQL:
  JSON and SQL escaping double every quote and backslash.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

_EXACT = frozenset({type(None), bool, int, float, str, bytes, datetime})
# Below this many characters of parameters and SQL no statement can reach a
# server's max_allowed_packet (at least 4 MiB on every supported version).
_SURELY_FITS = 512 * 1024
_LIMIT_KEY = "sidequest_max_allowed_packet"
_NUMBERED = re.compile(r"_+\d+\Z")
# What PyMySQL escapes with a backslash in a quoted value.
_ESCAPED = ("\\", "'", '"', "\n", "\r", "\x00", "\x1a")


def plain(value: Any) -> Any:
    """``value`` as the built-in type it subclasses, if it subclasses one."""
    if type(value) in _EXACT:
        return value
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, datetime):
        return datetime(
            value.year, value.month, value.day, value.hour, value.minute, value.second,
            value.microsecond, value.tzinfo, fold=value.fold,
        )
    return value


def install(engine: Engine) -> None:
    """Send plain parameters and refuse statements the server would not take."""

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _parameters(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> tuple[str, Any]:
        if executemany and isinstance(parameters, list):
            return statement, [_plain_all(row) for row in parameters]
        # One set of parameters; also a batch SQLAlchemy wrote as one INSERT (insertmanyvalues).
        parameters = _plain_all(parameters)
        _refuse_oversized(conn, cursor, statement, parameters, context)
        return statement, parameters


def _plain_all(parameters: Any) -> Any:
    if isinstance(parameters, dict):
        return {key: plain(value) for key, value in parameters.items()}
    if isinstance(parameters, (tuple, list)):
        return tuple(plain(value) for value in parameters)
    return parameters


def _refuse_oversized(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any) -> None:
    values = list(parameters.values()) if isinstance(parameters, dict) else list(parameters or ())
    texts = [len(value) if isinstance(value, (str, bytes)) else 0 for value in values]
    if len(statement) + sum(texts) < _SURELY_FITS:
        return
    size = len(statement.encode("utf-8", "surrogatepass")) + sum(map(_written_size, values))
    limit = _packet_limit(conn, cursor)
    if size <= limit:
        return
    largest = max(range(len(values)), key=texts.__getitem__)
    raise ValueError(
        f"{_name_of(largest, parameters, context)} is too large for this server: the statement would be "
        f"about {size} bytes, more than its max_allowed_packet of {limit} bytes"
    )


def _written_size(value: Any) -> int:
    """Bytes ``value`` takes in the SQL PyMySQL writes: text quoted with its escaped
    characters doubled, bytes in hexadecimal.

    Counted rather than escaped: escaping 10 MB of non-ASCII text costs PyMySQL seconds.
    """
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass")) + sum(map(value.count, _ESCAPED)) + 2
    if isinstance(value, bytes):
        return 2 * len(value) + len("_binary X''")
    return len(str(value)) + 2


def _packet_limit(conn: Any, cursor: Any) -> int:
    limit = conn.info.get(_LIMIT_KEY)
    if limit is None:
        probe = conn.connection.dbapi_connection.cursor()
        try:
            probe.execute("SELECT @@max_allowed_packet")
            limit = conn.info[_LIMIT_KEY] = int(probe.fetchone()[0])
        finally:
            probe.close()
    return int(limit)


def _name_of(index: int, parameters: Any, context: Any) -> str:
    """The field a parameter fills: the bind parameter's name, without SQLAlchemy's number."""
    if isinstance(parameters, dict):
        name = list(parameters)[index]
    else:
        names = getattr(getattr(context, "compiled", None), "positiontup", None) or ()
        if len(names) != len(parameters):
            return "a value"
        name = names[index]
    return _NUMBERED.sub("", str(name))
