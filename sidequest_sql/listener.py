"""The one connection a backend listens on for jobs, shared by all its waits.

Started by the first ``wait_for_jobs`` of a backend whose dialect has a
``JobNotifier`` (``hooks``), it runs in the background until ``close()``:
in a daemon thread under the sync backend, in a task of the event loop under
the async one (``waits``), the same code either way. Its connection is a
driver connection made by the backend's pool and then detached from it
(``PoolProxiedConnection.detach``): made with the same URL, options and
per-connection set-up, in autocommit, used by nothing else, and not counted
against the pool. Every notification it receives is handed to the waits of
its queue (``wakeups.Wakeups.deliver``).

Whether it can be relied on is checked, not assumed. After listening it sends
a probe on its own channel from a pooled connection, as any other process
would, and counts itself listening only once that comes back; it probes again
after every ``RECHECK_S`` of listening. So:

- Behind PgBouncer in transaction pooling mode, LISTEN runs on a server
  connection the client gives back at once, and nothing comes back: the
  listener says so in one warning, and waits poll (``poll_interval``); it
  probes again every ``UNHEARD_RETRY_S`` in case that changes.
- A connection that dies (``pg_terminate_backend``, a restart) fails at once;
  one that goes silent (a network that drops it without a reset) fails its
  next probe. Either way waits poll meanwhile, and the listener connects
  again after ``FIRST_RETRY_S``, doubling up to ``LAST_RETRY_S``, with one
  warning per outage and a line at info level once it is back.

Every change of whether it listens is told to the waits (``changed``): a
wait that was relying on notifications polls from then on, and one that was
polling looks at the store again once notifications flow, since what was
sent before the LISTEN never reaches it.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError

from .connections import describe, driver_message

if TYPE_CHECKING:
    from .execution import Execution
    from .hooks import JobNotifier
    from .waits import Running, Waits

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 2.0
"""How long a probe may take to come back before the connection counts as not hearing."""
RECHECK_S = 60.0
"""Seconds of listening between two probes."""
FIRST_RETRY_S = 0.1
LAST_RETRY_S = 10.0
"""The pause before connecting again after a failure: doubled each time, up to this."""
UNHEARD_RETRY_S = 300.0
"""The pause before trying again where probes did not come back."""
HEARTBEAT_S = 0.5
"""The longest the listener waits on its connection without looking whether it must stop."""
PROBE_PREFIX = "sidequest-probe:"


class State(enum.Enum):
    STARTING = "starting"
    LISTENING = "listening"
    LOST = "lost"
    UNHEARD = "unheard"
    STOPPED = "stopped"


class Unheard(Exception):
    """A probe sent on the channel did not come back in time."""


class Listener:
    """One backend's listening connection and the loop that reads it (see the module docstring)."""

    def __init__(
        self,
        execution: Execution,
        notifier: JobNotifier,
        schema: str | None,
        waits: Waits,
        *,
        deliver: Callable[[str], None],
        changed: Callable[[], None],
    ) -> None:
        self._execution = execution
        self._deliver = deliver
        self._changed = changed
        self._notifier = notifier
        self._schema = schema
        self._waits = waits
        self._stop = waits.signal()
        self._running: Running | None = None
        self._where = describe(execution.url)
        self.state = State.STARTING
        self._retry = FIRST_RETRY_S
        self._heard_before = False
        self.connection: Any = None
        """The driver connection listened on, while there is one (for tests that end it)."""
        self.channel: str | None = None

    @property
    def listening(self) -> bool:
        """Whether notifications arrive: listening, and the last probe came back."""
        return self.state is State.LISTENING

    @property
    def ended(self) -> bool:
        return self._running is not None and self._running.ended

    def start(self) -> None:
        self._running = self._waits.start(self._run, name="sidequest-listener")

    def stop(self) -> None:
        """End the listening; under the async backend, wait the moment the task takes to end."""
        self._stop.set()
        if self._running is not None:
            self._running.stop()

    # -- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._listen()
                except Unheard:
                    pause = UNHEARD_RETRY_S
                    self._enter(State.UNHEARD)
                except Exception as exc:  # noqa: BLE001 - whatever failed, waits poll and the listener retries
                    if self._stop.is_set():
                        break
                    pause, self._retry = self._retry, min(self._retry * 2, LAST_RETRY_S)
                    self._lost(exc, pause)
                else:
                    break  # it returns only once told to stop
                self._stop.wait(pause)
        finally:
            self._enter(State.STOPPED)

    def _listen(self) -> None:
        """One connection: listen and probe, then hand notifications on until it fails or must stop.

        Raises ``Unheard`` when the first probe does not come back and none
        ever did; any other probe that does not come back means a connection
        gone silent.
        """
        fairy = self._execution.root_engine.raw_connection()
        fairy.detach()
        self.connection = fairy.dbapi_connection
        try:
            channel = self.channel = self._notifier.listen(self.connection, self._schema)
            token: str | None = self._send_probe(channel)
            sent = time.monotonic()
            heard = False
            while not self._stop.is_set():
                now = time.monotonic()
                if token is None and now - sent >= RECHECK_S:
                    token, sent = self._send_probe(channel), now
                if token is not None and now - sent > PROBE_TIMEOUT_S:
                    if heard or self._heard_before:
                        raise ConnectionError(f"it went silent: a probe did not come back in {PROBE_TIMEOUT_S} s")
                    with contextlib.suppress(Exception):  # a courtesy: the verdict stands either way
                        self._notifier.unlisten(self.connection)
                    raise Unheard(f"no probe came back in {PROBE_TIMEOUT_S} s")
                left = (PROBE_TIMEOUT_S if token is not None else RECHECK_S) - (now - sent)
                for arrived, payload in self._notifier.receive(self.connection, max(0.0, min(HEARTBEAT_S, left))):
                    if arrived != channel:
                        continue
                    if payload == token:
                        token, heard, self._heard_before = None, True, True
                        self._retry = FIRST_RETRY_S
                        self._enter(State.LISTENING)
                    elif not payload.startswith(PROBE_PREFIX):
                        self._deliver(payload)
        finally:
            connection, self.connection = self.connection, None
            with contextlib.suppress(Exception):  # a dead connection: closing it is all that is left to do
                connection.close()  # the driver's own close: no pool to give it back to

    def _send_probe(self, channel: str) -> str:
        token = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        statement = self._notifier.probe(channel, token)
        self._execution.write(lambda conn: conn.execute(statement), one_statement=True)
        return token

    # -- telling the waits, and the log -------------------------------------------------

    def _enter(self, state: State) -> None:
        before, self.state = self.state, state
        if state is before:
            return
        if state is State.LISTENING and before in (State.LOST, State.UNHEARD):
            log.info("waiting for jobs on %s: the listening connection hears notifications again", self._where)
        if state is State.UNHEARD and before is not State.UNHEARD:
            log.warning(
                "waiting for jobs on %s: notifications do not reach the listening connection (behind PgBouncer in "
                "transaction pooling mode, LISTEN has no session to live in): waits poll every poll_interval "
                "seconds instead",
                self._where,
            )
        self._changed()

    def _lost(self, error: Exception, retry: float) -> None:
        said = driver_message(error) if isinstance(error, DBAPIError) else " ".join(str(error).split())
        said = said or type(error).__name__
        if self.state is not State.LOST:
            log.warning(
                "waiting for jobs on %s: the listening connection failed (%s); waits poll until it is back, "
                "trying again in %.1f s",
                self._where,
                said,
                retry,
            )
        else:
            log.debug("waiting for jobs on %s: listening again failed (%s); next try in %.1f s", self._where, said, retry)
        self._enter(State.LOST)

