"""A progress bar on stderr: rich's when rich is installed, else a plain line now and then."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _Bar:
    def __init__(self, update: Any) -> None:
        self.update = update


class Progress:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        try:
            import rich.progress
        except ImportError:
            self._rich = None
        else:
            self._rich = rich.progress

    def note(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    @contextmanager
    def task(self, label: str, total: int | None) -> Iterator[_Bar]:
        if not self.enabled:
            yield _Bar(lambda n: None)
            return
        if self._rich is not None:
            from rich.console import Console

            rp = self._rich
            columns = (
                rp.TextColumn("{task.description}"),
                rp.BarColumn(),
                rp.MofNCompleteColumn(),
                rp.TaskProgressColumn(),
                rp.TimeElapsedColumn(),
            )
            with rp.Progress(*columns, console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task(label, total=total)
                yield _Bar(lambda n: bar.update(task, completed=n))
            return
        last = [0.0]

        def update(n: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 2:
                last[0] = now
                print(f"  {label}: {n}/{total if total is not None else '?'}", file=sys.stderr, flush=True)

        yield _Bar(update)
