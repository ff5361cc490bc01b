"""The contract model stands in for a backend, so it must take the same calls."""

from __future__ import annotations

import inspect

from sidequest_sql import SQLBackend
from sidequest_sql.testing.model import ModelBackend

# The contract's operations that the model implements (all but the migrations and close()).
OPERATIONS = [
    "create_new_queue", "get_queue", "get_queues_from_jobs", "list_queues", "update_queue",
    "get_job", "create_new_job", "create_new_jobs", "claim_pending_job", "update_job", "transition_job",
    "list_jobs", "count_jobs", "count_jobs_by_queues", "count_jobs_over_time", "stale_jobs",
    "delete_finished_jobs", "truncate",
]  # fmt: skip


def _call(function: object) -> list[tuple[str, object, object]]:
    """What a caller sees of a signature: each parameter's name, kind and default
    (the model's ``connection=`` is a transaction of its own, typed otherwise)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]  # type: ignore[arg-type]


def test_every_operation_has_the_same_signature_on_the_model() -> None:
    for name in OPERATIONS:
        assert _call(getattr(ModelBackend, name)) == _call(getattr(SQLBackend, name)), name
