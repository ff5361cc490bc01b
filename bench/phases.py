"""The phases of a run and what each measures.

Each phase starts from empty tables (``fill.reset``), fills what it needs in
bulk, runs the library ("ours") and, where it has one, the raw-driver
baseline ("raw") on identical tables one right after the other, checks the
result, and adds rows to the report. The async phases add a third side, the
sync backend on as many threads as they have tasks ("sync"). With
``--repeat`` the sides alternate in order and the median is kept.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import checks, fill
from .aio import raw_async_available, run_tasks
from .clients import OurClient, RawClient
from .memory import peak_rss_mb, reset_peak
from .progress import Progress
from .runner import Run, run_processes, run_threads

if TYPE_CHECKING:
    from sidequest_sql.base import SQLBackend

    from .baseline import OurStatements

QUEUE = "bench-jobs"
FINISHED_QUEUE = "bench-finished"
# The history the stats phase's finished jobs span: the 12 h window holds
# about a tenth of them, the 7 d one all of them.
STATS_HISTORY = timedelta(days=5)


@dataclass
class Settings:
    url: str
    jobs: int = 2000
    threads: int = 4
    enqueue_threads: int = 8
    tasks: int = 4
    processes: int = 2
    quantities: tuple[int, ...] = (1, 10)
    batch: int = 10_000
    finished_sizes: tuple[int, ...] = (0, 100_000)
    waiting_sizes: tuple[int, ...] = (1_000, 50_000)
    waiting_claims: int = 1_000
    big_rows: int = 100_000
    memory_claims: int = 100_000
    list_rows: int = 1_000_000
    page: int = 1_000
    raw: bool = True
    repeat: int = 1


@dataclass
class Row:
    """One line of the report. Rates are jobs (or rows) per second."""

    phase: str
    variant: str
    jobs: int
    workers: str
    ours: float | None = None
    raw: float | None = None
    ours_p50_ms: float | None = None
    ours_p99_ms: float | None = None
    raw_p50_ms: float | None = None
    raw_p99_ms: float | None = None
    ours_cpu_us: float | None = None
    raw_cpu_us: float | None = None
    # The async phases: the sync backend on as many threads as the async one has tasks.
    sync: float | None = None
    sync_p50_ms: float | None = None
    sync_p99_ms: float | None = None
    sync_cpu_us: float | None = None
    peak_rss_mb: float | None = None
    check: str = ""
    seconds: float | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.raw:
            return None
        return self.ours / self.raw

    @property
    def sync_ratio(self) -> float | None:
        """The async backend's rate over the sync backend's, in the async phases."""
        if self.ours is None or not self.sync:
            return None
        return self.ours / self.sync


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Bench:
    def __init__(self, settings: Settings, backend: SQLBackend, statements: OurStatements | None, progress: Progress):
        self.s = settings
        self.backend = backend
        self.statements = statements
        self.progress = progress
        self.rows: list[Row] = []
        self.failures: list[str] = []

    # -- helpers -------------------------------------------------------------------------

    @property
    def kinds(self) -> list[str]:
        return ["ours", "raw"] if self.s.raw and self.statements is not None else ["ours"]

    @property
    def async_kinds(self) -> list[str]:
        """The async backend, the raw async driver where there is one, the sync backend."""
        raw = "raw" in self.kinds and raw_async_available(self.backend, self.statements)
        return ["ours", "raw", "sync"] if raw else ["ours", "sync"]

    def client_factory(self, kind: str) -> Callable[[], Any]:
        if kind == "ours":
            return lambda: OurClient(self.backend)
        return lambda: RawClient(self.backend, self.statements)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def prepare_waiting(self, count: int, finished: int = 0) -> set[int]:
        fill.reset(self.backend)
        if finished:
            fill.fill(self.backend, FINISHED_QUEUE, finished, now=self.now(), finished=True, queues_spread=4)
        fill.fill(self.backend, QUEUE, count, now=self.now())
        fill.analyze(self.backend)
        return fill.queue_ids(self.backend, QUEUE)

    def paired(
        self,
        row: Row,
        prepare: Callable[[], Any],
        run: Callable[[str], Run],
        check: Callable[[Any, Run], str],
        kinds: list[str] | None = None,
        jobs: int | None = None,
    ) -> Row:
        """Run each kind on freshly prepared tables, check it, keep the median rate."""
        kinds = kinds or self.kinds
        runs: dict[str, list[Run]] = {k: [] for k in kinds}
        verdicts = []
        for r in range(self.s.repeat):
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                prepared = prepare()
                reset_peak()
                result = run(kind)
                rss = peak_rss_mb()
                row.peak_rss_mb = max(row.peak_rss_mb or 0, rss or 0) or None
                try:
                    verdicts.append(check(prepared, result))
                except checks.CheckFailed as exc:
                    self.failures.append(f"{row.phase} {row.variant} ({kind}): {exc}")
                    verdicts.append(f"FAILED ({kind})")
                runs[kind].append(result)
        for kind, results in runs.items():
            n = jobs if jobs is not None else len(results[0].ids)
            rates = [n / r.elapsed for r in results]
            rate = statistics.median(rates)
            latencies = [x for r in results for x in r.latencies]
            cpu_us = statistics.median(r.cpu / n * 1e6 for r in results) if n else None
            setattr(row, kind, rate)
            setattr(row, f"{kind}_p50_ms", percentile(latencies, 0.50))
            setattr(row, f"{kind}_p99_ms", percentile(latencies, 0.99))
            setattr(row, f"{kind}_cpu_us", cpu_us)
            row.samples[kind] = rates
        failed = [v for v in verdicts if v.startswith("FAILED")]
        row.check = ", ".join(failed) if failed else verdicts[-1]
        self.rows.append(row)
        self.progress.note(_summary(row))
        return row

    def threads(self, kind: str, task: str, kwargs: list[dict[str, Any]], label: str, total: int | None) -> Run:
        return run_threads(
            self.client_factory(kind), task, kwargs, backend=self.backend,
            label=f"{label} [{kind}]", total=total, progress=self.progress,
        )

    def tasks(self, kind: str, task: str, kwargs: list[dict[str, Any]], label: str, total: int | None) -> Run:
        """On one event loop: the async backend ("ours"), the raw async driver
        ("raw"); "sync" is the sync backend on as many threads."""
        if kind == "sync":
            return self.threads("ours", task, kwargs, f"{label} [sync, threads]", total)
        return asyncio.run(run_tasks(
            self.s.url, kind, task, kwargs, backend=self.backend, statements=self.statements,
            label=f"{label} [{kind}, tasks]", total=total, progress=self.progress,
        ))

    def processes(self, kind: str, task: str, kwargs: list[dict[str, Any]], label: str, total: int | None) -> Run:
        return run_processes(
            self.s.url, kind, task, kwargs, backend=self.backend,
            label=f"{label} [{kind}]", total=total, progress=self.progress,
        )

    # -- enqueue ---------------------------------------------------------------------------

    def enqueue_seq(self) -> None:
        n = self.s.jobs
        self.paired(
            Row("enqueue", "sequential", n, "1 thread"),
            lambda: fill.reset(self.backend),
            lambda kind: self.threads(kind, "enqueue", [{"queue": QUEUE, "start": 0, "count": n}], "enqueue", n),
            lambda _, run: checks.enqueued_once(self.backend, QUEUE, run.ids, n),
        )

    def enqueue_threads(self) -> None:
        w = self.s.enqueue_threads
        per = self.s.jobs // w
        n = per * w
        kwargs = [{"queue": QUEUE, "start": i * per, "count": per} for i in range(w)]
        self.paired(
            Row("enqueue", f"{w} threads", n, f"{w} threads"),
            lambda: fill.reset(self.backend),
            lambda kind: self.threads(kind, "enqueue", kwargs, f"enqueue x{w}", n),
            lambda _, run: checks.enqueued_once(self.backend, QUEUE, run.ids, n),
        )

    def enqueue_batch(self) -> None:
        n = self.s.batch
        self.paired(
            Row("enqueue", f"batch of {n}", n, "1 thread"),
            lambda: fill.reset(self.backend),
            lambda kind: self.threads(
                kind, "batch", [{"queue": QUEUE, "start": 0, "count": n, "batch": n}], "create_new_jobs", n
            ),
            lambda _, run: checks.enqueued_once(self.backend, QUEUE, run.ids, n),
        )

    # -- claim + complete ---------------------------------------------------------------------

    def _claim(self, phase: str, variant: str, workers: str, run: Callable[[str], Run], **prep: Any) -> Row:
        n = self.s.jobs
        return self.paired(
            Row(phase, variant, n, workers),
            lambda: self.prepare_waiting(n, **prep),
            run,
            lambda expected, result: checks.exactly_once(self.backend, QUEUE, expected, result.ids),
        )

    def claim_threads(self) -> None:
        w = self.s.threads
        for q in self.s.quantities:
            kwargs = [{"queue": QUEUE, "quantity": q}] * w
            self._claim(
                "claim+complete", f"q={q}, {w} threads", f"{w} threads",
                lambda kind, kw=kwargs, q=q: self.threads(kind, "claim", kw, f"claim q={q} x{w}", self.s.jobs),
            )

    def claim_procs(self) -> None:
        p = self.s.processes
        for q in self.s.quantities:
            kwargs = [{"queue": QUEUE, "quantity": q}] * p
            self._claim(
                "claim+complete", f"q={q}, {p} processes", f"{p} processes",
                lambda kind, kw=kwargs, q=q: self.processes(kind, "claim", kw, f"claim q={q} x{p} procs", self.s.jobs),
            )

    # -- async ------------------------------------------------------------------------------

    def async_enqueue(self) -> None:
        t = self.s.tasks
        per = self.s.jobs // t
        n = per * t
        kwargs = [{"queue": QUEUE, "start": i * per, "count": per} for i in range(t)]
        self.paired(
            Row("async enqueue", f"{t} tasks", n, f"{t} tasks"),
            lambda: fill.reset(self.backend),
            lambda kind: self.tasks(kind, "enqueue", kwargs, f"enqueue x{t}", n),
            lambda _, run: checks.enqueued_once(self.backend, QUEUE, run.ids, n),
            kinds=self.async_kinds,
        )

    def async_claim(self) -> None:
        t = self.s.tasks
        for q in self.s.quantities:
            kwargs = [{"queue": QUEUE, "quantity": q}] * t
            n = self.s.jobs
            self.paired(
                Row("async claim+complete", f"q={q}, {t} tasks", n, f"{t} tasks"),
                lambda: self.prepare_waiting(n),
                lambda kind, kw=kwargs, q=q: self.tasks(kind, "claim", kw, f"claim q={q} x{t}", n),
                lambda expected, result: checks.exactly_once(self.backend, QUEUE, expected, result.ids),
                kinds=self.async_kinds,
            )

    def finished(self) -> None:
        """Claim+complete with finished jobs kept in the table (library only; ratio to 0)."""
        w = self.s.threads
        kwargs = [{"queue": QUEUE, "quantity": 1}] * w
        for size in self.s.finished_sizes:
            n = self.s.jobs
            self.paired(
                Row("finished kept", f"{_count(size)} finished, q=1", n, f"{w} threads"),
                lambda size=size: self.prepare_waiting(n, finished=size),
                lambda kind, size=size: self.threads(kind, "claim", kwargs, f"claim, {_count(size)} finished", n),
                lambda expected, result: checks.exactly_once(self.backend, QUEUE, expected, result.ids),
                kinds=["ours"],
            )

    def waiting(self) -> None:
        """Claim+complete of the first jobs of a queue holding many waiting (library only)."""
        w = self.s.threads
        for size in self.s.waiting_sizes:
            per = min(self.s.waiting_claims, size) // w
            m = per * w
            kwargs = [{"queue": QUEUE, "quantity": 1, "max_claims": per}] * w
            self.paired(
                Row("waiting", f"{_count(size)} waiting, q=1", m, f"{w} threads"),
                lambda size=size: self.prepare_waiting(size),
                lambda kind, size=size, kw=kwargs, m=m: self.threads(
                    kind, "claim", kw, f"claim {m} of {_count(size)} waiting", m
                ),
                lambda expected, result, size=size, m=m: checks.exactly_once(
                    self.backend, QUEUE, expected, result.ids, left_waiting=size - m
                ),
                kinds=["ours"],
            )

    # -- big tables -----------------------------------------------------------------------------

    def stats(self) -> None:
        """count_jobs, count_jobs_by_queues and count_jobs_over_time on a big table.

        The finished jobs completed over the STATS_HISTORY before the last
        hour, as in a store that keeps that much: '12h' counts the rows of its
        window, '7d' every row.
        """
        size = self.s.big_rows
        waiting = 1_000
        fill.reset(self.backend)
        fill.fill(self.backend, FINISHED_QUEUE, size, now=self.now(), finished=True, queues_spread=4,
                  spread=STATS_HISTORY)
        fill.fill(self.backend, QUEUE, waiting, now=self.now())
        fill.analyze(self.backend)
        b = self.backend
        everything = size + waiting

        def over_time(time_range: str) -> tuple[int, Callable[[], int]]:
            buckets = b.count_jobs_over_time(time_range)
            start, end = buckets[0].timestamp, self.now()
            return sum(c.total for c in buckets), lambda: fill.rows_counted_between(b, start, end)

        # Each call returns its total and, untimed, how to count what it should be.
        calls: dict[str, Callable[[], tuple[int, Callable[[], int]]]] = {
            "count_jobs()": lambda: (b.count_jobs().total, lambda: everything),
            "count_jobs_by_queues()": lambda: (
                sum(c.total for c in b.count_jobs_by_queues().values()), lambda: everything
            ),
            "count_jobs_over_time('12h')": lambda: over_time("12h"),
            "count_jobs_over_time('7d')": lambda: over_time("7d"),
        }
        for name, call in calls.items():
            times = []
            total = expected = None
            with self.progress.task(f"{name} on {_count(size)} rows", 3) as bar:
                for i in range(3):
                    t = time.perf_counter()
                    total, expect = call()
                    times.append(time.perf_counter() - t)
                    expected = expect()
                    bar.update(i + 1)
            check = "ok" if total == expected else f"FAILED: counted {total}, expected {expected}"
            if check != "ok":
                self.failures.append(f"stats {name}: {check}")
            counted = "" if expected == everything else f", {expected:,} in its window"
            row = Row("stats", f"{name}, {_count(everything)} rows{counted}", expected or 0, "1 thread",
                      seconds=min(times), check=check)
            row.samples["seconds"] = times
            self.rows.append(row)
            self.progress.note(_summary(row))

    def delete(self) -> None:
        """delete_finished_jobs on a big table: rows per second, waiting jobs untouched."""
        size = self.s.big_rows
        waiting = 1_000
        self.prepare_waiting(waiting, finished=size)
        reset_peak()
        with self.progress.task(f"delete_finished_jobs of {_count(size)}", None):
            t = time.perf_counter()
            deleted = self.backend.delete_finished_jobs(self.now())
            seconds = time.perf_counter() - t
        left = fill.queue_states(self.backend, QUEUE)
        problems = []
        if deleted != size:
            problems.append(f"deleted {deleted}, expected {size}")
        if left != {"waiting": waiting} or fill.total_rows(self.backend) != waiting:
            problems.append(f"left {left}")
        check = "ok" if not problems else "FAILED: " + "; ".join(problems)
        if problems:
            self.failures.append(f"delete: {check}")
        row = Row("delete finished", f"{_count(size)} rows", size, "1 thread", ours=size / seconds,
                  seconds=seconds, peak_rss_mb=peak_rss_mb(), check=check)
        self.rows.append(row)
        self.progress.note(_summary(row))

    def claim_memory(self) -> None:
        """Peak RSS of a claim loop over many jobs: it should not grow with the job count."""
        n = self.s.memory_claims
        w = self.s.threads
        kwargs = [{"queue": QUEUE, "quantity": 10}] * w
        before: list[float | None] = []

        def prepare() -> set[int]:
            expected = self.prepare_waiting(n)
            reset_peak()
            before.append(peak_rss_mb())
            return expected

        row = self.paired(
            Row("memory", f"claim loop of {_count(n)}, q=10", n, f"{w} threads"),
            prepare,
            lambda kind: self.threads(kind, "claim", kwargs, f"claim loop of {_count(n)}", n),
            lambda expected, result: checks.exactly_once(self.backend, QUEUE, expected, result.ids),
            kinds=["ours"],
        )
        row.samples["rss_before_mb"] = [x for x in before if x is not None]

    def list_memory(self) -> None:
        """Paginated list_jobs over a big table: rows per second and peak RSS."""
        size = self.s.list_rows
        page = self.s.page
        fill.reset(self.backend)
        fill.fill(self.backend, FINISHED_QUEUE, size, now=self.now(), finished=True, queues_spread=4)
        fill.analyze(self.backend)
        reset_peak()
        before = peak_rss_mb()
        seen = 0
        last_id = None
        ordered = True
        with self.progress.task(f"list_jobs over {_count(size)}, pages of {page}", size) as bar:
            t = time.perf_counter()
            while True:
                jobs = self.backend.list_jobs(limit=page, offset=seen)
                if jobs and last_id is not None and jobs[0].id >= last_id:
                    ordered = False
                seen += len(jobs)
                bar.update(seen)
                if len(jobs) < page:
                    break
                last_id = jobs[-1].id
                del jobs
            seconds = time.perf_counter() - t
        check = "ok" if seen == size and ordered else f"FAILED: listed {seen} of {size}, ordered={ordered}"
        if check != "ok":
            self.failures.append(f"list_jobs: {check}")
        row = Row("memory", f"list_jobs over {_count(size)}, pages of {page}", size, "1 thread",
                  ours=size / seconds, seconds=seconds, peak_rss_mb=peak_rss_mb(), check=check)
        if before is not None:
            row.samples["rss_before_mb"] = [before]
        self.rows.append(row)
        self.progress.note(_summary(row))


PHASES: dict[str, Callable[[Bench], None]] = {
    "enqueue_seq": Bench.enqueue_seq,
    "enqueue_threads": Bench.enqueue_threads,
    "enqueue_batch": Bench.enqueue_batch,
    "claim_threads": Bench.claim_threads,
    "claim_procs": Bench.claim_procs,
    "async_enqueue": Bench.async_enqueue,
    "async_claim": Bench.async_claim,
    "finished": Bench.finished,
    "waiting": Bench.waiting,
    "stats": Bench.stats,
    "delete": Bench.delete,
    "claim_memory": Bench.claim_memory,
    "list_memory": Bench.list_memory,
}
DEFAULT_PHASES = (
    "enqueue_seq", "enqueue_threads", "enqueue_batch", "claim_threads", "claim_procs",
    "async_enqueue", "async_claim", "finished", "waiting", "stats", "delete",
)


def _count(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def _summary(row: Row) -> str:
    parts = [f"{row.phase} / {row.variant}:"]
    if row.ours is not None:
        parts.append(f"ours {row.ours:,.0f}/s")
    if row.raw is not None:
        parts.append(f"raw {row.raw:,.0f}/s")
    if row.sync is not None:
        parts.append(f"sync {row.sync:,.0f}/s")
    if row.ratio is not None:
        parts.append(f"ratio {row.ratio:.2f}")
    if row.sync_ratio is not None:
        parts.append(f"async/sync {row.sync_ratio:.2f}")
    if row.seconds is not None:
        parts.append(f"{row.seconds:.3f} s")
    parts.append(row.check)
    return " ".join(parts)
