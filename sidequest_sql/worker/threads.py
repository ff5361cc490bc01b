"""Threads for synchronous jobs, and how one that ran past its timeout is stopped.

A thread cannot be killed from outside. A job stopped (timed out, or still
running when shutdown's grace ends) gets ``JobStopped`` raised inside it, as
an asynchronous exception (``PyThreadState_SetAsyncExc``): Python raises it
at the job's next bytecode, so pure-Python code stops at once, and code
blocked in a C call (``time.sleep``, a socket read) stops when that call
returns. The worker keeps the stopped job's slot until its thread has really
ended, so stopped-but-still-running jobs never push it past its concurrency.
A job may catch ``JobStopped`` to clean up; it should not swallow it.

Threads are kept for reuse once idle; there are never more than the jobs
that run at once.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any


class JobStopped(BaseException):
    """Raised inside a synchronous job that the worker stopped (timed out, or shut down)."""


Result = tuple[bool, Any]
"""``(True, value)`` for a return, ``(False, exception)`` for a raise."""


class Running:
    """A synchronous job in a thread: ``result`` resolves on the loop when it ends."""

    def __init__(self, call: Callable[[], Any], result: asyncio.Future[Result]) -> None:
        self.call = call
        self.result = result
        self.thread: JobThread | None = None
        self.stopped = False

    def stop(self) -> None:
        """Raise ``JobStopped`` inside the job, once, if it is still running."""
        thread = self.thread
        if thread is not None:
            thread.interrupt(self)


class JobThreads:
    """Runs synchronous jobs in threads of their own, reused once idle."""

    def __init__(self) -> None:
        self._idle: list[JobThread] = []
        self._lock = threading.Lock()

    def start(self, call: Callable[[], Any]) -> Running:
        loop = asyncio.get_running_loop()
        running = Running(call, loop.create_future())
        with self._lock:
            thread = self._idle.pop() if self._idle else None
        if thread is None:
            thread = JobThread(self, loop)
            thread.start()
        thread.give(running)
        return running

    def idle(self, thread: JobThread) -> None:
        with self._lock:
            self._idle.append(thread)

    def close(self) -> None:
        """End the idle threads; busy ones end with their job (they are daemons)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for thread in idle:
            thread.give(None)


class JobThread(threading.Thread):
    def __init__(self, pool: JobThreads, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name="sidequest-job", daemon=True)
        self._pool = pool
        self._loop = loop
        self._work: SimpleQueue[Running | None] = SimpleQueue()
        self._lock = threading.Lock()
        self._current: Running | None = None

    def give(self, running: Running | None) -> None:
        if running is not None:
            running.thread = self
        self._work.put(running)

    def interrupt(self, running: Running) -> None:
        with self._lock:
            if self._current is not running or running.stopped:
                return
            running.stopped = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.ident or 0), ctypes.py_object(JobStopped))

    def run(self) -> None:
        while True:
            try:
                running = self._work.get()
                if running is None:
                    return
                self._run(running)
            except JobStopped:
                continue  # a stop that arrived after its job had ended

    def _run(self, running: Running) -> None:
        result: Result = (False, JobStopped())
        try:
            try:
                with self._lock:
                    self._current = running
                result = (True, running.call())
            except BaseException as exc:
                result = (False, exc)
            finally:
                with self._lock:
                    self._current = None
        except JobStopped:
            pass  # delivered between the job's end and the line above
        finally:
            self._deliver(running, result)

    def _deliver(self, running: Running, result: Result) -> None:
        while True:
            try:
                self._loop.call_soon_threadsafe(_resolve, running.result, result)
                self._pool.idle(self)
                return
            except JobStopped:
                continue
            except RuntimeError:
                return  # the loop is closed: nobody waits for this job any more


def _resolve(future: asyncio.Future[Result], result: Result) -> None:
    if not future.done():
        future.set_result(result)
