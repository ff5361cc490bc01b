"""The backend's operations as coroutines, whichever kind of backend the worker was given.

An ``AsyncSQLBackend``'s operations are awaited on the worker's loop. A
``SQLBackend``'s run in a few threads of their own, so that the loop never
blocks on the database and no job's thread can hold a store call up.
Either way the worker's scheduling code is written once, against ``call``.

Store calls are never cancelled: a claim cut off after its statement went
would leave jobs claimed that nobody runs.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sidequest_sql.aio import AsyncSQLBackend

if TYPE_CHECKING:
    from datetime import datetime

    from sidequest_sql.base import SQLBackend

STORE_THREADS = 3
"""A claim (or a start), a batch of outcomes and a housekeeping call may be in flight at once."""


class Store:
    def __init__(self, backend: SQLBackend | AsyncSQLBackend) -> None:
        self.backend = backend
        self.asynchronous = isinstance(backend, AsyncSQLBackend)
        self._threads: ThreadPoolExecutor | None = None
        if not self.asynchronous:
            self._threads = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="sidequest-store")

    @property
    def worker_name(self) -> str:
        return self.backend.worker_name

    @property
    def max_json_depth(self) -> int:
        """How deeply the store nests JSON: a job's result is checked against it."""
        return self.backend.max_json_depth

    def now(self) -> datetime:
        return self.backend.clock()

    async def call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """``backend.operation(*args, **kwargs)``, run to its end even if the caller is cancelled."""
        method = getattr(self.backend, operation)
        if self.asynchronous:
            future = asyncio.ensure_future(method(*args, **kwargs))
        else:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._threads, functools.partial(method, *args, **kwargs))
        return await asyncio.shield(future)

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
