"""``python -m bench.soak --url URL``: a bounded soak run, every operation at once.

Examples::

    python -m bench.soak --url postgresql://postgres@127.0.0.1:5432/soak --minutes 5 --json soak-pg.json
    python -m bench.soak --url sqlite:////tmp/soak.sqlite --seconds 30

The database's sidequest tables are emptied at the start: point it at a
scratch database. They are left as the run ends, for inspection.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import sidequest_sql as sq

from .. import fill, report
from ..__main__ import server_version
from . import ledger
from .workers import (
    QUEUE,
    START_TIMEOUT,
    Counters,
    Plan,
    Signals,
    Worker,
    cleanup,
    process_main,
    start_group,
    start_thread,
)

JOIN_TIMEOUT = 30.0
TICK = 0.2
SHORTEST_LINE = 1.0  # a leftover of the run shorter than this goes into the first drain line


def _ints(text_: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text_.split(",") if x)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--url", default=os.environ.get("SIDEQUEST_DATABASE_URL", "sqlite:///soak.sqlite"),
                   help="database to run against (its sidequest tables are emptied)")
    p.add_argument("--minutes", type=float, default=5.0, help="how long producers run (default 5)")
    p.add_argument("--seconds", type=float, help="the same in seconds, for short runs; overrides --minutes")
    p.add_argument("--interval", type=float, default=10.0, help="seconds per line of the time series (default 10)")
    p.add_argument("--processes", type=int, default=2,
                   help="spawned worker processes, besides the main process's own workers (default 2)")
    p.add_argument("--producers", type=int, default=2, help="producer threads per process (default 2)")
    p.add_argument("--claimers", type=int, default=2, help="claimer threads per process (default 2)")
    p.add_argument("--quantities", type=_ints, default=(1, 10),
                   help="claim quantities, dealt round-robin to each process's claimers (default 1,10)")
    p.add_argument("--max-batch", type=int, default=10, help="largest create_new_jobs batch (default 10)")
    p.add_argument("--backlog", type=int, default=1000,
                   help="producers pause while this many jobs are enqueued and not ended (default 1000)")
    p.add_argument("--flaky", type=float, default=0.05,
                   help="share of jobs that fail 1..max_attempts-1 times, then complete (default 0.05)")
    p.add_argument("--doomed", type=float, default=0.01,
                   help="share of jobs that fail every attempt (default 0.01)")
    p.add_argument("--max-attempts", type=int, default=3, help="max_attempts of every job (default 3)")
    p.add_argument("--retry-delay", type=float, default=1.0,
                   help="seconds until a failed attempt's job is available again (default 1)")
    p.add_argument("--keep-seconds", type=float, default=5.0,
                   help="the cleanup deletes jobs that ended more than this long ago (default 5)")
    p.add_argument("--cleanup-every", type=float, default=2.0, help="seconds between cleanups (default 2)")
    p.add_argument("--stale-seconds", type=float, default=60.0,
                   help="stale_jobs thresholds, and the timeout of every other job (default 60)")
    p.add_argument("--drain-seconds", type=float, default=120.0,
                   help="how long claimers may take to end the backlog once producers stop (default 120)")
    p.add_argument("--seed", type=int, default=0, help="seeds which jobs fail (default 0)")
    p.add_argument("--json", help="write the time series, the totals and the accounting to this file")
    p.add_argument("--log-dir", help="keep the workers' logs here (default: a temporary directory, "
                                     "removed after a clean run)")
    args = p.parse_args(argv)
    if args.max_attempts < 2:
        p.error("--max-attempts must be at least 2")
    if args.processes < 0 or args.producers < 1 or args.claimers < 1 or args.max_batch < 2:
        p.error("--processes must be >= 0, --producers and --claimers >= 1, --max-batch >= 2")
    if not args.quantities or min(args.quantities) < 1:
        p.error("--quantities must be positive integers")
    if not 0 <= args.flaky + args.doomed <= 1:
        p.error("--flaky + --doomed must lie between 0 and 1")
    return args


class Series:
    """The time series: one line per interval, from the counters and count_jobs()."""

    HEADER = (f"{'time s':>7} {'phase':<5} {'enq/s':>7} {'claim/s':>7} {'done/s':>7} {'retried':>7} "
              f"{'failed':>6} {'deleted':>7} {'backlog':>7} {'rows':>6} {'stale':>5} {'errors':>6}")

    def __init__(
        self, counters: Counters, backend: sq.SQLBackend, worker: Worker, t0: float, points: list[dict[str, Any]]
    ) -> None:
        self.counters = counters
        self.backend = backend
        self.worker = worker
        self.t0 = self.last_t = t0
        self.last = counters.totals()
        self.points = points
        print(self.HEADER, flush=True)

    def line(self, phase: str) -> None:
        now = time.monotonic()
        totals = self.counters.totals()
        span = max(now - self.last_t, 1e-9)
        delta = {k: totals[k] - self.last[k] for k in totals}
        try:
            counts = self.backend.count_jobs()
        except Exception as exc:
            self.worker.error("count_jobs", exc)
            rows: dict[str, int] = {}
        else:
            rows = {k: getattr(counts, k) for k in
                    ("total", "waiting", "claimed", "running", "completed", "failed", "canceled")}
        point = {
            "t": round(now - self.t0, 3),
            "phase": phase,
            "seconds": round(span, 3),
            "enqueued_per_s": delta["enqueued"] / span,
            "claimed_per_s": delta["claimed"] / span,
            "completed_per_s": delta["completed"] / span,
            "enqueued": delta["enqueued"],
            "claimed": delta["claimed"],
            "completed": delta["completed"],
            "retried": delta["retried"],
            "failed": delta["failed"],
            "deleted": delta["deleted"],
            "backlog": totals["enqueued"] - totals["completed"] - totals["failed"],
            "rows": rows,
            "stale": totals["stale"],
            "errors": totals["errors"],
        }
        self.points.append(point)
        print(f"{point['t']:7.1f} {phase:<5} {point['enqueued_per_s']:7.1f} {point['claimed_per_s']:7.1f} "
              f"{point['completed_per_s']:7.1f} {point['retried']:7d} {point['failed']:6d} {point['deleted']:7d} "
              f"{point['backlog']:7d} {rows.get('total', -1):6d} {point['stale']:5d} {point['errors']:6d}",
              flush=True)
        self.last, self.last_t = totals, now


@dataclass
class Outcome:
    """How the run went: its time series, phase lengths and whether the backlog drained."""

    points: list[dict[str, Any]] = field(default_factory=list)
    run_s: float = 0.0
    drain_s: float = 0.0
    drained: bool = False
    counters: dict[str, int] = field(default_factory=dict)


def run(backend: sq.SQLBackend, plan: Plan, args: argparse.Namespace, duration: float) -> Outcome:
    """Start every worker, run for ``duration``, drain, stop everyone; errors go to the counters."""
    ctx = multiprocessing.get_context("spawn")
    array = ctx.Array("q", Counters.size(plan.slots), lock=False)
    counters = Counters(array)
    signals = Signals(go=ctx.Event(), stop_producing=ctx.Event(), stop_claiming=ctx.Event())
    ready = ctx.Barrier(plan.groups)
    main_worker = Worker("main", plan.main_slot, counters, plan.log_dir)
    cleaner = Worker("main-cleanup", plan.cleanup_slot, counters, plan.log_dir)
    stop_cleanup = threading.Event()
    procs = [
        ctx.Process(target=process_main, args=(g, plan, array, signals, ready), name=f"soak-g{g}", daemon=True)
        for g in range(1, plan.groups)
    ]
    threads: list[threading.Thread] = []
    cleaner_thread: threading.Thread | None = None
    out = Outcome()
    try:
        for proc in procs:
            proc.start()
        threads = start_group(backend, 0, plan, counters, signals)
        try:
            ready.wait(timeout=START_TIMEOUT)
        except threading.BrokenBarrierError:
            main_worker.error("start", "a worker process failed to start")
            return out
        signals.go.set()
        t0 = time.monotonic()
        cleaner_thread = start_thread(cleaner, signals.go, cleanup, backend, cleaner, plan, stop_cleanup)
        series = Series(counters, backend, main_worker, t0, out.points)

        def tick(phase: str) -> None:
            time.sleep(TICK)
            if time.monotonic() - series.last_t >= args.interval - TICK / 2:
                series.line(phase)

        while time.monotonic() < t0 + duration:
            tick("run")
        signals.stop_producing.set()
        out.run_s = time.monotonic() - t0
        if time.monotonic() - series.last_t >= SHORTEST_LINE:
            series.line("run")
        deadline = time.monotonic() + args.drain_seconds
        producers = plan.groups * plan.producers
        while time.monotonic() < deadline:
            if counters.total("producers_done") == producers and counters.outstanding() <= 0:
                out.drained = True
                break
            tick("drain")
        out.drain_s = time.monotonic() - t0 - out.run_s
        if time.monotonic() - series.last_t >= TICK:
            series.line("drain")
        if not out.drained:
            main_worker.error("drain", f"{counters.outstanding():,} jobs not ended "
                                       f"{args.drain_seconds:g} s after producers stopped")
    except KeyboardInterrupt:
        main_worker.error("run", "interrupted")
    finally:
        signals.stop_producing.set()
        signals.stop_claiming.set()
        signals.go.set()
        stop_cleanup.set()
        for thread in [*threads, *([cleaner_thread] if cleaner_thread else [])]:
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                main_worker.error("stop", f"thread {thread.name} did not stop")
        if cleaner_thread is None:
            cleaner.close()
        for proc in procs:
            if proc.pid is None:
                continue
            proc.join(JOIN_TIMEOUT)
            if proc.is_alive():
                main_worker.error("stop", f"process {proc.name} did not stop; terminated")
                proc.terminate()
                proc.join(5)
            elif proc.exitcode != 0:
                main_worker.error("stop", f"process {proc.name} exited with status {proc.exitcode}")
        main_worker.close()
        out.counters = counters.totals()
    return out


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def throughput(out: Outcome, totals: dict[str, int], interval: float) -> dict[str, Any]:
    """Totals, rates over the whole run, and the spread of the full run-phase intervals."""
    full = [p for p in out.points if p["phase"] == "run" and p["seconds"] >= interval * 0.9]
    spent = out.run_s + out.drain_s
    return {
        "run_s": round(out.run_s, 1),
        "drain_s": round(out.drain_s, 1),
        "enqueued": totals["enqueued"],
        "enqueued_per_s": totals["enqueued"] / out.run_s if out.run_s else 0.0,
        "completed": totals["completed"],
        "completed_per_s": totals["completed"] / spent if spent else 0.0,
        "claimed": totals["claimed"],
        "claim_calls": totals["claim_calls"],
        "retried": totals["retried"],
        "failed": totals["failed"],
        "deleted": totals["deleted"],
        "interval_enqueued_per_s": _spread([p["enqueued_per_s"] for p in full]),
        "interval_completed_per_s": _spread([p["completed_per_s"] for p in full]),
    }


def _range(spread: dict[str, float] | None) -> str:
    return f"{spread['min']:,.0f} / {spread['median']:,.0f} / {spread['max']:,.0f}" if spread else "n/a"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    duration = args.seconds if args.seconds is not None else args.minutes * 60
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="sidequest-soak-")
    os.makedirs(log_dir, exist_ok=True)
    plan = Plan(
        url=args.url, groups=args.processes + 1, producers=args.producers, claimers=args.claimers,
        quantities=args.quantities, max_batch=args.max_batch, backlog=args.backlog, flaky=args.flaky,
        doomed=args.doomed, max_attempts=args.max_attempts, retry_delay=args.retry_delay,
        cleanup_every=args.cleanup_every, keep_seconds=args.keep_seconds,
        stale_ms=int(args.stale_seconds * 1000), seed=args.seed, log_dir=log_dir,
    )

    backend = sq.create_backend(args.url)
    shown_url = backend.url.render_as_string(hide_password=True)
    backend.migrate()
    fill.reset(backend)
    backend.create_new_queue(QUEUE)
    info = report.meta(shown_url, argv, {
        "command": "python -m bench.soak " + " ".join(argv),
        "server": server_version(backend),
        "plan": {k: v for k, v in vars(plan).items() if k not in ("url", "log_dir")},
        "duration_s": duration,
    })
    workers = (f"{plan.groups} process{'es' if plan.groups > 1 else ''} (main + {args.processes} spawned) x "
               f"{plan.producers} producers + {plan.claimers} claimers (q={','.join(map(str, plan.quantities))})")
    print(f"soak {shown_url} ({info['server']}), {info['cpus']} CPUs, load {info['load_average_at_start']}", flush=True)
    print(f"{duration:g} s, {workers}; cleanup every {plan.cleanup_every:g} s of jobs ended "
          f">{plan.keep_seconds:g} s ago; logs in {log_dir}", flush=True)

    out = run(backend, plan, args, duration)
    totals = out.counters
    book = ledger.read(log_dir)
    rows, elsewhere = ledger.table_rows(backend)
    backend.close()
    acc = ledger.account(book, rows, elsewhere, totals["deleted"])
    problems = acc.problems()
    if totals["stale"]:
        problems.append(f"{totals['stale']:,} stale jobs found (ids {sorted(book.stale)[:ledger.SHOWN]})")
    errors = totals["errors"]
    ok = not errors and not problems
    rates = throughput(out, totals, args.interval)

    print(f"\n{info['date']}  {shown_url}  ({info['server']})  {info['command']}")
    print(f"- run {out.run_s:.0f} s + drain {out.drain_s:.1f} s; {workers}")
    print(f"- enqueued {rates['enqueued']:,} ({rates['enqueued_per_s']:,.0f}/s); "
          f"completed {rates['completed']:,} ({rates['completed_per_s']:,.0f}/s); "
          f"{rates['claimed']:,} jobs claimed in {rates['claim_calls']:,} claims; "
          f"{rates['retried']:,} retries; {rates['failed']:,} failed for good; "
          f"{rates['deleted']:,} deleted by the cleanup")
    print(f"- per {args.interval:g} s interval (min / median / max): "
          f"enqueued/s {_range(rates['interval_enqueued_per_s'])}, "
          f"completed/s {_range(rates['interval_completed_per_s'])}")
    print(f"- errors: {errors}; stale jobs: {totals['stale']}")
    print(f"- accounting: {acc.summary()}: {'ok' if not problems else 'FAILED'}")
    for problem in problems:
        print(f"  - {problem}")
    if errors:
        shown = book.errors[:20]
        print(f"\n{errors} errors{'' if len(shown) == errors else f', the first {len(shown)}'}:", file=sys.stderr)
        for message in shown:
            print(f"  {message}", file=sys.stderr)

    if args.json:
        data = {
            "meta": info,
            "series": out.points,
            "throughput": rates,
            "counters": totals,
            "errors": {"count": errors, "messages": book.errors[:1000]},
            "stale": sorted(book.stale),
            "accounting": acc.as_dict(),
            "problems": problems,
            "ok": ok,
        }
        with open(args.json, "w") as f:
            json.dump(data, f, indent=2, default=str)
            f.write("\n")
        print(f"\nJSON written to {args.json}")
    if ok and not args.log_dir:
        shutil.rmtree(log_dir, ignore_errors=True)
    elif not ok:
        print(f"\nworkers' logs kept in {log_dir}", file=sys.stderr)
    print("\nSOAK OK" if ok else "\nSOAK FAILED", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
