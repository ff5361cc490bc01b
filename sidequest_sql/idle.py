"""Pooled connections kept checked out between one-statement operations.

Checking a connection out of SQLAlchemy's pool and in again costs about
30–40 µs of client CPU (pool events, a wrapper object and its weakref, a
queue with its lock, a rollback on return): on Postgres as much as psycopg
spends sending the statement and reading its rows. An operation that is one
statement (``SQLBackend._alone``) instead takes back a connection that such an
operation used before, and leaves it here afterwards, still checked out of
the pool.

What the pool does at checkout is kept where it matters: a connection leaving
this list is checked the way the backend's checkout event checks it
(``alive``) and replaced if the server closed it. The list keeps a connection
only after a statement that succeeded, so it never holds one in a
transaction; after an error the connection goes back to the pool, which
resets it. Where the pool has more to do at checkout or checkin (a
``pre_ping``, a ``recycle`` age, listeners of the caller's own), or is too
small to lend connections for good, the list stays empty and every
operation goes through the pool.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.pool import QueuePool

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool


class IdleConnections:
    """Up to ``limit`` pooled connections (SQLAlchemy's pool "fairies"), last used first out."""

    __slots__ = ("_alive", "_engine", "_idle", "_lock", "_pid", "limit")

    def __init__(self, engine: Engine, alive: Callable[[Any], bool]) -> None:
        self._engine = engine
        self._alive = alive
        self.limit = lendable(engine.pool)
        self._idle: list[Any] = []
        self._pid = os.getpid()

    def take(self) -> tuple[Any, bool]:
        """A live pooled connection, one left here else one checked out of the
        pool, and whether it may be kept afterwards (``give_back``)."""
        if self._pid != os.getpid():
            # A forked child: the parent's connections are not ours to use or close.
            self._idle, self._pid = [], os.getpid()
        keepable = self._pool_is_plain()
        if not keepable:
            # Listeners: the pool sees every checkout and checkin from now on.
            self.clear()
        while self._idle:
            try:
                fairy = self._idle.pop()
            except IndexError:  # another thread took the last one
                break
            if self._alive(fairy.dbapi_connection):
                return fairy, keepable
            fairy.invalidate()  # closed, and its pool slot freed
        return self._engine.raw_connection(), keepable

    def give_back(self, fairy: Any, *, keep: bool) -> None:
        """Keep ``fairy`` for the next operation if ``keep`` (``take`` said it
        may be kept, and its statement succeeded) and there is room; else
        check it in to the pool."""
        if keep and fairy.is_valid and self._pid == os.getpid():
            idle = self._idle
            idle.append(fairy)
            # No lock: list operations are atomic. Threads giving back at once
            # may overshoot the limit for a moment; each then returns one.
            if len(idle) <= self.limit:
                return
            try:
                fairy = idle.pop(0)
            except IndexError:
                return
        fairy.close()

    def clear(self) -> None:
        """Check every connection kept here back in to the pool."""
        while self._idle:
            try:
                self._idle.pop().close()
            except IndexError:
                return

    def __len__(self) -> int:
        return len(self._idle)

    def _pool_is_plain(self) -> bool:
        """Whether the pool does nothing at checkout and checkin that this list would skip:
        no listeners there but the backend's own checkout check."""
        dispatch = self._engine.pool.dispatch
        return len(dispatch.checkout) <= 1 and not dispatch.checkin


def lendable(pool: Pool) -> int:
    """How many connections may stay checked out of ``pool`` between operations.

    As many as the pool keeps open (``pool_size``), less one where that would
    leave no connection for the operations that go through the pool (such as a
    pool of one), so that those never wait for a connection lying idle here.
    None at all from a pool that pings or recycles connections at checkout,
    or from one other than a ``QueuePool``.
    """
    if not isinstance(pool, QueuePool):
        return 0
    if getattr(pool, "_pre_ping", False) or getattr(pool, "_recycle", -1) >= 0:
        return 0
    size = pool.size()
    overflow = getattr(pool, "_max_overflow", 0)
    if overflow < 0:  # no bound
        return size
    return max(0, min(size, size + overflow - 1))
