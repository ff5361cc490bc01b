"""Sync code run from a coroutine, in greenlets kept for the next call.

The async backend runs each operation, sync code, in a greenlet whose driver
calls await the real driver (``sqlalchemy.util.await_``). SQLAlchemy's
``greenlet_spawn`` makes a new greenlet per call, which ends with it:
measured on Postgres, making it and its first switches cost an operation
about 20 µs of client CPU, as much as psycopg spends reading a job's row.
``run`` is ``greenlet_spawn`` over greenlets that, their call done, wait in
their thread for the next one instead of ending.

What ``await_`` relies on is kept: the greenlet is one of SQLAlchemy's
(``__sqlalchemy_greenlet_provider__``), its parent is the greenlet running the
event loop, and it runs in the awaiting task's context (``contextvars``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from greenlet import GreenletExit, getcurrent, greenlet

_T = TypeVar("_T")

# Greenlets kept per thread for later calls; more are made while as many calls await at once.
KEPT = 64


class _Runner(greenlet):
    __sqlalchemy_greenlet_provider__ = True


class _Done:
    """What a runner hands its driver when a call ends: its value or its error."""

    __slots__ = ("value", "error")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value = value
        self.error = error


class _Kept(threading.local):
    def __init__(self) -> None:
        self.runners: list[_Runner] = []


_kept = _Kept()


def _serve(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """A runner's life: each call's outcome to the driver, which sends the next call."""
    while True:
        try:
            done = _Done(fn(*args, **kwargs), None)
        except GreenletExit:  # the runner is being discarded: it ends here
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task, which raises it
            done = _Done(None, exc)
        fn = args = kwargs = None  # type: ignore[assignment]  # hold nothing of a finished call
        fn, args, kwargs = getcurrent().parent.switch(done)


async def run(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``fn(*args, **kwargs)`` in a greenlet where ``await_`` awaits on the running loop."""
    kept = _kept.runners
    driver = getcurrent()
    runner = kept.pop() if kept else _Runner(_serve, driver)
    runner.parent = driver
    runner.gr_context = driver.gr_context
    result = runner.switch(fn, args, kwargs)
    while type(result) is not _Done:
        if runner.dead:  # killed from outside mid-call: what it ended with
            return result
        try:
            value = await result
        except BaseException:  # the awaitable's error, or this task's cancellation: raised where fn awaits
            result = runner.throw(*sys.exc_info())
        else:
            result = runner.switch(value)
    runner.gr_context = None
    if len(kept) < KEPT:
        kept.append(runner)
    error = result.error
    if error is not None:
        result.error = None
        raise error
    return result.value
