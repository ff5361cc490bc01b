"""Time as the store sees it: one injectable clock, UTC buckets, millisecond thresholds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal

Clock = Callable[[], datetime]
"""A zero-argument callable returning an aware datetime: the backend's only "now"."""

TimeUnit = Literal["m", "h", "d"]

UNIT_STEPS: Mapping[str, timedelta] = {
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}


def system_clock() -> datetime:
    """The default clock: the system's now, in UTC."""
    return datetime.now(UTC)


def truncate_time(moment: datetime, unit: str) -> datetime:
    """``moment`` (aware) cut down to the start of its minute, hour or day in UTC."""
    moment = moment.astimezone(UTC)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    if unit == "h":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def before(now: datetime, milliseconds: int) -> datetime:
    """``now`` minus ``milliseconds``, clamped to the range of datetime."""
    try:
        return now - timedelta(milliseconds=milliseconds)
    except OverflowError:
        return (datetime.min if milliseconds > 0 else datetime.max).replace(tzinfo=UTC)
