"""The jobs-over-time chart: stacked bars by state, drawn with block characters.

``draw(series, unit, width, colour)`` is pure: it returns a rich ``Text`` and
reads no database, so its layout is checked in unit tests. With colour each
state is a coloured block; without (a pipe, ``NO_COLOR``) each state has its
own glyph, so the stacks still read apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text

from .render import STATE_STYLES

if TYPE_CHECKING:
    from sidequest_sql.records import JobCountsAt

#: Bottom of a bar first: what is finished sits below what is still going.
STACK_ORDER = ("completed", "failed", "canceled", "running", "claimed", "waiting")
PLAIN_GLYPHS = {
    "completed": "█",
    "failed": "X",
    "canceled": "-",
    "running": "▓",
    "claimed": "▒",
    "waiting": "░",
}
COLOUR_GLYPH = "█"
UNIT_NAMES = {"m": "minute", "h": "hour", "d": "day"}
HEIGHT = 8
MAX_BAR = 5


def glyph(state: str, colour: bool) -> str:
    return COLOUR_GLYPH if colour else PLAIN_GLYPHS[state]


def group(series: Sequence[JobCountsAt], size: int) -> list[tuple[datetime, dict[str, int]]]:
    """Consecutive buckets summed ``size`` at a time, each labelled by its first."""
    columns = []
    for start in range(0, len(series), size):
        chunk = series[start : start + size]
        counts = {state: sum(getattr(bucket, state) for bucket in chunk) for state in STACK_ORDER}
        columns.append((chunk[0].timestamp, counts))
    return columns


def split_height(height: int, counts: dict[str, int]) -> dict[str, int]:
    """``height`` cells shared among the states by largest remainder."""
    total = sum(counts.values())
    if total == 0 or height == 0:
        return {state: 0 for state in counts}
    exact = {state: height * n / total for state, n in counts.items()}
    cells = {state: math.floor(share) for state, share in exact.items()}
    left = height - sum(cells.values())
    by_remainder = sorted(counts, key=lambda s: (exact[s] - cells[s], counts[s]), reverse=True)
    for state in by_remainder[:left]:
        cells[state] += 1
    return cells


def bar_height(total: int, peak: int, height: int) -> int:
    if total == 0:
        return 0
    return max(1, round(height * total / peak))


def time_label(moment: datetime, unit: str) -> str:
    return moment.strftime("%m-%d" if unit == "d" else "%H:%M")


def draw(series: Sequence[JobCountsAt], unit: str, *, width: int = 80, colour: bool = True) -> Text:
    """The stacked chart of ``series`` (``count_jobs_over_time`` output) in ``width`` columns."""
    if not series:
        return Text("no buckets to draw")
    peak_total = 0
    y_width = 1
    # The y labels decide the plot width, which decides the grouping: settle it in two passes.
    for _ in range(2):
        plot_width = max(width - y_width - 3, 8)
        size = math.ceil(len(series) / plot_width)
        columns = group(series, size)
        peak_total = max(sum(counts.values()) for _, counts in columns)
        y_width = len(str(peak_total))
    cell = plot_width // len(columns)
    bar = 1 if cell < 2 else min(cell - 1, MAX_BAR)
    stride = bar + (1 if cell >= 2 else 0)

    step = f"{size} {UNIT_NAMES[unit]}s" if size > 1 else UNIT_NAMES[unit]
    span = f"{len(series)} {UNIT_NAMES[unit]}{'s' if len(series) > 1 else ''}"
    out = Text()
    first, last = series[0].timestamp, series[-1].timestamp
    out.append(f"Jobs over the last {span}, one bar per {step}\n", style="bold")
    out.append(f"from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC\n", style="dim")

    stacks = []
    for _, counts in columns:
        cells = split_height(bar_height(sum(counts.values()), peak_total, HEIGHT), counts)
        stack = [state for state in STACK_ORDER for _ in range(cells[state])]
        stacks.append(stack)

    for row in range(HEIGHT - 1, -1, -1):
        if row == HEIGHT - 1:
            label = str(peak_total)
        elif row == HEIGHT // 2 - 1 and peak_total >= 2:
            label = str(round(peak_total * HEIGHT // 2 / HEIGHT))
        else:
            label = ""
        out.append(f"{label:>{y_width}} ", style="dim")
        out.append("┤" if label else "│", style="dim")
        for stack in stacks:
            if row < len(stack):
                state = stack[row]
                out.append(glyph(state, colour) * bar, style=STATE_STYLES[state])
            else:
                out.append(" " * bar)
            out.append(" " * (stride - bar))
        out.append("\n")
    out.append(f"{'0':>{y_width}} └" + "─" * (stride * len(columns)) + "\n", style="dim")

    labels = [time_label(moment, unit) for moment, _ in columns]
    axis = [" "] * max(width - y_width - 2, stride * len(columns))
    free_from = 0
    for index in _label_positions(len(columns)):
        text = labels[index]
        at = index * stride
        if at < free_from or at + len(text) > len(axis):
            continue
        axis[at : at + len(text)] = list(text)
        free_from = at + len(text) + 1
    out.append(" " * (y_width + 2) + "".join(axis).rstrip() + "\n", style="dim")

    totals = {state: sum(counts[state] for _, counts in columns) for state in STACK_ORDER}
    shown = [state for state in STACK_ORDER if totals[state]]
    if not shown:
        out.append("no jobs in this time range")
        return out
    for i, state in enumerate(shown):
        if i:
            out.append("  ")
        out.append(glyph(state, colour), style=STATE_STYLES[state])
        out.append(f" {state} {totals[state]}")
    return out


def _label_positions(count: int) -> list[int]:
    """First, last, then evenly between: the axis labels worth trying, in order."""
    if count == 1:
        return [0]
    picks = [0]
    for k in (1, 2, 3, 4, 5, 6, 7):
        picks.append(round(k * (count - 1) / 8))
    picks.append(count - 1)
    return sorted(set(picks))
