"""The async phases: N tasks on one event loop, the async backend against the raw async driver.

The library's side is one ``create_async_backend`` shared by the tasks; the
raw side one driver connection per task running the library's compiled
statements (``baseline``), as the sync raw client does: psycopg's
``AsyncConnection`` in autocommit on Postgres, aiosqlite with
``BEGIN IMMEDIATE`` per write on SQLite; both build the same records
(``raw_records``). As in ``runner``, clients connect and warm up before the
clock starts, the tasks start together, and the time runs to the last
task's end; CPU is the process's (aiosqlite's threads included).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sidequest_sql as sq

from . import fill
from .baseline import OurStatements, RawUnavailable, new_job
from .raw_records import DECODERS
from .progress import Progress
from .runner import WARM_CALLS, WARM_QUEUE, Outcome, Run, gather

if TYPE_CHECKING:
    from sidequest_sql import JobData
    from sidequest_sql.aio import AsyncSQLBackend
    from sidequest_sql.base import SQLBackend


class OurAsyncClient:
    """The async backend, shared by every task of the loop."""

    def __init__(self, backend: AsyncSQLBackend) -> None:
        self.backend = backend

    async def enqueue(self, queue: str, i: int) -> JobData:
        return await self.backend.create_new_job(new_job(queue, i))

    async def claim(self, queue: str, quantity: int) -> list[JobData]:
        return await self.backend.claim_pending_job(queue, quantity)

    async def complete(self, job_id: int) -> JobData:
        return await self.backend.update_job(job_id, state="completed", completed_at=datetime.now(UTC))

    async def close(self) -> None:
        """The backend belongs to whoever made it."""


class RawAsyncClient:
    """One raw asyncio driver connection executing the library's compiled statements."""

    def __init__(self, conn: Any, driver: str, statements: OurStatements, worker: str) -> None:
        self.conn = conn
        self.driver = driver
        self.st = statements
        self.worker = worker
        self.job = DECODERS[driver]

    @classmethod
    async def connect(cls, backend: SQLBackend, statements: OurStatements) -> RawAsyncClient:
        url = backend.url
        name = url.get_backend_name()
        if name == "postgresql":
            import psycopg

            query = {k: v if isinstance(v, str) else v[-1] for k, v in url.query.items()}
            conn: Any = await psycopg.AsyncConnection.connect(
                host=url.host, port=url.port, user=url.username, password=url.password,
                dbname=url.database, autocommit=True, **query,
            )
            await conn.execute("SET TIME ZONE 'UTC'")
            return cls(conn, "psycopg", statements, backend.worker_name)
        if name == "sqlite" and url.database not in (None, "", ":memory:"):
            import aiosqlite

            from sidequest_sql.dialects.sqlite import BUSY_TIMEOUT_MS

            conn = await aiosqlite.connect(url.database, isolation_level=None)
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute(f"PRAGMA synchronous = {getattr(backend, '_synchronous', 'NORMAL')}")
            await conn.execute("PRAGMA foreign_keys = ON")
            return cls(conn, "aiosqlite", statements, backend.worker_name)
        raise RawUnavailable(f"no raw asyncio baseline for {name}")

    async def _one(self, sql: str, params: Any) -> list[Any]:
        """One statement: in autocommit on Postgres, as one BEGIN IMMEDIATE transaction on SQLite."""
        conn = self.conn
        if self.driver == "psycopg":
            async with conn.cursor() as cur:
                await cur.execute(sql, params)
                return await cur.fetchall()
        # aiosqlite's one-call execute_fetchall, as the library's statements take it.
        await conn.execute_fetchall("BEGIN IMMEDIATE")
        try:
            rows = await conn.execute_fetchall(sql, params)
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise
        return list(rows)

    async def enqueue(self, queue: str, i: int) -> JobData:
        st = self.st.insert
        [row] = await self._one(st.sql, st.params({"queue": queue, "now": datetime.now(UTC), "args": [i]}))
        return self.job(row)

    async def claim(self, queue: str, quantity: int) -> list[JobData]:
        st = self.st.claim
        if st is None:
            raise RawUnavailable("the raw asyncio baseline needs a one-statement claim (UPDATE … RETURNING)")
        values = {"now": datetime.now(UTC), "queue": queue, "quantity": quantity, "worker": self.worker}
        job = self.job
        return [job(row) for row in await self._one(st.sql, st.params(values))]

    async def complete(self, job_id: int) -> JobData:
        st = self.st.complete
        [row] = await self._one(st.sql, st.params({"job_id": job_id, "now": datetime.now(UTC)}))
        return self.job(row)

    async def close(self) -> None:
        await self.conn.close()


def raw_async_available(backend: SQLBackend, statements: OurStatements | None) -> bool:
    """Whether ``RawAsyncClient`` can run against ``backend``'s database."""
    url = backend.url
    if statements is None or statements.claim is None:
        return False
    name = url.get_backend_name()
    return name == "postgresql" or (name == "sqlite" and url.database not in (None, "", ":memory:"))


class _Blocking:
    """A ``RawAsyncClient`` driven from sync code, for ``checks.same_records``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: RawAsyncClient) -> None:
        self.loop = loop
        self.client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        return lambda *args: self.loop.run_until_complete(method(*args))


def same_records_async(backend: SQLBackend, statements: OurStatements, queue: str) -> list[str]:
    """``checks.same_records`` for the raw async client."""
    from .checks import same_records

    loop = asyncio.new_event_loop()
    try:
        client = loop.run_until_complete(RawAsyncClient.connect(backend, statements))
        try:
            return same_records(backend, _Blocking(loop, client), queue)
        finally:
            loop.run_until_complete(client.close())
    finally:
        loop.close()


# -- tasks: what one task does with its client --------------------------------------


async def enqueue_task(client: Any, tick: Callable[[int], None], *, queue: str, start: int, count: int) -> Outcome:
    out = Outcome()
    clock = time.perf_counter
    for i in range(start, start + count):
        t = clock()
        out.ids.append((await client.enqueue(queue, i)).id)
        out.latencies.append(clock() - t)
        tick(1)
    return out


async def claim_task(client: Any, tick: Callable[[int], None], *, queue: str, quantity: int) -> Outcome:
    """Claim and complete until the queue is empty."""
    out = Outcome()
    clock = time.perf_counter
    while True:
        t = clock()
        jobs = await client.claim(queue, quantity)
        out.latencies.append(clock() - t)
        if not jobs:
            return out
        for job in jobs:
            out.ids.append((await client.complete(job.id)).id)
        tick(len(jobs))


TASKS: dict[str, Callable[..., Awaitable[Outcome]]] = {"enqueue": enqueue_task, "claim": claim_task}


async def warm(client: Any) -> None:
    for i in range(WARM_CALLS):
        await client.enqueue(WARM_QUEUE, i)
    for _ in range(WARM_CALLS):
        for job in await client.claim(WARM_QUEUE, 1):
            await client.complete(job.id)


async def run_tasks(
    url: str,
    kind: str,
    task: str,
    kwargs_per_task: list[dict[str, Any]],
    *,
    backend: SQLBackend,
    statements: OurStatements | None,
    label: str,
    total: int | None,
    progress: Progress,
) -> Run:
    """``task`` on one task per item of ``kwargs_per_task``, on the running loop:
    the async backend's clients (``kind`` "ours") or the raw ones."""
    n = len(kwargs_per_task)
    ours: AsyncSQLBackend | None = None
    if kind == "ours":
        # A connection per task, as the raw side has.
        ours = sq.create_async_backend(url, pool_size=max(n, 5))
        clients: list[Any] = [OurAsyncClient(ours) for _ in range(n)]
    else:
        assert statements is not None
        clients = [await RawAsyncClient.connect(backend, statements) for _ in range(n)]
    try:
        # Every task warms up at once, so that the shared backend holds a connection per task.
        await asyncio.gather(*(warm(client) for client in clients))
        fill.delete_queue(backend, WARM_QUEUE)
        counts = [0] * n
        fn = TASKS[task]

        async def one(i: int) -> Outcome:
            def tick(k: int) -> None:
                counts[i] += k

            out = await fn(clients[i], tick, **kwargs_per_task[i])
            out.end = time.perf_counter()
            return out

        cpu0 = time.process_time()
        t0 = time.perf_counter()
        running = [asyncio.ensure_future(one(i)) for i in range(n)]
        with progress.task(label, total) as bar:
            while not all(r.done() for r in running):
                bar.update(sum(counts))
                await asyncio.wait(running, timeout=0.1)
            bar.update(sum(counts))
        cpu = time.process_time() - cpu0
        outcomes = [r.exception() or r.result() for r in running]
    finally:
        for client in clients:
            await client.close()
        if ours is not None:
            await ours.close()
    return gather(outcomes, t0, cpu)
