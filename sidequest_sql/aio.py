"""``AsyncSQLBackend``: every operation of the store as a coroutine, over an asyncio driver.

    backend = sq.create_async_backend("postgresql://app@localhost/app")
    await backend.migrate()
    [job] = await backend.claim_pending_job("emails")

Nothing is written twice. The operations are ``SQLBackend``'s own: the
async backend holds a ``SQLBackend`` of the URL's dialect whose engine is
SQLAlchemy's asyncio engine over the dialect's asyncio driver (psycopg's
``AsyncConnection``, aiosqlite, aiomysql: ``hooks.DialectHooks.async_engine_url``),
and runs each sync method in a greenlet, where every driver call awaits the
real driver on the running loop (``greenlets``: one kept for the next
operation rather than one made per operation). That is how SQLAlchemy's own
``AsyncConnection.run_sync`` works; the execution layer (``execution``),
its pool, kept connections, retries and error translation, is the same code
for both. The coroutine methods themselves (``aio_operations``) are
generated from ``SQLBackend`` and checked against it.

Cancelling a task (``task.cancel()``, ``asyncio.timeout``) inside an
operation interrupts it where it awaits; a write may then have been applied
or not, as after a ``ConnectionLostError``. A claim is the exception: it
never leaves jobs claimed that its caller did not receive (``claim_guard``).

``wait_for_jobs`` is the sync wait too: where it sleeps it awaits on the
loop (``waits.LoopWaits``), and the backend's listening connection, if its
dialect has one, is read by a task of that loop (``listener``).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any, TypeVar

from .aio_operations import AsyncOperations
from .claim_guard import ClaimGuard
from .greenlets import run

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine

    from .base import SQLBackend
    from .records import JobData
    from .times import Clock

# Alembic's context is one per process: migrations of one event loop's tasks
# take turns here, before the process-wide lock of ``migrations`` (which a
# task waiting on it would hold the whole loop up for).
_T = TypeVar("_T")

_migration_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


class AsyncSQLBackend(AsyncOperations):
    """A job store in one SQL database, for asyncio code. Create it with
    ``sidequest_sql.create_async_backend``.

    Every operation of ``SQLBackend`` is here as a coroutine, with the same
    arguments, records and errors; ``connection=`` takes a SQLAlchemy
    ``AsyncConnection``. Share one backend between the tasks of one event
    loop; it connects on its first operation.
    """

    def __init__(
        self,
        backend_class: type[SQLBackend],
        url: str | URL,
        *,
        schema: str | None = None,
        worker_name: str | None = None,
        clock: Clock | None = None,
        **engine_options: Any,
    ) -> None:
        backend = backend_class.__new__(backend_class)
        backend._asynchronous = True
        backend.__init__(url, schema=schema, worker_name=worker_name, clock=clock, **engine_options)  # type: ignore[misc]
        self._backend = backend
        engine = backend.execution.async_engine
        assert engine is not None
        self.engine: AsyncEngine = (
            engine if schema is None else engine.execution_options(schema_translate_map={None: schema})
        )

    @property
    def backend_class(self) -> type[SQLBackend]:
        """The dialect: the ``SQLBackend`` subclass whose operations this backend runs."""
        return type(self._backend)

    @property
    def supports_schemas(self) -> bool:
        """The dialect's flag: whether ``schema=`` can put the tables in a named schema."""
        return self._backend.supports_schemas

    @property
    def supports_skip_locked(self) -> bool:
        """The dialect's flag: whether a claim skips rows another transaction has locked."""
        return self._backend.supports_skip_locked

    @property
    def max_json_depth(self) -> int:
        """The dialect's flag: how many arrays and objects deep a JSON payload may nest."""
        return self._backend.max_json_depth

    @property
    def url(self) -> URL:
        """The URL of the engine: the dialect's asyncio driver."""
        return self._backend.url

    @property
    def schema(self) -> str | None:
        return self._backend.schema

    @property
    def clock(self) -> Clock:
        return self._backend.clock

    @property
    def worker_name(self) -> str:
        """What ``claimed_by`` records; read at claim time so it stays right after a fork."""
        return self._backend.worker_name

    @property
    def poll_interval(self) -> float:
        """Seconds between two looks at the store by ``wait_for_jobs`` where no
        notification can wake it (``hooks.DialectHooks.poll_interval``); settable."""
        return self._backend.poll_interval

    @poll_interval.setter
    def poll_interval(self, seconds: float) -> None:
        self._backend.poll_interval = seconds

    def __repr__(self) -> str:
        return repr(self._backend).replace(type(self._backend).__name__, f"Async{type(self._backend).__name__}", 1)

    async def __aenter__(self) -> AsyncSQLBackend:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every pooled connection."""
        await run(self._backend.close)

    # -- runners of the generated operations ------------------------------------------

    async def _run(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        connection = kwargs.get("connection")
        if connection is not None:
            kwargs["connection"] = _sync_connection(connection)
        return await run(getattr(self._backend, name), *args, **kwargs)

    async def _migrate(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        turn = _migration_turns.get(loop)
        if turn is None:
            turn = _migration_turns[loop] = asyncio.Lock()
        async with turn:
            return await self._run(name, *args, **kwargs)

    async def _claim(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """The claim in a task of its own, under a ``ClaimGuard``: cancelled
        before its statement went, the claim is cancelled; after, it ends and
        gives its jobs back before the cancellation goes on."""
        if kwargs.get("connection") is not None:
            # In the caller's transaction: its rollback undoes the claim.
            return await self._run(name, *args, **kwargs)
        loop = asyncio.get_running_loop()
        # What the caller awaits: cancelling it leaves the claim's task running
        # (as asyncio.shield would, for one loop turn and one future less).
        answer: asyncio.Future[list[JobData]] = loop.create_future()
        guard = ClaimGuard()
        token = guard.install()
        try:
            claim = loop.create_task(_answering(answer, run(getattr(self._backend, name), *args, **kwargs)))
        finally:
            guard.uninstall(token)
        try:
            return await answer
        except asyncio.CancelledError:
            if guard.entered:
                await self._give_back_when_done(claim)
            else:
                claim.cancel()
                await _finished(claim)
            raise

    async def _give_back_when_done(self, claim: asyncio.Future[list[JobData] | None]) -> None:
        await _finished(claim)
        jobs = claim.result()
        if jobs:  # else nothing came back: what it claimed, if anything, turns stale in time
            await _finished(asyncio.ensure_future(run(self._backend._give_back, jobs)))


async def _answering(answer: asyncio.Future[Any], work: Awaitable[_T]) -> _T | None:
    """``work``'s outcome set on ``answer`` if it is still awaited; ``work``'s
    value, or None if it failed (its error went to ``answer``, so that the
    task running this never ends in an error nobody retrieves)."""
    try:
        value = await work
    except BaseException as exc:
        if not answer.done():
            if isinstance(exc, asyncio.CancelledError):
                answer.cancel()
            else:
                answer.set_exception(exc)
        if not isinstance(exc, Exception) and not isinstance(exc, asyncio.CancelledError):
            raise  # KeyboardInterrupt, SystemExit: not the claim's to swallow
        return None
    if not answer.done():
        answer.set_result(value)
    return value


async def _finished(future: Awaitable[Any]) -> None:
    """Wait for ``future`` to end, however often the waiting task is cancelled meanwhile."""
    task = asyncio.ensure_future(future)
    while not task.done():
        try:
            await asyncio.shield(task)
        except (Exception, asyncio.CancelledError):  # its own error, or another cancellation of ours
            continue
    if not task.cancelled():
        task.exception()  # retrieved, so that asyncio does not report it as never retrieved


def _sync_connection(connection: Any) -> Any:
    """The sync ``Connection`` of a caller's ``AsyncConnection``."""
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection

    if isinstance(connection, AsyncConnection):
        if connection.sync_connection is None:
            raise ValueError(
                "connection is closed or not started; pass an open one (`async with engine.connect() as connection`)"
            )
        return connection.sync_connection
    if isinstance(connection, Connection):
        raise TypeError(
            "connection must be a SQLAlchemy AsyncConnection (such as await session.connection()) "
            "for the async backend, not a sync Connection"
        )
    raise TypeError(
        f"connection must be a SQLAlchemy AsyncConnection (such as await session.connection()), "
        f"not {type(connection).__name__}"
    )
