"""LISTEN/NOTIFY for ``wait_for_jobs`` on Postgres: the channel, and the listening connection's calls.

Revision 0007 puts triggers on ``sidequest_jobs`` that NOTIFY, when their
transaction commits, the channel of the table's schema with a queue's name
as payload: once per distinct queue of the waiting jobs an INSERT statement
adds (a statement-level trigger over its transition table), and once for each
row an UPDATE makes waiting, moves in time or to another queue while
waiting (a row trigger whose WHEN condition every other update fails
without calling anything). Any process that writes the table fires them, a
Node Sidequest one or ``psql`` included.

The channel is ``sidequest_jobs.<schema>`` (``channel_for``), or
``sidequest_jobs.<md5 of the schema>`` for a schema name too long for a
channel (63 bytes in all), so that two schemas of one database never wake
each other's waits. With ``schema=None`` the listener asks the server in
which schema the connection's search path finds ``sidequest_jobs``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import Executable, bindparam, func, select
from sqlalchemy.util.concurrency import await_only

from ..connections import driver_connection
from ..hooks import JobNotifier
from ..schema import jobs

CHANNEL_PREFIX = "sidequest_jobs."
MAX_CHANNEL_BYTES = 63
"""Postgres's longest identifier (NAMEDATALEN - 1), which a channel name is."""

_TABLE_SCHEMA = (
    "SELECT coalesce((SELECT n.nspname FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = pg_catalog.to_regclass(%s)), "
    "pg_catalog.current_schema())"
)


def channel_for(schema: str) -> str:
    """The channel the triggers of ``schema``'s jobs table notify (revision 0007 computes the same)."""
    channel = CHANNEL_PREFIX + schema
    if len(channel.encode()) > MAX_CHANNEL_BYTES:
        channel = CHANNEL_PREFIX + hashlib.md5(schema.encode(), usedforsecurity=False).hexdigest()
    return channel


def quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class PostgresNotifier(JobNotifier):
    """LISTEN on the schema's channel; psycopg's ``notifies()`` reads what arrives."""

    def listen(self, connection: Any, schema: str | None) -> str:
        connection.autocommit = True
        cursor = connection.cursor()
        try:
            if schema is None:
                # The schema the pool's connections find the table in, or will create it in.
                cursor.execute(_TABLE_SCHEMA, (jobs.name,))
                schema = str(cursor.fetchone()[0])
            channel = channel_for(schema)
            cursor.execute(f"LISTEN {quoted(channel)}")
        finally:
            cursor.close()
        return channel

    def unlisten(self, connection: Any) -> None:
        # Through PgBouncer's transaction pooling this reaches the server connection that
        # ran the LISTEN only if it gets that one again (its default, last used first, does
        # for a lone client); one left listening makes PgBouncer log every notification it
        # then drops ("got packet 'A' from server when not linked").
        cursor = connection.cursor()
        try:
            cursor.execute("UNLISTEN *")
        finally:
            cursor.close()

    def probe(self, channel: str, payload: str) -> Executable:
        return select(func.pg_notify(bindparam("channel", channel), bindparam("payload", payload)))

    def receive(self, connection: Any, timeout: float) -> list[tuple[str, str]]:
        driver = driver_connection(connection)
        if isinstance(driver, AsyncConnection):
            arrived = await_only(_notified(driver, timeout))
        else:
            arrived = list(driver.notifies(timeout=timeout, stop_after=1))
        return [(notify.channel, notify.payload) for notify in arrived]


async def _notified(connection: AsyncConnection[Any], timeout: float) -> list[Any]:
    return [notify async for notify in connection.notifies(timeout=timeout, stop_after=1)]
