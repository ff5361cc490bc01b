"""Quickstart: a job store on the embedded SQLite default, worked by several threads.

Migrates ``sidequest.sqlite`` in the current directory (or
``$SIDEQUEST_DATABASE_URL``), enqueues jobs, lets worker threads claim and
complete them, and prints the counts; then shows the same store through the
operator command, ``sidequest-sql stats`` and ``sidequest-sql jobs``. Run it
again: it starts from empty.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime

import sidequest_sql as sq

JOBS = 500
WORKERS = 4


def work(backend: sq.SQLBackend, done: Counter[int], lock: threading.Lock) -> None:
    """Claim jobs five at a time and complete each, until the queue is empty."""
    while claimed := backend.claim_pending_job("emails", quantity=5):
        for job in claimed:
            backend.update_job(job.id, state="running", attempt=job.attempt + 1,
                               attempted_at=datetime.now(UTC))
            result = {"sent_to": job.args[0]}
            backend.update_job(job.id, state="completed", result=result, completed_at=datetime.now(UTC))
            with lock:
                done[job.id] += 1


def main() -> None:
    with sq.create_backend() as backend:
        applied = backend.migrate()
        print(f"{backend!r}: migrations applied {applied or 'none (already at head)'}")
        backend.truncate()
        backend.create_new_queue("emails", concurrency=WORKERS)

        jobs = backend.create_new_jobs(
            sq.NewJobData(queue="emails", script="mailer.py", job_class="SendEmail",
                          args=[f"user{i}@example.com"])
            for i in range(JOBS)
        )
        print(f"enqueued {len(jobs)} jobs")

        done: Counter[int] = Counter()
        lock = threading.Lock()
        workers = [threading.Thread(target=work, args=(backend, done, lock)) for _ in range(WORKERS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

        exactly_once = set(done) == {job.id for job in jobs} and set(done.values()) == {1}
        print(f"{WORKERS} workers completed {sum(done.values())} jobs; each exactly once: {exactly_once}")
        counts = backend.count_jobs()
        print("counts:", {state: getattr(counts, state) for state in
                          ("total", "waiting", "claimed", "running", "completed", "failed", "canceled")})
        for name, queue_counts in backend.count_jobs_by_queues().items():
            print(f"queue {name}: {queue_counts.completed} completed of {queue_counts.total}")
        if not exactly_once:
            raise SystemExit("some job was lost or completed twice")

    # The same store through the operator command (installed with the package).
    for command in (["stats", "--over", "15m"], ["jobs", "--limit", "5"]):
        print(f"\n$ sidequest-sql {' '.join(command)}", flush=True)
        subprocess.run([sys.executable, "-m", "sidequest_sql.cli", *command], check=True)


if __name__ == "__main__":
    main()
