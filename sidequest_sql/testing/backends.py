"""The backends the suite tests: sync ones, or async ones driven from the suite's sync code.

The suite is written once, in plain sync calls. Run with ``--sidequest-async``
(or with the ``sidequest_async`` fixture overridden to return True), every
backend it makes is an ``AsyncSQLBackend`` behind a ``BlockingBackend``:
each call runs its coroutine on an event loop of the backend's own, in a
thread of its own, and waits for it. Threads that share one such backend
therefore run their operations as concurrent tasks of one loop, which is
how an asyncio application shares one.

A caller's transaction (``connection=``) is begun the same way for both
(``BackendFactory.begin``): a ``Connection`` of the backend's sync engine, or
an ``AsyncConnection`` of its async one, on its loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sidequest_sql.aio_operations import AsyncOperations

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from sidequest_sql.aio import AsyncSQLBackend
    from sidequest_sql.base import SQLBackend

_T = TypeVar("_T")
OPERATIONS = frozenset(name for name in vars(AsyncOperations) if not name.startswith("_"))
CALL_TIMEOUT_S = 600
"""How long the suite waits for one call on the loop before it calls the loop stuck."""


@dataclass(frozen=True)
class BackendFactory:
    """Makes backends for a test (sync or async); picklable, for the suite's processes."""

    asynchronous: bool = False

    def __call__(self, url: Any = None, **options: Any) -> Any:
        """``create_backend(url, **options)``, or its async twin behind a ``BlockingBackend``."""
        from sidequest_sql import create_async_backend, create_backend

        if not self.asynchronous:
            return create_backend(url, **options)
        return BlockingBackend(lambda: create_async_backend(url, **options))

    def dialect_of(self, backend: Any) -> type[SQLBackend]:
        """The ``SQLBackend`` subclass that serves ``backend`` (one this factory made)."""
        return backend.backend.backend_class if isinstance(backend, BlockingBackend) else type(backend)

    def begin(self, backend: Any, *, own_engine: bool = False) -> CallerTransaction:
        """A caller's transaction on ``backend``'s engine, to pass as ``connection=``; with
        ``own_engine``, on an engine of the caller's own for the same URL, as an application's."""
        if isinstance(backend, BlockingBackend):
            return backend.begin(own_engine=own_engine)
        if not own_engine:
            return SyncTransaction(backend.engine)
        from sqlalchemy import create_engine

        return SyncTransaction(create_engine(backend.url), owned=True)


class CallerTransaction:
    """A transaction a caller began: ``connection`` goes to operations, then ``commit`` or ``rollback``."""

    connection: Any

    def commit(self) -> None:
        raise NotImplementedError

    def rollback(self) -> None:
        raise NotImplementedError


class SyncTransaction(CallerTransaction):
    def __init__(self, engine: Engine, *, owned: bool = False) -> None:
        self._engine = engine if owned else None
        self.connection: Connection = engine.connect()
        self._transaction = self.connection.begin()

    def commit(self) -> None:
        self._end(self._transaction.commit)

    def rollback(self) -> None:
        self._end(self._transaction.rollback)

    def _end(self, end: Callable[[], None]) -> None:
        try:
            end()
        finally:
            self.connection.close()
            if self._engine is not None:
                self._engine.dispose()


class BlockingBackend:
    """An ``AsyncSQLBackend`` on an event loop thread of its own, called from sync code.

    Every operation of the async backend is here as a plain method taking the
    same arguments; attributes (``clock``, ``worker_name``, ``url``) are the
    async backend's, ``poll_interval`` is set on it too, and ``engine`` is its
    async engine's ``sync_engine`` (for event listeners and pool statistics,
    not for connecting).
    """

    def __init__(self, make: Callable[[], AsyncSQLBackend]) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sidequest-suite-loop", daemon=True)
        self._thread.start()
        try:
            self.backend: AsyncSQLBackend = self.run(_made(make))
        except BaseException:
            self._stop()
            raise

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the backend's loop and wait for its result."""
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(CALL_TIMEOUT_S)

    def __getattr__(self, name: str) -> Any:
        if name in OPERATIONS:
            operation = getattr(self.backend, name)
            return lambda *args, **kwargs: self.run(operation(*args, **kwargs))
        if name in ("backend", "loop"):
            raise AttributeError(name)
        return getattr(self.backend, name)

    @property
    def engine(self) -> Engine:
        return self.backend.engine.sync_engine

    @property
    def poll_interval(self) -> float:
        return self.backend.poll_interval

    @poll_interval.setter
    def poll_interval(self, seconds: float) -> None:
        self.backend.poll_interval = seconds

    def __repr__(self) -> str:
        return f"<BlockingBackend {self.backend!r}>" if "backend" in vars(self) else "<BlockingBackend>"

    def __enter__(self) -> BlockingBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self.run(self.backend.close())
        finally:
            self._stop()

    def begin(self, *, own_engine: bool = False) -> AsyncTransaction:
        return AsyncTransaction(self, own_engine=own_engine)

    def _stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(CALL_TIMEOUT_S)
        self.loop.close()


class AsyncTransaction(CallerTransaction):
    def __init__(self, blocking: BlockingBackend, *, own_engine: bool = False) -> None:
        self._blocking = blocking
        self._engine: AsyncEngine | None = None
        engine = blocking.backend.engine
        if own_engine:
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = self._engine = create_async_engine(blocking.backend.url)
        self.connection: AsyncConnection = blocking.run(_started(engine))

    def commit(self) -> None:
        self._blocking.run(_end(self.connection, self._engine, commit=True))

    def rollback(self) -> None:
        self._blocking.run(_end(self.connection, self._engine, commit=False))


async def _made(make: Callable[[], AsyncSQLBackend]) -> AsyncSQLBackend:
    return make()


async def _started(engine: AsyncEngine) -> AsyncConnection:
    connection = await engine.connect()
    await connection.begin()
    return connection


async def _end(connection: AsyncConnection, engine: AsyncEngine | None, *, commit: bool) -> None:
    try:
        if commit:
            await connection.commit()
        else:
            await connection.rollback()
    finally:
        await connection.close()
        if engine is not None:
            await engine.dispose()
