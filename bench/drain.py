"""``python -m bench.drain --url postgresql://…``: drain no-op jobs with worker processes, side by side.

Each side gets a schema of its own, created afresh (``bench_drain_sidequest``,
``bench_drain_pgqueuer``, ``bench_drain_procrastinate``), and the same run:
``--processes`` worker processes start, connect, warm up and wait idle;
then ``--jobs`` no-op jobs are enqueued in batches of 1,000 through the
side's own batch API, each carrying the time it was enqueued; the run ends
when the store reports every job done. Reported: jobs/s from the first
enqueue to the last job done, and enqueue-to-start latency (p50, p99) from
the times the jobs saw. Every job must have run exactly once (as the
workers report it) and be recorded done exactly once (as the store has
it), else the run fails.

The sides, each with its own recommended settings:

- ``sidequest``: ``sidequest_sql.Worker`` on the URL, a queue of
  ``--concurrency`` slots (default 50) per process, async no-op jobs;
- ``pgqueuer``: ``QueueManager.run()`` with its defaults (batch size 10,
  unlimited concurrency) over psycopg, an async entrypoint;
- ``procrastinate``: ``App.run_worker_async`` over its psycopg connector with
  ``concurrency`` 10 (its default of 1 is meant for blocking jobs), an async task;
- ``sqlite``: the sidequest side again on a SQLite file (``--sqlite``), for scale.

Ratios printed: sidequest over pgqueuer (target ≥ 1.0) and over
procrastinate (target ≥ 5). Needs the ``bench`` extra
(``pip install -e '.[bench]'``). Figures from a shared machine are indicative.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from typing import Any

import sqlalchemy as sa

BATCH = 1_000
QUEUE = "drain"
SCHEMAS = {"sidequest": "bench_drain_sidequest", "pgqueuer": "bench_drain_pgqueuer", "procrastinate": "bench_drain_procrastinate"}
READY_TIMEOUT_S = 120
RUN_TIMEOUT_S = 300


@dataclass
class Result:
    side: str
    jobs: int
    seconds: float
    latencies_ms: list[float] = field(repr=False, default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


# -- the sidequest side --------------------------------------------------------------


def sidequest_prepare(url: str, schema: str | None) -> None:
    import sidequest_sql as sq

    if schema is not None:
        _recreate_schema(url, schema)
    with sq.create_backend(url, schema=schema) as backend:
        backend.migrate()
        backend.truncate()


def sidequest_enqueue(url: str, schema: str | None, count: int) -> None:
    import sidequest_sql as sq

    with sq.create_backend(url, schema=schema) as backend:
        for start in range(0, count, BATCH):
            now = time.time()
            backend.create_new_jobs(
                [sq.NewJobData(QUEUE, "bench.drain_jobs", "NoOp", args=[now]) for _ in range(min(BATCH, count - start))]
            )


def sidequest_done(url: str, schema: str | None) -> Callable[[], int]:
    import sidequest_sql as sq

    backend = sq.create_backend(url, schema=schema)
    return lambda: backend.count_jobs().completed


def sidequest_check(url: str, schema: str | None, count: int) -> list[str]:
    import sidequest_sql as sq

    with sq.create_backend(url, schema=schema) as backend:
        counts = backend.count_jobs()
    if counts.completed != count or counts.total != count:
        return [f"the store has {counts.completed} of {count} jobs completed ({counts})"]
    return []


def sidequest_worker(url: str, schema: str | None, concurrency: int, ready: Event, go: Event, stop: Event, out: Any) -> None:
    import sidequest_sql as sq
    from bench import drain_jobs

    backend = sq.create_backend(url, schema=schema)
    backend.count_jobs()  # connected
    backend.poll_interval = 0.05  # where nothing notifies (SQLite): how often an idle worker looks
    worker = sq.Worker(backend, [QUEUE], concurrency=concurrency, handle_signals=False,
                       release_stale_every=None, cleanup_every=None)  # fmt: skip
    ready.set()
    go.wait()
    threading.Thread(target=lambda: (stop.wait(), worker.stop()), daemon=True).start()
    worker.run()
    out.put(drain_jobs.RECORDS)
    backend.close()


# -- pgqueuer ---------------------------------------------------------------------


def _psycopg_conninfo(url: str, schema: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    parts = {"host": parsed.host, "port": parsed.port, "user": parsed.username, "password": parsed.password,
             "dbname": parsed.database}  # fmt: skip
    conninfo = " ".join(f"{key}={value}" for key, value in parts.items() if value is not None)
    return f"{conninfo} options='-c search_path={schema}'"


def pgqueuer_prepare(url: str, schema: str) -> None:
    import psycopg
    from pgqueuer import Queries

    _recreate_schema(url, schema)

    async def install() -> None:
        async with await psycopg.AsyncConnection.connect(_psycopg_conninfo(url, schema), autocommit=True) as conn:
            await Queries.from_psycopg_connection(conn).install()

    asyncio.run(install())


def pgqueuer_enqueue(url: str, schema: str, count: int) -> None:
    import psycopg
    from pgqueuer import Queries

    async def enqueue() -> None:
        async with await psycopg.AsyncConnection.connect(_psycopg_conninfo(url, schema), autocommit=True) as conn:
            queries = Queries.from_psycopg_connection(conn)
            for start in range(0, count, BATCH):
                n = min(BATCH, count - start)
                payload = repr(time.time()).encode()
                await queries.enqueue(["noop"] * n, [payload] * n, [0] * n)

    asyncio.run(enqueue())


def pgqueuer_done(url: str, schema: str) -> Callable[[], int]:
    engine = _engine(url, schema)
    return lambda: _scalar(engine, "SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'")


def pgqueuer_check(url: str, schema: str, count: int) -> list[str]:
    engine = _engine(url, schema)
    with engine.connect() as conn:
        per_job = Counter(dict(conn.exec_driver_sql(
            "SELECT job_id, count(*) FROM pgqueuer_log WHERE status = 'successful' GROUP BY job_id").all()))  # fmt: skip
        left = conn.exec_driver_sql("SELECT count(*) FROM pgqueuer").scalar_one()
    engine.dispose()
    problems = []
    if len(per_job) != count or set(per_job.values()) != {1}:
        problems.append(f"pgqueuer logged {sum(per_job.values())} successes for {len(per_job)} of {count} jobs")
    if left:
        problems.append(f"{left} pgqueuer jobs left in its queue")
    return problems


def pgqueuer_worker(url: str, schema: str, _concurrency: int, ready: Event, go: Event, stop: Event, out: Any) -> None:
    os.environ["PGQUEUER_SCHEMA"] = schema

    async def main() -> list[tuple[Any, float]]:
        import psycopg
        from pgqueuer import Queries, QueueManager

        records: list[tuple[Any, float]] = []
        conn = await psycopg.AsyncConnection.connect(_psycopg_conninfo(url, schema), autocommit=True)
        manager = QueueManager(Queries.from_psycopg_connection(conn))

        @manager.entrypoint("noop")
        async def noop(job: Any) -> None:
            records.append((job.id, (time.time() - float(job.payload)) * 1000))

        ready.set()
        await asyncio.to_thread(go.wait)

        async def stopper() -> None:
            await asyncio.to_thread(stop.wait)
            manager.shutdown.set()

        stopping = asyncio.create_task(stopper())
        await manager.run()
        await stopping
        await conn.close()
        return records

    out.put(asyncio.run(main()))


# -- procrastinate --------------------------------------------------------------------


def procrastinate_app(url: str, schema: str) -> Any:
    import procrastinate

    connector = procrastinate.PsycopgConnector(conninfo=_psycopg_conninfo(url, schema))
    app = procrastinate.App(connector=connector)
    records: list[tuple[Any, float]] = []

    @app.task(name="noop", queue=QUEUE, pass_context=True)
    async def noop(context: Any, enqueued: float) -> None:
        records.append((context.job.id, (time.time() - enqueued) * 1000))

    app.records = records  # type: ignore[attr-defined]
    return app


def procrastinate_prepare(url: str, schema: str) -> None:
    _recreate_schema(url, schema)
    app = procrastinate_app(url, schema)

    async def apply() -> None:
        async with app.open_async():
            await app.schema_manager.apply_schema_async()

    asyncio.run(apply())


def procrastinate_enqueue(url: str, schema: str, count: int) -> None:
    app = procrastinate_app(url, schema)

    async def enqueue() -> None:
        async with app.open_async():
            task = app.tasks["noop"]
            for start in range(0, count, BATCH):
                now = time.time()
                await task.batch_defer_async(*({"enqueued": now} for _ in range(min(BATCH, count - start))))

    asyncio.run(enqueue())


def procrastinate_done(url: str, schema: str) -> Callable[[], int]:
    engine = _engine(url, schema)
    return lambda: _scalar(engine, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")


def procrastinate_check(url: str, schema: str, count: int) -> list[str]:
    engine = _engine(url, schema)
    with engine.connect() as conn:
        states = dict(conn.exec_driver_sql("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1").all())
        started = conn.exec_driver_sql(
            "SELECT count(*) FROM procrastinate_events WHERE type = 'started'").scalar_one()  # fmt: skip
    engine.dispose()
    problems = []
    if states != {"succeeded": count}:
        problems.append(f"procrastinate jobs by status: {states}, expected {count} succeeded")
    if started != count:
        problems.append(f"procrastinate recorded {started} starts for {count} jobs")
    return problems


def procrastinate_worker(url: str, schema: str, _concurrency: int, ready: Event, go: Event, stop: Event, out: Any) -> None:
    app = procrastinate_app(url, schema)

    async def main() -> None:
        async with app.open_async():
            ready.set()
            await asyncio.to_thread(go.wait)
            work = asyncio.create_task(app.run_worker_async(queues=[QUEUE], concurrency=10, install_signal_handlers=False))
            await asyncio.to_thread(stop.wait)
            work.cancel()
            try:
                await work
            except asyncio.CancelledError:
                pass

    asyncio.run(main())
    out.put(app.records)


# -- running a side -------------------------------------------------------------------


SIDES: dict[str, tuple[Any, ...]] = {
    "sidequest": (sidequest_prepare, sidequest_enqueue, sidequest_done, sidequest_check, sidequest_worker),
    "pgqueuer": (pgqueuer_prepare, pgqueuer_enqueue, pgqueuer_done, pgqueuer_check, pgqueuer_worker),
    "procrastinate": (procrastinate_prepare, procrastinate_enqueue, procrastinate_done, procrastinate_check,
                      procrastinate_worker),
}  # fmt: skip


def run_side(side: str, url: str, schema: str | None, jobs: int, processes: int, concurrency: int) -> Result:
    prepare, enqueue, done, check, worker = SIDES["sidequest" if side == "sqlite" else side]
    prepare(url, schema)
    context = multiprocessing.get_context("spawn")
    ready = [context.Event() for _ in range(processes)]
    go, stop = context.Event(), context.Event()
    out = context.Queue()
    workers = [
        context.Process(target=worker, args=(url, schema, concurrency, ready[i], go, stop, out), daemon=True)
        for i in range(processes)
    ]
    for process in workers:
        process.start()
    for event in ready:
        if not event.wait(READY_TIMEOUT_S):
            raise RuntimeError(f"{side}: a worker process did not start")
    count_done = done(url, schema)
    go.set()
    time.sleep(0.2)  # every worker idle and waiting
    started = time.time()
    enqueue(url, schema, jobs)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while count_done() < jobs:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{side}: {count_done()} of {jobs} jobs done in {RUN_TIMEOUT_S}s")
        time.sleep(0.005)
    seconds = time.time() - started
    stop.set()
    records: list[tuple[Any, float]] = []
    for _ in workers:
        records.extend(out.get(timeout=READY_TIMEOUT_S))
    for process in workers:
        process.join(READY_TIMEOUT_S)
    result = Result(side, jobs, seconds, [latency for _, latency in records])
    runs = Counter(key for key, _ in records)
    if len(runs) != jobs or set(runs.values()) != {1}:
        result.problems.append(f"workers ran {len(records)} jobs, {len(runs)} distinct, of {jobs}")
    result.problems += check(url, schema, jobs)
    return result


def _recreate_schema(url: str, schema: str) -> None:
    engine = sa.create_engine(_sync_url(url))
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine.dispose()


def _sync_url(url: str) -> Any:
    import sidequest_sql as sq

    return sq.create_backend(url).url


def _engine(url: str, schema: str) -> sa.Engine:
    return sa.create_engine(_sync_url(url), connect_args={"options": f"-c search_path={schema}"})


def _scalar(engine: sa.Engine, query: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(query).scalar_one())


# -- the command ----------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.drain", description=__doc__.split("\n")[0])
    p.add_argument("--url", default=os.environ.get("SIDEQUEST_BENCH_POSTGRES_URL"), required="SIDEQUEST_BENCH_POSTGRES_URL" not in os.environ,
                   help="a Postgres database; the script creates (and drops first) its own schemas in it")  # fmt: skip
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--processes", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=50, help="the sidequest worker's slots per process")
    p.add_argument("--sides", default="sidequest,pgqueuer,procrastinate,sqlite")
    p.add_argument("--sqlite", help="the SQLite file of the sqlite side (default: a temporary one)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each side, in rotating order; the median is kept")
    p.add_argument("--json", help="write the figures to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    sides = args.sides.split(",")
    runs: dict[str, list[Result]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeat):
            # Each round in another order, so that no side always runs first (or after the same one).
            for side in sides[repeat % len(sides):] + sides[: repeat % len(sides)]:
                if side == "sqlite":
                    url, schema = f"sqlite:///{args.sqlite or os.path.join(scratch, 'drain.sqlite')}", None
                else:
                    url, schema = args.url, SCHEMAS[side]
                print(f"{side}: draining {args.jobs} jobs with {args.processes} processes…", file=sys.stderr, flush=True)
                result = run_side(side, url, schema, args.jobs, args.processes, args.concurrency)
                runs[side].append(result)
                print(f"{side}: {result.rate:,.0f} jobs/s", file=sys.stderr, flush=True)
    results = {side: median_run(side_runs) for side, side_runs in runs.items()}
    print(report(results, runs, args))
    if args.json:
        with open(args.json, "w") as file:
            json.dump({side: {"jobs": r.jobs, "seconds": r.seconds, "jobs_per_s": r.rate, "p50_ms": r.percentile(50),
                              "p99_ms": r.percentile(99), "problems": r.problems,
                              "runs_jobs_per_s": [run.rate for run in runs[side]]}
                       for side, r in results.items()}, file, indent=2)  # fmt: skip
    return 1 if any(run.problems for side_runs in runs.values() for run in side_runs) else 0


def median_run(runs: list[Result]) -> Result:
    """The run of median rate (the lower middle one of an even count)."""
    return sorted(runs, key=lambda run: run.rate)[(len(runs) - 1) // 2]


def report(results: dict[str, Result], runs: dict[str, list[Result]], args: argparse.Namespace) -> str:
    lines = [
        f"Drain of {args.jobs} no-op jobs by {args.processes} worker processes (sidequest: {args.concurrency} slots "
        f"each); the median of {args.repeat} run(s) per side",
        "",
        "| side | jobs/s | seconds | enqueue→start p50 ms | p99 ms | every run's jobs/s | exactly once |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for side, r in results.items():
        problems = [problem for run in runs[side] for problem in run.problems]
        once = "yes" if not problems else "NO: " + "; ".join(problems)
        every = ", ".join(f"{run.rate:,.0f}" for run in runs[side])
        lines.append(f"| {side} | {r.rate:,.0f} | {r.seconds:.2f} | {r.percentile(50):,.0f} | {r.percentile(99):,.0f} "
                     f"| {every} | {once} |")  # fmt: skip
    ours = results.get("sidequest")
    if ours is not None:
        lines.append("")
        for other, target in (("pgqueuer", 1.0), ("procrastinate", 5.0)):
            if other in results:
                ratio = ours.rate / results[other].rate
                lines.append(f"sidequest / {other}: {ratio:.2f}x (target ≥ {target:g}x: {'met' if ratio >= target else 'NOT met'})")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
