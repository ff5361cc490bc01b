"""Jobs across the languages: Node Sidequest enqueues and Python claims, Python writes and Node reads.

Node Sidequest runs for real (``node_sidequest``): a job goes in through its
own API (``Sidequest.build(…).enqueue(…)``) and is read through it
(``Sidequest.job.get``), on tables ``migrate()`` made.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from node_sidequest import NodeSidequest, node_job_as_python

from sidequest_sql import JobData, NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.dialects.postgres import PostgresBackend
from sidequest_sql.testing.documents import nested

pytestmark = pytest.mark.postgres

# Node's Date keeps milliseconds: times a Node process reads back exactly.
MOMENT = datetime(2025, 3, 4, 5, 6, 7, 123_000, tzinfo=UTC)


def test_a_job_node_sidequest_enqueued_is_claimed_and_completed_by_us(
    new_schema: Callable[..., str], make_backend: Callable[..., SQLBackend], node_sidequest: NodeSidequest
) -> None:
    schema = new_schema()
    backend = make_backend(schema, worker_name="python-worker")
    backend.migrate()
    # A payload as deep as Postgres is declared to take: Node writes it, Python reads and matches it.
    deep = nested(PostgresBackend.max_json_depth - 1, "mixed", "bottom")
    args = ["ada@example.com", deep]

    made = node_job_as_python(
        node_sidequest.enqueue(
            schema,
            queue="mail",
            args=args,
            constructorArgs=[{"retries": 2}],
            timeout=5000,
            maxAttempts=3,
            retryDelay=250,
            backoffStrategy="fixed",
        )
    )

    job = backend.get_job(made["id"])
    assert job is not None
    # Every field (Node returns the whole row, ours included): what we read.
    assert set(made) == set(JobData.__dataclass_fields__)
    assert {name: getattr(job, name) for name in made} == made
    assert (job.job_class, job.state, job.args, job.constructor_args) == ("SendMail", "waiting", args, [{"retries": 2}])
    assert (job.timeout, job.max_attempts, job.retry_delay, job.backoff_strategy) == (5000, 3, 250, "fixed")
    assert job.priority == 0  # the column Node does not know takes its default
    assert backend.list_jobs(args=args) == [job]

    [claimed] = backend.claim_pending_job("mail")
    assert (claimed.id, claimed.state, claimed.claimed_by) == (job.id, "claimed", "python-worker")
    backend.update_job(job.id, state="running", attempt=1, attempted_at=datetime.now(UTC))
    done = backend.update_job(job.id, state="completed", result={"sent": "ada@example.com"}, completed_at=datetime.now(UTC))
    assert backend.get_job(job.id) == done
    assert (done.state, done.attempt, done.result, done.args) == ("completed", 1, {"sent": "ada@example.com"}, args)


def test_a_job_we_wrote_reads_the_same_in_node_sidequest(
    new_schema: Callable[..., str], make_backend: Callable[..., SQLBackend], node_sidequest: NodeSidequest
) -> None:
    schema = new_schema()
    backend = make_backend(schema, worker_name="python-worker", clock=lambda: MOMENT)
    backend.migrate()
    job = backend.create_new_job(
        NewJobData(
            "mail",
            "mailer.py",
            "SendMail",
            args=["ada@example.com", {"cc": ["b@example.com"], "n": 2}],
            constructor_args=[{"retries": 2}],
            max_attempts=3,
            timeout=1000,
            unique_digest="digest-1",
            uniqueness_config={"type": "alive-job", "withArgs": False},
            retry_delay=250,
            backoff_strategy="fixed",
        )
    )
    backend.claim_pending_job("mail")
    backend.update_job(job.id, state="running", attempt=1, attempted_at=MOMENT + timedelta(milliseconds=5))
    failed = backend.update_job(
        job.id,
        state="failed",
        failed_at=MOMENT + timedelta(seconds=1),
        result={"partial": [1, 2]},
        errors=[{"message": "mailbox full", "attempt": 1}],
    )

    read = node_job_as_python(node_sidequest.get(job.id, schema))

    # Every field, ours included (Node returns the whole row): the same values.
    assert set(read) == set(JobData.__dataclass_fields__)
    assert read == {name: getattr(failed, name) for name in read}
