"""The contract model stands in for a backend, so it must take the same calls."""

from __future__ import annotations

import inspect

from sidequest_sql import SQLBackend
from sidequest_sql.testing.model import ModelBackend

# The contract's operations that the model implements (all but the migrations and close()).
OPERATIONS = [
    "create_new_queue", "get_queue", "get_queues_from_jobs", "list_queues", "update_queue",
    "get_job", "create_new_job", "create_new_jobs", "claim_pending_job", "update_job", "list_jobs",
    "count_jobs", "count_jobs_by_queues", "count_jobs_over_time", "stale_jobs",
    "delete_finished_jobs", "truncate",
]  # fmt: skip


def test_every_operation_has_the_same_signature_on_the_model() -> None:
    for name in OPERATIONS:
        assert inspect.signature(getattr(ModelBackend, name)) == inspect.signature(getattr(SQLBackend, name)), name
