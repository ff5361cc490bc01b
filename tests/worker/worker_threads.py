"""Helpers of the worker tests: a worker in a thread, and waiting for what it does.

A module of its own, not the conftest: another directory's conftest may be the
module named ``conftest`` when several directories' tests run together.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sidequest_sql as sq


@contextmanager
def working(backend: Any, queues: tuple[str, ...] = ("default",), **options: Any) -> Iterator[sq.Worker]:
    """A worker on ``backend`` in a thread of its own, stopped (and checked stopped) on leaving."""
    settings: dict[str, Any] = {
        "handle_signals": False, "queue_refresh": 0.05,
        "release_stale_every": None, "cleanup_every": None, "grace": 10,
    }  # fmt: skip
    worker = sq.Worker(backend, queues, **{**settings, **options})
    failure: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:  # pragma: no cover - reported below
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(30)
        assert not thread.is_alive(), "the worker did not stop"
        assert not failure, failure


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
