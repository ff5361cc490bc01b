"""What a wait blocks on: the seam between the waiting logic and threads or an event loop.

``wait_for_jobs`` (``wakeups``) and the listening connection (``listener``)
are written once, as sync code. Where they pause they use this module's two
things: a ``Signal`` (set by one side, waited on with a timeout by the other)
and a background runner. ``ThreadWaits`` is the sync backend's: a
``threading.Event``, and a daemon thread. ``LoopWaits`` is the async
backend's, whose operations run in a greenlet on the event loop
(``sqlalchemy.util.greenlet_spawn``): its signal is an ``asyncio.Event``
whose ``wait`` awaits on the loop through ``await_only``, so a waiting task
never blocks the loop, and its runner is a task of that loop running the
same sync code in a greenlet of its own.

Cancelling a task that waits raises ``CancelledError`` where it awaits,
inside the sync code, whose ``finally`` blocks then run as for any other
exception.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy.util.concurrency import await_only, greenlet_spawn


class Signal(Protocol):
    def set(self) -> None: ...

    def clear(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self, timeout: float) -> bool:
        """Until set or ``timeout`` seconds passed; whether it was set."""
        ...


class Running(Protocol):
    @property
    def ended(self) -> bool:
        """Whether the work has ended (or can never run again: its loop is gone)."""
        ...

    def stop(self) -> None:
        """Interrupt the work if that is possible (an awaiting task), and see it end.

        Work that cannot be interrupted (a thread) must watch a signal of its own.
        """
        ...


class Waits(Protocol):
    def signal(self) -> Signal: ...

    def start(self, run: Callable[[], None], name: str) -> Running: ...


class ThreadWaits:
    """For the sync backend: events of ``threading``, work in a daemon thread."""

    def signal(self) -> Signal:
        return threading.Event()

    def start(self, run: Callable[[], None], name: str) -> Running:
        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return _Thread(thread)


class _Thread:
    def __init__(self, thread: threading.Thread) -> None:
        self._thread = thread

    @property
    def ended(self) -> bool:
        return not self._thread.is_alive()

    def stop(self) -> None:
        """Nothing to interrupt: the thread sees its stop signal and ends by itself."""


class LoopWaits:
    """For the async backend, called from a greenlet on the event loop:
    events of ``asyncio`` awaited there, work in a task of the loop."""

    def signal(self) -> Signal:
        return LoopSignal()

    def start(self, run: Callable[[], None], name: str) -> Running:
        task = asyncio.ensure_future(greenlet_spawn(run))
        task.set_name(name)
        return _Task(task)


class LoopSignal:
    """An ``asyncio.Event`` behind the ``Signal`` interface, set and waited on from the loop's thread."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return bool(await_only(_event_set(self._event, timeout)))


async def _event_set(event: asyncio.Event, timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


class _Task:
    def __init__(self, task: asyncio.Task[Any]) -> None:
        self._task = task

    @property
    def ended(self) -> bool:
        return self._task.done() or self._task.get_loop().is_closed() or not self._on_this_loop()

    def stop(self) -> None:
        task = self._task
        if task.done() or task.get_loop().is_closed():
            return
        if not self._on_this_loop():
            task.get_loop().call_soon_threadsafe(task.cancel)
            return
        task.cancel()
        await_only(_ended(task))

    def _on_this_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._task.get_loop()
        except RuntimeError:  # no loop runs here
            return False


async def _ended(task: asyncio.Task[Any]) -> None:
    """Until ``task`` has ended, whatever it ended with."""
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # retrieved, so that asyncio does not report it as never retrieved
