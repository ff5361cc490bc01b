"""Command-line values that need more than a click builtin: durations and time ranges."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import click

from sidequest_sql import fields

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"([1-9][0-9]{0,8}|0)([smhdw])", re.ASCII)


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``15m``, ``90s``, ``2w``: a count and one unit, nothing else."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 30d, 12h, 15m, 90s or 2w")
    count, unit = match.groups()
    try:
        return timedelta(**{UNITS[unit]: int(count)})
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def check_time_range(text: str) -> str:
    """A ``count_jobs_over_time`` range, checked as the library checks it."""
    try:
        fields.check_time_range(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time range such as 12h, 30m or 7d (at most {fields.MAX_BUCKETS} of a unit)"
        ) from None
    return text


class Duration(click.ParamType):
    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class TimeRange(click.ParamType):
    name = "RANGE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return check_time_range(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
