"""SIGTERM and SIGINT: the first asks for a graceful stop, a second exits at once.

A second signal exits with status 128 + its number, as a shell reports a
process that a signal ended, leaving the worker's jobs running or claimed in
the store; stale release runs them again (at least once).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

log = logging.getLogger("sidequest_sql.worker")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> Callable[[], None]:
    """Route the signals to ``stop`` (first) and an immediate exit (second); return the undo.

    Does nothing off the main thread, where Python delivers no signals.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        name = signal.Signals(signum).name
        if len(received) == 1:
            log.warning("%s received: finishing running jobs, then exiting (again to exit at once)", name)
            stop()
            return
        log.warning("%s received again: exiting at once", name)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)

    for signum in SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)

    def undo() -> None:
        for signum in SIGNALS:
            loop.remove_signal_handler(signum)

    return undo
