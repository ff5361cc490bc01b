"""A clock the tests move by hand, so time-dependent behaviour is checked, not avoided."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

START = datetime(2030, 1, 15, 12, 30, 45, 123456, tzinfo=UTC)


class ManualClock:
    """Returns the same instant until moved; safe to share between threads."""

    def __init__(self, now: datetime = START) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | None = None, **units: float) -> datetime:
        """Move forward by ``delta`` or by keyword units (``seconds=5``); return the new now."""
        with self._lock:
            self._now += delta if delta is not None else timedelta(**units)
            return self._now

    def set(self, now: datetime) -> None:
        with self._lock:
            self._now = now
