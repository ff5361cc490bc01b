"""Waking workers: how soon a waiting worker has a job, and what idle workers cost the database.

``wake_latency``: ``WAKERS`` worker threads share the run's backend, each in
a loop of ``claim_pending_job`` then, when that found nothing,
``wait_for_jobs``; a producer (a backend of its own, as a web process would
be) enqueues jobs one at a time, far enough apart that the workers are
asleep when each arrives: ``WAKE_JOBS`` of them ``GAP_MS`` apart where the
dialect notifies (Postgres: LISTEN/NOTIFY), else ``POLLED_JOBS`` of them
half to one and a half ``poll_interval`` apart (SQLite: polling).
"Enqueue-to-wake" runs to the return of the wait after which a worker
claimed the job (jobs a worker claimed without having waited for them are
counted apart), from the return of the producer's ``create_new_job`` (its
commit acknowledged: what waking adds), and from its call (the enqueue's own
round trip included); "enqueue-to-claimed", from that return to the return
of the claim that took the job. p50 and p99 over the jobs.

``idle_load``: ``IDLE_WORKERS`` threads, each looping "claim; if nothing,
``wait_for_jobs(timeout=IDLE_WAIT_S)``" on an empty queue, for
``IDLE_S`` seconds; and for comparison the same threads polling, "claim;
if nothing, sleep ``POLL_MS``" (Sidequest's workers poll every 100 ms or
more). The load is counted by the database on Postgres (the change of
``xact_commit + xact_rollback`` in ``pg_stat_database``: every statement
the backend sends alone is a transaction) and by the engine elsewhere (a
``before_cursor_execute`` counter, which sends statements the ordinary
way), in queries per second.

``notify_cost`` (Postgres): what the triggers of revision 0007 add to the
writes, against none and against a per-row INSERT trigger.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, text

import sidequest_sql as sq

from . import fill
from .phases import Row, percentile

if TYPE_CHECKING:
    from sidequest_sql.base import SQLBackend

    from .phases import Bench

WAKE_QUEUE = "bench-wake"
WAKERS = 4
WAKE_JOBS = 300
GAP_MS = (5.0, 25.0)
POLLED_JOBS = 40
WAKE_TIMEOUT_S = 30.0
WORKER_WAIT_S = 5.0
IDLE_WORKERS = 10
IDLE_S = 30.0
IDLE_WAIT_S = 10.0
POLL_MS = 100.0
SETTLE_S = 2.0
"""Before counting: listening connections made, the first looks done."""


def wake_latency(bench: Bench) -> None:
    backend = bench.backend
    fill.reset(backend)
    notified = backend.job_notifier() is not None
    # Where workers poll, fewer jobs, about one poll interval apart but never in step with the polls.
    polled = (backend.poll_interval * 500, backend.poll_interval * 1500)
    count, gap_ms = (WAKE_JOBS, GAP_MS) if notified else (POLLED_JOBS, polled)
    called: dict[int, float] = {}
    returned: dict[int, float] = {}
    woke_at: dict[int, float] = {}
    held_at: dict[int, float] = {}
    unwoken: list[int] = []
    lock = threading.Lock()
    done = threading.Event()

    def worker() -> None:
        woke: float | None = None
        while not done.is_set():
            jobs = backend.claim_pending_job(WAKE_QUEUE)
            got = time.perf_counter()
            if not jobs:
                woke = time.perf_counter() if backend.wait_for_jobs([WAKE_QUEUE], WORKER_WAIT_S) else None
                continue
            [job] = jobs
            n = job.args[0]
            with lock:
                held_at[n] = got
                if woke is not None and woke > called[n]:
                    woke_at[n] = woke
                else:
                    unwoken.append(n)
            backend.update_job(job.id, state="completed", completed_at=bench.now())
            woke = None

    producer = sq.create_backend(bench.s.url)
    workers = [threading.Thread(target=worker, daemon=True) for _ in range(WAKERS)]
    try:
        for thread in workers:
            thread.start()
        time.sleep(SETTLE_S)
        rng = random.Random(0)
        with bench.progress.task(f"enqueue-to-wake, {WAKERS} waiting workers", count) as bar:
            for n in range(count):
                time.sleep(rng.uniform(*gap_ms) / 1000)
                called[n] = time.perf_counter()
                producer.create_new_job(sq.NewJobData(queue=WAKE_QUEUE, script="bench", job_class="Wake", args=[n]))
                returned[n] = time.perf_counter()
                bar.update(n + 1)
            deadline = time.monotonic() + WAKE_TIMEOUT_S
            while len(held_at) < count and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        done.set()
        for thread in workers:
            thread.join(WAKE_TIMEOUT_S)
        producer.close()
    check = f"ok: {len(held_at)} claimed, {len(unwoken)} of them without waiting for them"
    if sorted(held_at) != list(range(count)):
        check = f"FAILED: claimed {len(held_at)} of {count}"
        bench.failures.append(f"wake: {check}")
    how = _how_woken(backend)
    latencies = {
        f"enqueue-to-wake, {how}, from the enqueue's return": {n: at - returned[n] for n, at in woke_at.items()},
        f"enqueue-to-wake, {how}, from the enqueue's call": {n: at - called[n] for n, at in woke_at.items()},
        f"enqueue-to-claimed, {how}, from the enqueue's return": {n: at - returned[n] for n, at in held_at.items()},
    }
    for variant, by_job in latencies.items():
        seconds = list(by_job.values())
        row = Row(
            "wake",
            variant,
            len(seconds),
            f"{WAKERS} threads",
            ours_p50_ms=percentile(seconds, 0.50),
            ours_p99_ms=percentile(seconds, 0.99),
            check=check,
        )
        row.samples["ms"] = [round(x * 1000, 3) for x in seconds]
        _add(bench, row)


def idle_load(bench: Bench) -> None:
    backend = bench.backend
    fill.reset(backend)

    def waiting(stop: threading.Event) -> None:
        while not stop.is_set():
            if not backend.claim_pending_job(WAKE_QUEUE):
                backend.wait_for_jobs([WAKE_QUEUE], IDLE_WAIT_S)

    def polling(stop: threading.Event) -> None:
        while not stop.is_set():
            if not backend.claim_pending_job(WAKE_QUEUE):
                stop.wait(POLL_MS / 1000)

    variants: list[tuple[str, Callable[[threading.Event], None]]] = [
        (f"wait_for_jobs(timeout={IDLE_WAIT_S:g} s), {_how_woken(backend)}", waiting),
        (f"polling: claim, sleep {POLL_MS:g} ms", polling),
    ]
    for label, loop in variants:
        stop = threading.Event()
        threads = [threading.Thread(target=loop, args=(stop,), daemon=True) for _ in range(IDLE_WORKERS)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(SETTLE_S)
            with bench.progress.task(f"idle: {label}", None), _queries(backend) as counted:
                time.sleep(IDLE_S)
        finally:
            stop.set()
            for thread in threads:
                thread.join(IDLE_WAIT_S + 5)
        row = Row(
            "idle load",
            f"{IDLE_WORKERS} idle workers, {label}: queries/s",
            0,
            f"{IDLE_WORKERS} threads",
            ours=counted[0] / counted[2],
            seconds=counted[2],
            check=f"ok: {counted[0]} queries ({counted[1]})",
        )
        _add(bench, row)


def _how_woken(backend: SQLBackend) -> str:
    if backend.job_notifier() is not None:
        return "LISTEN/NOTIFY"
    return f"polling every {backend.poll_interval:g} s"


@contextmanager
def _queries(backend: SQLBackend) -> Iterator[list[Any]]:
    """``[count, how it was counted, seconds]`` once the block ends: the queries the
    database received meanwhile, and how long the block took."""
    counted: list[Any] = [0, "", 0.0]
    if fill.is_postgres(backend):
        engine = create_engine(backend.url, isolation_level="AUTOCOMMIT")
        query = text(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
        try:
            with engine.connect() as conn:
                before = conn.scalar(query)
                started = time.perf_counter()
                yield counted
                seconds = time.perf_counter() - started
                after = conn.scalar(query)
        finally:
            engine.dispose()
        # Less the first look itself. (Sessions report their counts as they go idle,
        # at most once a second: what is unreported at either end evens out.)
        counted[:] = [int(after) - int(before) - 1, "pg_stat_database transactions", seconds]
        return
    sent = [0]

    def count(*_: Any) -> None:
        sent[0] += 1

    event.listen(backend.engine, "before_cursor_execute", count)
    started = time.perf_counter()
    try:
        yield counted
    finally:
        event.remove(backend.engine, "before_cursor_execute", count)
    counted[:] = [sent[0], "statements the engine sent", time.perf_counter() - started]


def _add(bench: Bench, row: Row) -> None:
    bench.rows.append(row)
    parts = [f"{row.phase} / {row.variant}:"]
    if row.ours_p50_ms is not None:
        parts.append(f"p50 {row.ours_p50_ms:.2f} ms p99 {row.ours_p99_ms:.2f} ms")
    if row.ours is not None:
        parts.append(f"{row.ours:.2f}/s")
    bench.progress.note(" ".join([*parts, row.check]))


# -- what the triggers of revision 0007 cost the writes ------------------------------------

COST_ROUNDS = 30
COST_ENQUEUES = 50
COST_BATCHES = 2
COST_BATCH = 1_000
COST_CLAIMS = 20
TRIGGERS = ("sidequest_jobs_notify_inserted", "sidequest_jobs_notify_waiting")
ROW_TRIGGER = "sidequest_bench_notify_row"
ROW_TRIGGER_DDL = (
    f"""
    CREATE OR REPLACE FUNCTION {ROW_TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.state = 'waiting' THEN
            PERFORM pg_notify('sidequest_jobs.' || TG_TABLE_SCHEMA, NEW.queue);
        END IF;
        RETURN NULL;
    END $$
    """,
    f"CREATE TRIGGER {ROW_TRIGGER} AFTER INSERT ON sidequest_jobs FOR EACH ROW EXECUTE FUNCTION {ROW_TRIGGER}()",
)
COST_VARIANTS = {
    "no triggers": (),
    "revision 0007": TRIGGERS,
    "per-row INSERT trigger instead": (ROW_TRIGGER, TRIGGERS[1]),
}


def notify_cost(bench: Bench) -> None:
    """What the triggers cost the writes, Postgres only: enqueues, batches and
    claim+complete with the triggers of revision 0007, with none, and with a
    per-row INSERT trigger in place of 0007's per-statement one, in blocks that
    take turns (``COST_ROUNDS`` rounds, the three in a new order each time) so
    that the machine's load weighs on all three alike; the median and p99 of
    each call, and each median's ratio to the one without triggers. Beside the
    calls as a client sees them, the server's own time for INSERTs of one row
    and of a batch (``_server_block``), which the client's round trips and the
    machine's load disturb much less. A session of its own listens on the
    channel meanwhile, as a waiting backend would.
    """
    backend = bench.backend
    if not fill.is_postgres(backend):
        bench.progress.note("notify_cost: Postgres only; skipped")
        return
    fill.reset(backend)
    times: dict[tuple[str, str], list[float]] = {}
    rng = random.Random(0)
    with backend.engine.begin() as conn:
        for statement in ROW_TRIGGER_DDL:
            conn.exec_driver_sql(statement)
    try:
        with _listened(backend), bench.progress.task("notify_cost", COST_ROUNDS * len(COST_VARIANTS)) as bar:
            for n in range(COST_ROUNDS * len(COST_VARIANTS)):
                if n % len(COST_VARIANTS) == 0:
                    order = rng.sample(list(COST_VARIANTS), len(COST_VARIANTS))
                    fill.analyze(backend)  # the table grows: plans stay those of a table its size
                variant = order[n % len(COST_VARIANTS)]
                _enable(backend, COST_VARIANTS[variant])
                for call, seconds in {**_cost_block(backend, n), **_server_block(backend)}.items():
                    times.setdefault((call, variant), []).extend(seconds)
                bar.update(n + 1)
    finally:
        with backend.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {ROW_TRIGGER} ON sidequest_jobs")
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {ROW_TRIGGER}()")
        _enable(backend, TRIGGERS, among=TRIGGERS)
        fill.reset(backend)
    for (call, variant), seconds in times.items():
        base = statistics.median(times[(call, "no triggers")])
        ratio = statistics.median(seconds) / base
        row = Row(
            "notify cost",
            f"{call}, {variant}",
            len(seconds),
            "1 thread",
            ours_p50_ms=percentile(seconds, 0.50),
            ours_p99_ms=percentile(seconds, 0.99),
            check=f"median x{ratio:.3f} of no triggers",
        )
        _add(bench, row)


def _cost_block(backend: SQLBackend, n: int) -> dict[str, list[float]]:
    clock = time.perf_counter
    queue = f"bench-cost-{n % 4}"
    seconds: dict[str, list[float]] = {"create_new_job": [], f"create_new_jobs of {COST_BATCH}": [], "claim+complete": []}
    for i in range(COST_ENQUEUES):
        started = clock()
        backend.create_new_job(sq.NewJobData(queue=queue, script="bench", job_class="Cost", args=[i]))
        seconds["create_new_job"].append(clock() - started)
    for _ in range(COST_BATCHES):
        batch = [sq.NewJobData(queue=queue, script="bench", job_class="Cost", args=[i]) for i in range(COST_BATCH)]
        started = clock()
        backend.create_new_jobs(batch)
        seconds[f"create_new_jobs of {COST_BATCH}"].append(clock() - started)
    for _ in range(COST_CLAIMS):
        started = clock()
        [job] = backend.claim_pending_job(queue)
        backend.update_job(job.id, state="completed", completed_at=datetime.now(UTC))
        seconds["claim+complete"].append(clock() - started)
    return seconds


SERVER_INSERT = (
    "INSERT INTO sidequest_jobs (queue, state, script, class, args, constructor_args, attempt, max_attempts, "
    "available_at) SELECT 'bench-cost-' || mod(n, 2), 'waiting', 'bench', 'Cost', jsonb_build_array(n), '[]', 0, 5, "
    "now() FROM generate_series(1, {rows}) AS n"
)
SERVER_ROWS = {1: 20, COST_BATCH: 2}
"""Rows of each INSERT the server times, and how many times a block runs it."""


def _server_block(backend: SQLBackend) -> dict[str, list[float]]:
    """The server's own time for an INSERT of 1 and of ``COST_BATCH`` rows, triggers
    included, commit left out (``EXPLAIN ANALYZE``'s execution time, rolled back)."""
    seconds: dict[str, list[float]] = {}
    with backend.engine.connect() as conn:
        for rows, times in SERVER_ROWS.items():
            for _ in range(times):
                with conn.begin() as transaction:
                    [[[plan]]] = conn.exec_driver_sql(
                        "EXPLAIN (ANALYZE, FORMAT JSON) " + SERVER_INSERT.format(rows=rows)
                    ).all()
                    transaction.rollback()
                seconds.setdefault(f"server time of an INSERT of {rows} row{'s' * (rows > 1)}", []).append(
                    plan["Execution Time"] / 1000
                )
    return seconds


def _enable(backend: SQLBackend, triggers: tuple[str, ...], among: tuple[str, ...] = (*TRIGGERS, ROW_TRIGGER)) -> None:
    """Enable ``triggers`` and disable the others ``among`` the jobs table's."""
    with backend.engine.begin() as conn:
        for name in among:
            conn.exec_driver_sql(f"ALTER TABLE sidequest_jobs {'ENABLE' if name in triggers else 'DISABLE'} TRIGGER {name}")


@contextmanager
def _listened(backend: SQLBackend) -> Iterator[None]:
    """A session LISTENing on the jobs' channel, reading what comes, for the time of the block."""
    import psycopg

    from sidequest_sql.dialects.pg_notify import channel_for, quoted

    with backend.engine.connect() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
    listener = psycopg.connect(backend.url.set(drivername="postgresql").render_as_string(hide_password=False),
                               autocommit=True)
    listener.execute(f"LISTEN {quoted(channel_for(schema))}")
    done = threading.Event()

    def drain() -> None:
        while not done.is_set():
            for _ in listener.notifies(timeout=0.2):
                pass

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(5)
        listener.close()


WAKE_PHASES: dict[str, Callable[[Bench], None]] = {
    "wake_latency": wake_latency,
    "idle_load": idle_load,
    "notify_cost": notify_cost,
}
