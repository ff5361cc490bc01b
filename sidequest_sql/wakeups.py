"""``wait_for_jobs``: sleep until a job of some queues may be claimable, written once.

A wait registers first (a ``Subscription`` of its queues with the backend's
``Wakeups``), then looks at the store, then sleeps, and starts again each
time it is woken, until a look finds a claimable job or time runs out:

- A look is one statement: for each queue, a waiting job available now, else
  the earliest ``available_at`` of its waiting jobs (``look_statement``).
  The queues with a job available now are the answer. Otherwise the earliest
  future one bounds the sleep: the wait looks again when it comes due.
- It is woken by a notification for one of its queues, where the dialect has
  a ``JobNotifier`` and the backend's listening connection hears them
  (``listener``); by any change of whether that connection listens; and
  otherwise every ``poll_interval`` seconds (plus up to a quarter, at
  random, so that waits started together do not poll in step). Because it
  registered before it looked, a notification sent in between wakes it at
  once, so a job claimable when a wait starts, or made so later, is never
  slept through.
- Woken, it looks again rather than answering: it returns only queues it
  has just seen a claimable job in, and a notification for a job that another
  worker has claimed meanwhile, or that is due later, does not end it. A
  sleep that runs to the timeout with nothing waking it ends the wait
  without another look.

Time: "now" is the backend's clock, as for claims. A future job's bound is
the clock's distance to its ``available_at``, taken as real seconds (at
least ``MIN_RECHECK_S``): exact with the system clock. A clock that does not
follow real time (``testing.ManualClock``) is read again at each look, so a
wait with such a clock ends when a look finds the job available by that
clock; moving the clock wakes no one by itself.

The wait is sync code; where it sleeps it uses the backend's ``waits.Waits``,
so under the async backend (its operations run in a greenlet on the event
loop) it awaits on the loop instead of blocking it. All the waits of a
backend share one ``Wakeups`` and so one listening connection; a forked
child starts its own.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, bindparam, func, select

from .fields import check_queue_names, check_seconds
from .listener import Listener
from .schema import jobs
from .waits import LoopWaits, ThreadWaits

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .base import SQLBackend
    from .execution import Execution
    from .hooks import JobNotifier
    from .waits import Signal, Waits

MIN_RECHECK_S = 0.005
"""The shortest sleep before a future job's ``available_at``: a clock that stands still
(a test's) would otherwise have a wait look again and again."""
DUE_MARGIN_S = 0.001
"""Added to the sleep before a future job is due, so that the look after it never comes early."""
MAX_SLEEP_S = 600.0
"""The longest single sleep; a longer wait looks at the store again in between."""
POLL_JITTER = 0.25
"""Where waits poll, each sleep is ``poll_interval`` and up to this much more of it, at
random: waits started together (a process's worker threads) soon look at different times."""

# Listeners left behind by a parent process: kept, never closed or collected,
# since closing one from a forked child would end the parent's session.
_INHERITED: list[Listener] = []


def wait_for_jobs(backend: SQLBackend, queues: Any, timeout: Any, connection: Connection | None) -> list[str]:
    """``SQLBackend.wait_for_jobs``, see the module docstring."""
    names = check_queue_names(queues)
    seconds = check_seconds(timeout, "timeout")
    interval = check_seconds(backend.poll_interval, "poll_interval", positive=True)
    deadline = time.monotonic() + seconds
    if seconds == 0:
        return look(backend, names, connection)[0]
    with backend.execution.wakeups.subscribed(names) as subscription:
        while True:
            listening = subscription.reset()
            ready, due_in = look(backend, names, connection)
            left = deadline - time.monotonic()
            if ready or left <= 0:
                return ready
            sleep = min(left, MAX_SLEEP_S)
            if due_in is not None:
                sleep = min(sleep, due_in)
            if not listening:
                sleep = min(sleep, interval * random.uniform(1, 1 + POLL_JITTER))
            if not subscription.wait(sleep) and sleep >= left:
                return []  # slept to the end, and nothing said to look again


def look(backend: SQLBackend, names: list[str], connection: Connection | None) -> tuple[list[str], float | None]:
    """The queues of ``names`` holding a job claimable now, and the seconds until the
    earliest waiting job of the others comes due (None: none waits)."""
    now = backend._now()
    values: dict[str, Any] = {"now": now, **{f"queue_{i}": name for i, name in enumerate(names)}}
    count = len(names)
    [row] = backend.execution.rows(
        ("wait_for_jobs", count), lambda: look_statement(count), values, write=False, connection=connection
    )
    moments: Sequence[datetime | None] = row
    ready = [name for name, at in zip(names, moments, strict=True) if at is not None and at <= now]
    ahead = [at for at in moments if at is not None and at > now]
    if not ahead:
        return ready, None
    return ready, max(MIN_RECHECK_S, (min(ahead) - now).total_seconds() + DUE_MARGIN_S)


def look_statement(count: int) -> Select[Any]:
    """One row of ``count`` columns, one per queue (``queue_0``…): the ``available_at`` of a
    waiting job of that queue available at ``now``, else the earliest of its waiting jobs,
    else NULL.

    The first is found through the claim index and stops at the first job
    available; only when there is none does the earliest of the queue's
    (then all future) waiting jobs get looked for (COALESCE evaluates its
    arguments in turn, and the subqueries only when reached).
    """
    c = jobs.c
    now = bindparam("now", type_=c.available_at.type)
    columns = []
    for i in range(count):
        waiting = and_(c.state == "waiting", c.queue == bindparam(f"queue_{i}", type_=c.queue.type))
        available = select(c.available_at).where(waiting, c.available_at <= now).limit(1).scalar_subquery()
        earliest = select(func.min(c.available_at)).where(waiting).scalar_subquery()
        columns.append(func.coalesce(available, earliest).label(f"queue_{i}"))
    return select(*columns)


class Subscription:
    """One wait's registration: its queues, and the signal that wakes it."""

    __slots__ = ("_wakeups", "queues", "signal")

    def __init__(self, wakeups: Wakeups, queues: frozenset[str], signal: Signal) -> None:
        self._wakeups = wakeups
        self.queues = queues
        self.signal = signal

    def reset(self) -> bool:
        """Forget the wakes so far (the look that follows sees what they were for);
        whether notifications arrive now."""
        self.signal.clear()
        return self._wakeups.listening

    def wait(self, seconds: float) -> bool:
        """Sleep until woken or ``seconds`` have passed; whether it was woken."""
        return self.signal.wait(seconds)


class Wakeups:
    """The waits of one backend, and the listening connection they share (see the module docstring)."""

    def __init__(self, execution: Execution, notifier: JobNotifier | None, *, schema: str | None) -> None:
        self._execution = execution
        self._notifier = notifier
        self._schema = schema
        self._waits: Waits = LoopWaits() if execution.async_engine is not None else ThreadWaits()
        self._forget()

    def _forget(self) -> None:
        # A new lock: a forked child may have inherited the old one locked.
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._subscriptions: set[Subscription] = set()
        self.listener: Listener | None = None

    @property
    def listening(self) -> bool:
        """Whether the backend's listening connection hears notifications now."""
        listener = self.listener
        return listener is not None and listener.listening

    @contextmanager
    def subscribed(self, queues: list[str]) -> Iterator[Subscription]:
        """A wait's registration for the time it waits; starts the listening connection
        if the dialect has a notifier and none runs."""
        if self._pid != os.getpid():
            if self.listener is not None:
                _INHERITED.append(self.listener)
            self._forget()
        subscription = Subscription(self, frozenset(queues), self._waits.signal())
        with self._lock:
            self._subscriptions.add(subscription)
            if self._notifier is not None and (self.listener is None or self.listener.ended):
                self.listener = Listener(
                    self._execution, self._notifier, self._schema, self._waits, deliver=self.deliver, changed=self.nudge
                )
                self.listener.start()
        try:
            yield subscription
        finally:
            with self._lock:
                self._subscriptions.discard(subscription)

    def deliver(self, queue: str) -> None:
        """Wake the waits for ``queue``."""
        with self._lock:
            for subscription in self._subscriptions:
                if queue in subscription.queues:
                    subscription.signal.set()

    def nudge(self) -> None:
        """Wake every wait, to look again and see whether notifications arrive."""
        with self._lock:
            for subscription in self._subscriptions:
                subscription.signal.set()

    def close(self) -> None:
        """Stop listening (without waiting for a thread); waits going on poll from then on."""
        if self._pid != os.getpid():
            return
        with self._lock:
            listener, self.listener = self.listener, None
        if listener is not None:
            listener.stop()
        self.nudge()
