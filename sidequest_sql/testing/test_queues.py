"""Queues: creating, reading, listing and changing them, and the queues jobs use."""

from __future__ import annotations

import pytest

from sidequest_sql import (
    DuplicatedQueueError,
    NewJobData,
    QueueConfig,
    QueueNotFoundError,
    SidequestError,
)
from sidequest_sql.base import SQLBackend
from sidequest_sql.testing.fixtures import backend  # noqa: F401  (the suite's fixture)


def new_job(queue: str) -> NewJobData:
    return NewJobData(queue=queue, script="jobs.js", job_class="Echo")


class TestCreateNewQueue:
    def test_defaults(self, backend: SQLBackend) -> None:
        queue = backend.create_new_queue("emails")
        assert isinstance(queue, QueueConfig)
        assert isinstance(queue.id, int)
        assert (queue.name, queue.concurrency, queue.priority, queue.state) == ("emails", 10, 0, "active")

    def test_every_field_given_is_stored(self, backend: SQLBackend) -> None:
        queue = backend.create_new_queue("reports", concurrency=3, priority=-7, state="paused")
        assert (queue.name, queue.concurrency, queue.priority, queue.state) == ("reports", 3, -7, "paused")
        assert backend.get_queue("reports") == queue

    def test_each_queue_gets_its_own_id(self, backend: SQLBackend) -> None:
        first = backend.create_new_queue("a")
        second = backend.create_new_queue("b")
        assert first.id != second.id

    @pytest.mark.parametrize("concurrency", [0, -1])
    def test_concurrency_below_one_is_refused_and_nothing_is_written(
        self, backend: SQLBackend, concurrency: int
    ) -> None:
        with pytest.raises(ValueError, match="concurrency"):
            backend.create_new_queue("emails", concurrency=concurrency)
        assert backend.get_queue("emails") is None

    def test_concurrency_of_one_is_allowed(self, backend: SQLBackend) -> None:
        assert backend.create_new_queue("serial", concurrency=1).concurrency == 1

    def test_unknown_state_is_refused(self, backend: SQLBackend) -> None:
        with pytest.raises(ValueError, match="state"):
            backend.create_new_queue("emails", state="stopped")
        assert backend.list_queues() == []

    def test_existing_name_raises_duplicated_queue_error(self, backend: SQLBackend) -> None:
        original = backend.create_new_queue("emails", concurrency=2)
        with pytest.raises(DuplicatedQueueError) as raised:
            backend.create_new_queue("emails", concurrency=5)
        assert isinstance(raised.value, SidequestError)
        assert backend.list_queues() == [original]

    def test_names_differing_in_case_are_different_queues(self, backend: SQLBackend) -> None:
        lower = backend.create_new_queue("emails")
        upper = backend.create_new_queue("Emails")
        assert lower.id != upper.id
        assert backend.get_queue("Emails") == upper


class TestGetQueue:
    def test_returns_the_queue_of_that_name(self, backend: SQLBackend) -> None:
        backend.create_new_queue("other", priority=1)
        queue = backend.create_new_queue("emails", concurrency=4, priority=2)
        assert backend.get_queue("emails") == queue

    def test_missing_name_returns_none(self, backend: SQLBackend) -> None:
        backend.create_new_queue("emails")
        assert backend.get_queue("missing") is None

    def test_name_is_matched_exactly(self, backend: SQLBackend) -> None:
        backend.create_new_queue("emails")
        assert backend.get_queue("Emails") is None
        assert backend.get_queue("email%") is None
        assert backend.get_queue("email_") is None


class TestGetQueuesFromJobs:
    def test_no_jobs_no_names(self, backend: SQLBackend) -> None:
        backend.create_new_queue("configured")
        assert backend.get_queues_from_jobs() == []

    def test_distinct_names_used_by_jobs_only(self, backend: SQLBackend) -> None:
        backend.create_new_queue("configured-but-unused")
        backend.create_new_jobs([new_job("b"), new_job("a"), new_job("b"), new_job("c"), new_job("a")])
        names = backend.get_queues_from_jobs()
        assert sorted(names) == ["a", "b", "c"]
        assert len(names) == len(set(names))


class TestListQueues:
    def test_empty(self, backend: SQLBackend) -> None:
        assert backend.list_queues() == []

    def test_default_order_is_priority_descending(self, backend: SQLBackend) -> None:
        low = backend.create_new_queue("low", priority=-1)
        high = backend.create_new_queue("high", priority=50)
        mid = backend.create_new_queue("mid", priority=5)
        assert backend.list_queues() == [high, mid, low]

    def test_order_by_any_field_either_way(self, backend: SQLBackend) -> None:
        b = backend.create_new_queue("b", concurrency=3, priority=1, state="paused")
        c = backend.create_new_queue("c", concurrency=1, priority=3, state="active")
        a = backend.create_new_queue("a", concurrency=2, priority=2, state="paused")
        assert backend.list_queues(order_by="name", order="asc") == [a, b, c]
        assert backend.list_queues(order_by="name", order="desc") == [c, b, a]
        assert backend.list_queues(order_by="concurrency", order="asc") == [c, a, b]
        assert backend.list_queues(order_by="priority", order="asc") == [b, a, c]
        assert backend.list_queues(order_by="id", order="asc") == [b, c, a]
        assert backend.list_queues(order_by="id", order="desc") == [a, c, b]
        by_state = backend.list_queues(order_by="state", order="asc")
        assert [q.state for q in by_state] == ["active", "paused", "paused"]

    @pytest.mark.parametrize("order_by", ["class", "bogus", "name; DROP TABLE sidequest_queues", ""])
    def test_order_by_outside_the_fields_is_refused(self, backend: SQLBackend, order_by: str) -> None:
        with pytest.raises(ValueError, match="order_by"):
            backend.list_queues(order_by=order_by)

    def test_order_other_than_asc_or_desc_is_refused(self, backend: SQLBackend) -> None:
        with pytest.raises(ValueError, match="order"):
            backend.list_queues(order="sideways")


class TestUpdateQueue:
    def test_sets_the_given_fields_only(self, backend: SQLBackend) -> None:
        queue = backend.create_new_queue("emails", concurrency=2, priority=1)
        updated = backend.update_queue(queue.id, concurrency=7, state="paused")
        assert updated == QueueConfig(id=queue.id, name="emails", concurrency=7, state="paused", priority=1)
        assert backend.get_queue("emails") == updated

    def test_renames(self, backend: SQLBackend) -> None:
        queue = backend.create_new_queue("emails")
        updated = backend.update_queue(queue.id, name="mail", priority=9)
        assert (updated.id, updated.name, updated.priority) == (queue.id, "mail", 9)
        assert backend.get_queue("emails") is None
        assert backend.get_queue("mail") == updated

    def test_other_queues_are_untouched(self, backend: SQLBackend) -> None:
        target = backend.create_new_queue("target")
        other = backend.create_new_queue("other")
        backend.update_queue(target.id, concurrency=1)
        assert backend.get_queue("other") == other

    def test_no_changes_returns_the_queue_as_it_is(self, backend: SQLBackend) -> None:
        queue = backend.create_new_queue("emails", concurrency=3)
        assert backend.update_queue(queue.id) == queue

    def test_missing_id_raises_queue_not_found(self, backend: SQLBackend) -> None:
        queue = backend.create_new_queue("emails")
        with pytest.raises(QueueNotFoundError) as raised:
            backend.update_queue(queue.id + 1000, concurrency=2)
        assert isinstance(raised.value, LookupError)
        with pytest.raises(QueueNotFoundError):
            backend.update_queue(queue.id + 1000)

    @pytest.mark.parametrize(
        "changes",
        [{"bogus": 1}, {"id": 99}, {"concurrency": 0}, {"concurrency": -3}, {"state": "stopped"}],
        ids=["unknown", "id", "concurrency-0", "concurrency-negative", "state"],
    )
    def test_bad_changes_are_refused_and_nothing_is_written(
        self, backend: SQLBackend, changes: dict[str, object]
    ) -> None:
        queue = backend.create_new_queue("emails", concurrency=4)
        with pytest.raises(ValueError):
            backend.update_queue(queue.id, priority=5, **changes)
        assert backend.get_queue("emails") == queue

    def test_renaming_onto_an_existing_name_raises_duplicated_queue_error(self, backend: SQLBackend) -> None:
        taken = backend.create_new_queue("taken")
        queue = backend.create_new_queue("emails")
        with pytest.raises(DuplicatedQueueError):
            backend.update_queue(queue.id, name="taken")
        assert backend.get_queue("emails") == queue
        assert backend.get_queue("taken") == taken
