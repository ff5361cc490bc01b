"""Connections that fail: telling a dead one before use, and saying so in our own terms.

A pooled connection can die while it sits idle (the server restarted, an
administrator terminated it). The backend checks each one as it leaves the
pool (``SQLBackend.connection_alive``), which costs a system call rather
than a round trip, and a dead one is replaced before any statement is sent.
Errors on the way to or through a connection become the two errors of
``errors``, which name the database but never its credentials.
"""

from __future__ import annotations

import select
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from .errors import ConnectionLostError, DatabaseUnavailableError


def socket_readable(fd: int) -> bool:
    """Whether ``fd`` has bytes or end-of-file waiting, without blocking.

    An idle connection in the pool has nothing to read unless the server has
    said goodbye (Postgres sends a FATAL message, then closes) or hung up.
    """
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])


def driver_connection(dbapi_connection: Any) -> Any:
    """The driver's own connection: the one given, or the one SQLAlchemy's
    asyncio adapter wraps (an ``AdaptedConnection``'s ``driver_connection``)."""
    return getattr(dbapi_connection, "driver_connection", dbapi_connection)


def describe(url: URL) -> str:
    """The database a URL names, for messages: no user, password or query."""
    name = url.get_backend_name()
    if name == "sqlite":
        return f"the SQLite database {url.database or ':memory:'}"
    where = url.host or "localhost"
    if url.port is not None:
        where = f"{where}:{url.port}"
    database = f" {url.database}" if url.database else ""
    return f"the {name} database{database} at {where}"


def driver_message(error: DBAPIError) -> str:
    """What the driver said, without SQLAlchemy's statement and parameters."""
    return " ".join(str(error.orig).split()) or type(error.orig).__name__


def unavailable(url: URL, error: Exception) -> DatabaseUnavailableError:
    """The error for a connection that could not be had.

    Either the driver could not connect (its error, or SQLAlchemy's
    ``DBAPIError`` around it), or the pool gave up after the connections it
    made in turn were dead as well (``InvalidRequestError``: the server ends
    each new session at once, as while it shuts down).
    """
    said = driver_message(error) if isinstance(error, DBAPIError) else " ".join(str(error).split())
    return DatabaseUnavailableError(f"could not connect to {describe(url)}: {said}")


def lost(url: URL, error: DBAPIError) -> ConnectionLostError:
    """The error for a connection that broke while in use."""
    return ConnectionLostError(f"the connection to {describe(url)} was lost: {driver_message(error)}")
