"""Quickstart: jobs enqueued and run by a worker on the embedded SQLite default.

Migrates ``sidequest.sqlite`` in the current directory (or
``$SIDEQUEST_DATABASE_URL``), enqueues emails for the ``SendEmail`` job of
``mailer.py`` (one retried once, one failed at once), runs a worker until
the queue is empty, and prints the counts; then does the same from the
terminal (``sidequest-sql worker --burst``) and shows the store through
``sidequest-sql stats`` and ``sidequest-sql jobs``. Run it again: it starts
from empty.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sidequest_sql as sq
from mailer import SendEmail

JOBS = 500
HERE = Path(__file__).resolve().parent


def main() -> None:
    with sq.create_backend() as backend:
        applied = backend.migrate()
        print(f"{backend!r}: migrations applied {applied or 'none (already at head)'}")
        backend.truncate()
        backend.create_new_queue("emails", concurrency=4)

        for i in range(JOBS):
            sq.enqueue(backend, SendEmail, f"user{i}@example.com", queue="emails", constructor_args=["shop@example.com"])
        sq.enqueue(backend, SendEmail, "ada@bounce.example.com", queue="emails", constructor_args=["shop@example.com"],
                   max_attempts=3, retry_delay=0, backoff_strategy="fixed")  # fmt: skip
        sq.enqueue(backend, SendEmail, "nobody@invalid", queue="emails", constructor_args=["shop@example.com"])
        print(f"enqueued {JOBS + 2} jobs")

        # Runs jobs four at a time (the queue's concurrency) until the queue is empty.
        sq.Worker(backend, queues=["emails"], burst=True).run()

        counts = backend.count_jobs()
        print("counts:", {state: getattr(counts, state) for state in
                          ("total", "waiting", "claimed", "running", "completed", "failed", "canceled")})
        [failed] = backend.list_jobs(state="failed")
        print(f"failed: job {failed.id} to {failed.args[0]}: {failed.errors[-1]['message']}")
        [bounced] = backend.list_jobs(args=["ada@bounce.example.com"])
        print(f"retried: job {bounced.id} {bounced.state} on attempt {bounced.attempt}, "
              f"after {bounced.errors[0]['name']}: {bounced.errors[0]['message']}")  # fmt: skip
        if counts.completed != JOBS + 1 or counts.failed != 1:
            raise SystemExit("some job was lost or ended wrongly")

        for i in range(20):
            sq.enqueue(backend, SendEmail, f"late{i}@example.com", queue="emails", constructor_args=["shop@example.com"])
        url = backend.url.render_as_string(hide_password=False)

    # The same from the terminal: the command finds mailer.py on the import path.
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    for command in (["worker", "--queue", "emails", "--burst"], ["stats", "--over", "15m"], ["jobs", "--limit", "5"]):
        print(f"\n$ sidequest-sql {' '.join(command)}", flush=True)
        subprocess.run([sys.executable, "-m", "sidequest_sql.cli", "--url", url, *command], check=True, env=environment)


if __name__ == "__main__":
    main()
