"""``python -m bench --url URL``: run the benchmark, print the table, write the JSON.

Examples::

    python -m bench --url postgresql://postgres@127.0.0.1:5432/bench --json pg.json
    python -m bench --url sqlite:////tmp/bench.sqlite --quick
    python -m bench --url ... --phases claim_threads,finished --big

The database's sidequest tables are emptied: point it at a scratch database.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

from sqlalchemy import text
from sqlalchemy.pool import QueuePool

import sidequest_sql as sq

from . import checks, fill, report
from .aio import raw_async_available, same_records_async
from .baseline import RawUnavailable, our_statements
from .clients import RawClient
from .phases import DEFAULT_PHASES, PHASES, Bench, Settings
from .progress import Progress
from .waking import WAKE_PHASES

# Waking workers (wait_for_jobs): phases of their own module, run by name only.
PHASES.update(WAKE_PHASES)

BIG_PHASES = ("claim_memory", "list_memory")


def _ints(text_: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text_.split(",") if x)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--url", default=os.environ.get("SIDEQUEST_DATABASE_URL", "sqlite:///bench.sqlite"),
                   help="database to run against (its sidequest tables are emptied)")
    p.add_argument("--jobs", type=int, help="jobs per enqueue and claim phase (default 2000; --quick 500)")
    p.add_argument("--threads", type=int, default=4, help="claiming threads (default 4)")
    p.add_argument("--enqueue-threads", type=int, default=8, help="producer threads (default 8)")
    p.add_argument("--processes", type=int, default=2, help="claiming processes (default 2)")
    p.add_argument("--tasks", type=int, default=4,
                   help="tasks on one event loop in the async phases, and threads of the sync figure they are set against (default 4)")
    p.add_argument("--quantities", type=_ints, default=(1, 10), help="claim quantities (default 1,10)")
    p.add_argument("--batch", type=int, help="jobs in one create_new_jobs call (default 10000)")
    p.add_argument("--phases", help=f"comma-separated, from: {', '.join(PHASES)} (default: all but {', '.join(BIG_PHASES)})")
    p.add_argument("--big", action="store_true",
                   help="add 1M finished rows to 'finished', run stats/delete on 1M rows, and the memory phases")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    p.add_argument("--repeat", type=int, default=1, help="runs of each side, alternating order; the median is kept")
    p.add_argument("--no-raw", action="store_true", help="skip the raw-driver baseline")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--show-sql", action="store_true", help="print the SQL the baseline runs")
    p.add_argument("--json", help="write the results to this file")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    s = Settings(url=args.url, threads=args.threads, enqueue_threads=args.enqueue_threads,
                 processes=args.processes, tasks=args.tasks, quantities=args.quantities, raw=not args.no_raw,
                 repeat=max(1, args.repeat))
    if args.quick:
        s = replace(s, jobs=500, batch=2_000, finished_sizes=(0, 10_000), waiting_sizes=(1_000, 5_000),
                    waiting_claims=500, big_rows=10_000, memory_claims=5_000, list_rows=20_000)
    if args.big:
        s = replace(s, finished_sizes=(*s.finished_sizes, 1_000_000), big_rows=1_000_000)
    if args.jobs:
        s = replace(s, jobs=args.jobs)
    if args.batch:
        s = replace(s, batch=args.batch)
    return s


def server_version(backend: sq.SQLBackend) -> str:
    with backend.engine.connect() as conn:
        if backend.engine.dialect.name == "postgresql":
            return str(conn.scalar(text("SHOW server_version")))
        if backend.engine.dialect.name == "sqlite":
            return "SQLite " + str(conn.scalar(text("SELECT sqlite_version()")))
    return str(backend.engine.dialect.server_version_info)


def backend_for(settings: Settings) -> sq.SQLBackend:
    """The backend every thread of the run shares, its pool holding a
    connection for each thread of the busiest phase, as the raw side has one
    per thread (fewer, and the threads beyond the pool's size check a
    connection out and in again on every call). A pool of one (an in-memory
    SQLite database) stays one."""
    backend = sq.create_backend(settings.url)
    threads = max(settings.threads, settings.enqueue_threads, settings.tasks)
    pool = backend.engine.pool
    if isinstance(pool, QueuePool) and 1 < pool.size() < threads:
        backend.close()
        backend = sq.create_backend(settings.url, pool_size=threads)
    return backend


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    settings = settings_from(args)
    if args.phases:
        names = [n.strip() for n in args.phases.split(",") if n.strip()]
        unknown = [n for n in names if n not in PHASES]
        if unknown:
            print(f"unknown phases: {', '.join(unknown)}; known: {', '.join(PHASES)}", file=sys.stderr)
            return 2
    else:
        names = [*DEFAULT_PHASES, *(BIG_PHASES if args.big else ())]
    progress = Progress(enabled=not args.no_progress)

    backend = backend_for(settings)
    shown_url = backend.url.render_as_string(hide_password=True)
    backend.migrate()
    fill.reset(backend)
    statements = None
    same: dict[str, bool] = {}
    failures: list[str] = []
    if settings.raw:
        try:
            statements = our_statements(backend)
        except RawUnavailable as exc:
            progress.note(f"no raw baseline: {exc}")
        else:
            same = checks.same_sql(backend, statements, "bench-sql", batch=settings.batch)
            if not all(same.values()):
                progress.note(f"warning: the library sent other SQL than the baseline runs for: "
                              f"{', '.join(k for k, v in same.items() if not v)}")
            if args.show_sql:
                for name, sql in statements.sql().items():
                    print(f"-- {name}\n{sql}\n", file=sys.stderr)
            raw = RawClient(backend, statements)
            try:
                records = checks.same_records(backend, raw, "bench-records")
            finally:
                raw.close()
            failures += [f"raw records: {problem}" for problem in records]
            same["records"] = not records
            if raw_async_available(backend, statements):
                records = same_records_async(backend, statements, "bench-records")
                failures += [f"raw async records: {problem}" for problem in records]
                same["async records"] = not records
    info = report.meta(shown_url, argv, {
        "server": server_version(backend),
        "settings": {k: v for k, v in vars(settings).items() if k != "url"},
        "phases": names,
        "pool_size": backend.engine.pool.size() if isinstance(backend.engine.pool, QueuePool) else None,
        "baseline_sql_identical": same,
    })
    progress.note(f"{shown_url} ({info['server']}), {info['cpus']} CPUs, load {info['load_average_at_start']}")

    bench = Bench(settings, backend, statements, progress)
    bench.failures += failures
    try:
        for name in names:
            PHASES[name](bench)
    finally:
        fill.reset(backend)
        backend.close()

    print(f"\n{info['date']}  {shown_url}  ({info['server']})  python -m bench {' '.join(argv)}")
    print(f"pool_size of the library's backend: {info['pool_size']}\n")
    print(report.table(bench.rows))
    ratios = report.derived(bench.rows)
    if ratios:
        print("\nRatios (same run):")
        for key, value in ratios.items():
            print(f"  {key}: {value:.2f}")
    if same:
        print("\nBaseline runs the library's own SQL and builds the same records: "
              + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in same.items()))
    if args.json:
        report.write_json(args.json, info, bench.rows, ratios, bench.failures)
        print(f"\nJSON written to {args.json}")
    if bench.failures:
        print("\nCHECKS FAILED:", file=sys.stderr)
        for failure in bench.failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
