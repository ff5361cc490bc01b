"""The smallest round trip: a job goes in, is claimed once, and comes back out."""

from __future__ import annotations

from sidequest_sql import NewJobData
from sidequest_sql.base import SQLBackend


def test_enqueue_claim_and_read_back(backend: SQLBackend) -> None:
    job = backend.create_new_job(NewJobData(queue="default", script="s.js", job_class="Echo", args=[1]))
    [claimed] = backend.claim_pending_job("default")
    assert claimed.id == job.id and claimed.state == "claimed"
    assert backend.claim_pending_job("default") == []
    assert backend.get_job(job.id) == claimed
