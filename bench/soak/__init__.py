"""The soak run: ``python -m bench.soak --url URL --minutes 5``.

Producers, claimers and a cleanup loop run together for a bounded time, in
threads of the main process and of spawned processes, each process on its own
backend. Producers enqueue single jobs and small batches, holding a bounded
backlog; claimers claim 1 or 10 at a time and run each job as a job runner
would (running, then completed; or back to waiting for a retry, or failed for
good after ``max_attempts``, as the job's args plan it); the cleanup deletes
jobs that ended a few seconds ago and checks for stale jobs. Once producers
stop, claimers drain what is left.

It prints throughput per interval, counts every exception in every worker
(any makes the run fail), and ends with exact-once accounting from the
workers' own logs, checked against the table: every job enqueued ended
exactly once, as planned, none lost, none doubled, deleted ones included.

Modules: ``__main__`` the command line and the run; ``workers`` the threads;
``ledger`` the accounting.
"""
