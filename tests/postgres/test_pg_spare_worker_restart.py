"""A worker whose database restarts under it: it carries on within seconds, and every job is
completed exactly once (counted by a trigger that logs each state change).

The worker runs in a thread on the tests' own cluster, with enough work that
claims, starts and batches of outcomes are in flight when the server is
restarted in fast mode. Whatever the restart cut off is written again once
the server is back (a write whose answer was lost is read back, not
repeated), and a claim whose answer was lost is given back by the worker
itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from spare_cluster import SpareCluster
from test_pg_spare_restart import backend_on, log_state_changes

import sidequest_sql as sq

pytestmark = pytest.mark.postgres

JOBS = 400
RESTARTS = 2


class Nap(sq.Job):
    def run(self, n: int) -> int:
        time.sleep(0.002)
        return n


def test_a_worker_outlives_database_restarts_and_completes_every_job_once(
    spare_cluster: SpareCluster, spare_schema: Callable[[], str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sidequest_sql.worker")
    schema = spare_schema()
    with backend_on(spare_cluster, schema) as store:
        store.migrate()
        log_state_changes(spare_cluster, schema)
        jobs = [sq.enqueue(store, Nap, n, timeout=60_000) for n in range(JOBS)]
        worker = sq.Worker(store, ["default"], concurrency=8, handle_signals=False,
                           release_stale_every=None, cleanup_every=None)  # fmt: skip
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            for restart in range(RESTARTS):
                target = (restart + 1) * JOBS // (RESTARTS + 2)
                _wait(lambda: store.count_jobs().completed >= target)
                spare_cluster.restart()
            _wait(lambda: store.count_jobs().completed == JOBS)
        finally:
            worker.stop()
            thread.join(30)
        assert not thread.is_alive()
        noticed = [record.getMessage() for record in caplog.records if "trying again" in record.getMessage()]
        assert noticed, "the restarts went unnoticed: nothing was tested"
        assert [job.result for job in store.list_jobs(limit=JOBS, state="completed")] == list(range(JOBS))[::-1]
        with spare_cluster.admin() as admin:
            changes = admin.execute(f'SELECT job_id, state FROM "{schema}".state_changes').fetchall()
        completions = Counter(job_id for job_id, state in changes if state == "completed")
        assert completions == Counter(job.id for job in jobs)


def _wait(condition: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except sq.DatabaseUnavailableError:
            pass  # the test's own reads meet the restart too
        assert time.monotonic() < deadline, "the worker did not get through its jobs in time"
        time.sleep(0.05)
