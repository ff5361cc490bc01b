"""The worker: takes jobs from the store and runs them end to end.

    import sidequest_sql as sq

    class SendEmail(sq.Job):
        def run(self, to: str) -> dict: ...

    sq.enqueue(backend, SendEmail, "ada@example.com", queue="emails")
    sq.Worker(backend, queues=["emails"]).run()

It uses only the store's public operations (``claim_pending_job``,
``transition_jobs``, ``list_queues``, ``stale_jobs``,
``delete_finished_jobs``…), so any dialect, built in or third-party, gets it
unchanged.

Design: one loop. The scheduling is written once, as asyncio code
(``loop.Worker``): async jobs run as tasks on its loop; sync jobs run in
threads of the worker's (``threads``), at most as many as there are slots,
where a job past its time-out is stopped by an exception raised inside it.
The store is reached through ``store.Store``, which awaits an
``AsyncSQLBackend``'s coroutines directly and runs a ``SQLBackend``'s
methods in a few store threads of its own: the loop never blocks on the
database, and there is no second copy of the scheduling for sync backends.
``run()`` is ``asyncio.run(run_async())``.

Statements per job are what a worker's speed is made of: a claim takes as
many jobs as its queue has free slots in one statement, starting them is one
checked write for the lot, and their outcomes, piled up while the previous
write ran, are one checked write too (``transition_jobs``). Every write after
the claim is checked (still in the state expected, still claimed by this
worker, same attempt): a job canceled or released meanwhile is left as it
is. A worker that dies loses only what it had not written: those jobs stay
running or claimed, stale release (``routines``) puts them back, and they
run again; each completion is still recorded once.

Modules: ``jobs`` what a job author writes (``Job``, ``Retry``, ``Snooze``,
``Fail``), ``enqueue``, ``loading`` from a stored job to a call,
``outcomes`` what a run's end changes, ``threads`` sync jobs and how they
are stopped, ``store`` the backend as coroutines, ``writes`` the checked
writes carried through a database that goes away, ``idle_wait`` how an idle
worker sleeps on the store's wake-up (``wait_for_jobs``), ``routines`` stale
release and cleanup, ``signals`` SIGTERM and SIGINT, ``loop`` the ``Worker``.
"""

from __future__ import annotations

from .enqueue import enqueue
from .jobs import Fail, Job, Retry, Snooze
from .loop import Stats, Worker
from .threads import JobStopped

__all__ = ["Fail", "Job", "JobStopped", "Retry", "Snooze", "Stats", "Worker", "enqueue"]
