"""Operations inside the caller's own transaction (``connection=``).

An operation given a connection joins its current transaction: the caller's
commit keeps the job writes with their own, the caller's rollback undoes
them, and the backend neither commits, rolls back nor retries. The state
machine of ``test_stateful`` runs here with transactions of its own begun,
committed and rolled back between the steps, on the backend and on the model
alike; while one is open every operation joins it, and after it ends the
invariants compare the committed stores, so a rollback must leave the
backend as the model says it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule, run_state_machine_as_test
from sqlalchemy import event

from sidequest_sql import DuplicatedJobError, DuplicatedQueueError, NewJobData, QueueConfig, base
from sidequest_sql.base import SQLBackend
from sidequest_sql.records import JobData

from .backends import BackendFactory, CallerTransaction
from .clock import ManualClock
from .fixtures import backend  # noqa: F401  (the suite's fixture)
from .model import ModelBackend
from .test_bad_input import snapshot
from .test_concurrency import require_shared_database
from .test_stateful import SidequestStateMachine

OPERATIONS = frozenset(
    name for name in vars(SQLBackend) if not name.startswith("_") and callable(vars(SQLBackend)[name])
) - {"close"}


def job(queue: str = "receipts", **fields: Any) -> NewJobData:
    return NewJobData(queue=queue, script="jobs/receipt.py", job_class="SendReceipt", **fields)


class Joined:
    """A backend or model whose every operation joins ``connection``."""

    def __init__(self, target: Any, connection: Any) -> None:
        self._target, self._connection = target, connection

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name not in OPERATIONS:
            return attribute
        return lambda *args, **kwargs: attribute(*args, connection=self._connection, **kwargs)


class CallerTransactionMachine(SidequestStateMachine):
    """``SidequestStateMachine`` with caller's transactions begun, committed and rolled back."""

    def __init__(self, backend: Any, clock: ManualClock, begin: Callable[[Any], Any]) -> None:
        super().__init__(backend, clock)
        self.begin_on = begin
        self.committed = (self.backend, self.model)
        self.open: tuple[Any, Any] | None = None

    @initialize()
    def begin_at_once(self) -> None:
        """Most steps should run inside a transaction: one is open from the start."""
        self.begin()

    @precondition(lambda self: self.open is None)
    @rule()
    def begin(self) -> None:
        backend, model = self.committed
        transaction, model_transaction = self.begin_on(backend), model.begin()
        self.open = transaction, model_transaction
        self.backend, self.model = Joined(backend, transaction.connection), Joined(model, model_transaction)
        note("begin a caller's transaction")

    @precondition(lambda self: self.open is not None)
    @rule(commit=st.booleans())
    def end(self, commit: bool) -> None:
        self.finish(commit)

    def finish(self, commit: bool) -> None:
        assert self.open is not None
        transaction, model_transaction = self.open
        self.open = None
        self.backend, self.model = self.committed
        self.unchecked = True
        self.touched.update(job.id for job in self.model.list_jobs(limit=2**31 - 1))
        note("commit" if commit else "roll back")
        if commit:
            model_transaction.commit()
            transaction.commit()
        else:
            model_transaction.rollback()
            transaction.rollback()

    def teardown(self) -> None:
        if self.open is not None:
            self.finish(commit=False)
            self.backend_agrees_with_model()  # what the rollback left, as the model says


def test_a_program_with_caller_transactions_behaves_like_the_model(
    backend: SQLBackend, sidequest_clock: ManualClock, sidequest_settings: settings, sidequest_backends: BackendFactory
) -> None:
    run_state_machine_as_test(
        lambda: CallerTransactionMachine(backend, sidequest_clock, sidequest_backends.begin),
        settings=sidequest_settings,
    )


def test_the_model_passes_the_same_machine(sidequest_clock: ManualClock, sidequest_settings: settings) -> None:
    model = ModelBackend(clock=sidequest_clock, worker_name="contract-worker")
    run_state_machine_as_test(
        lambda: CallerTransactionMachine(model, sidequest_clock, lambda model: model.begin()),
        settings=sidequest_settings,
    )


class TestTheOutbox:
    """An order and the job that mails its receipt commit or roll back together."""

    def test_a_job_enqueued_in_a_committed_transaction_is_there(
        self, backend: SQLBackend, sidequest_backends: BackendFactory
    ) -> None:
        transaction = sidequest_backends.begin(backend)
        created = backend.create_new_job(job(args=[42]), connection=transaction.connection)
        assert backend.get_job(created.id, connection=transaction.connection) == created
        transaction.commit()
        assert backend.get_job(created.id) == created
        assert backend.count_jobs().waiting == 1

    def test_a_job_enqueued_in_a_rolled_back_transaction_never_was(
        self, backend: SQLBackend, sidequest_backends: BackendFactory
    ) -> None:
        before = snapshot(backend)
        transaction = sidequest_backends.begin(backend)
        created = backend.create_new_job(job(args=[42]), connection=transaction.connection)
        backend.create_new_jobs([job(args=[n]) for n in range(3)], connection=transaction.connection)
        transaction.rollback()
        assert backend.get_job(created.id) is None
        assert snapshot(backend) == before

    def test_a_batch_refused_for_a_held_digest_leaves_nothing_in_the_transaction(
        self, backend: SQLBackend, sidequest_backends: BackendFactory
    ) -> None:
        """All or nothing inside a caller's transaction too: rows of different shapes (which
        a dialect may insert in several statements) before the one whose digest is held."""
        backend.create_new_job(job(unique_digest="held"))
        before = snapshot(backend)
        transaction = sidequest_backends.begin(backend)
        batch = [
            job(),
            job(retry_delay=5, uniqueness_config=[], available_at=backend.clock()),
            job(queue="mail", unique_digest="held", backoff_strategy="fixed"),
        ]
        with pytest.raises(DuplicatedJobError):
            backend.create_new_jobs(batch, connection=transaction.connection)
        assert len(backend.list_jobs(connection=transaction.connection)) == 1
        transaction.commit()
        assert snapshot(backend) == before

    def test_uncommitted_jobs_are_invisible_to_the_backends_own_reads(
        self, backend: SQLBackend, sidequest_url: str, sidequest_backends: BackendFactory
    ) -> None:
        require_shared_database(backend, sidequest_url)
        transaction = sidequest_backends.begin(backend)
        try:
            created = backend.create_new_job(job(), connection=transaction.connection)
            assert backend.get_job(created.id) is None
            if backend.supports_skip_locked:
                # Elsewhere a write waits for the caller's transaction, which holds the whole database.
                assert backend.claim_pending_job("receipts") == []
        finally:
            transaction.commit()
        assert backend.get_job(created.id) == created

    def test_a_connection_of_the_applications_own_engine_works(
        self, backend: SQLBackend, sidequest_url: str, sidequest_backends: BackendFactory
    ) -> None:
        require_shared_database(backend, sidequest_url)
        transaction = sidequest_backends.begin(backend, own_engine=True)
        created = backend.create_new_job(job(), connection=transaction.connection)
        transaction.commit()
        assert backend.get_job(created.id) == created
        transaction = sidequest_backends.begin(backend, own_engine=True)
        backend.create_new_job(job(), connection=transaction.connection)
        transaction.rollback()
        assert [found.id for found in backend.list_jobs()] == [created.id]


class TestClaimsInTheCallersTransaction:
    def test_a_claim_in_a_rolled_back_transaction_leaves_the_jobs_waiting(
        self, backend: SQLBackend, sidequest_backends: BackendFactory
    ) -> None:
        enqueued = backend.create_new_jobs([job(args=[n]) for n in range(3)])
        transaction = sidequest_backends.begin(backend)
        claimed = backend.claim_pending_job("receipts", 2, connection=transaction.connection)
        assert [found.id for found in claimed] == [found.id for found in enqueued[:2]]
        transaction.rollback()
        assert [backend.get_job(found.id) for found in enqueued] == enqueued
        assert [found.id for found in backend.claim_pending_job("receipts", 5)] == [found.id for found in enqueued]

    def test_claim_work_and_complete_in_one_transaction(
        self, backend: SQLBackend, sidequest_backends: BackendFactory, sidequest_clock: ManualClock
    ) -> None:
        [waiting] = backend.create_new_jobs([job(args=["order-1"])])
        transaction = sidequest_backends.begin(backend)
        connection = transaction.connection
        [claimed] = backend.claim_pending_job("receipts", connection=connection)
        now = sidequest_clock()
        backend.update_job(claimed.id, state="running", attempt=1, attempted_at=now, connection=connection)
        # The application's own write would go here, on the same connection.
        done = backend.update_job(claimed.id, state="completed", completed_at=now, result="sent", connection=connection)
        transaction.commit()
        assert backend.get_job(waiting.id) == done
        assert (done.state, done.attempt, done.result) == ("completed", 1, "sent")


Write = Callable[[Any, Any, dict[str, Any]], Any]

# Every write, as a caller's transaction runs it: (backend, connection, ids of the set-up rows).
WRITES = [
    pytest.param(lambda b, c, ids: b.create_new_queue("mail", connection=c), id="create_new_queue"),
    pytest.param(lambda b, c, ids: b.update_queue(ids["queue"], concurrency=3, connection=c), id="update_queue"),
    pytest.param(lambda b, c, ids: b.create_new_job(job(), connection=c), id="create_new_job"),
    pytest.param(lambda b, c, ids: b.create_new_jobs([job(), job()], connection=c), id="create_new_jobs"),
    pytest.param(
        # Several statements on a dialect with a limit on statements per batch (SQLite's VALUES).
        lambda b, c, ids: b.create_new_jobs([job(args=[n]) for n in range(300)], connection=c),
        id="create_new_jobs-300",
    ),
    pytest.param(lambda b, c, ids: b.claim_pending_job("receipts", 5, connection=c), id="claim_pending_job"),
    pytest.param(lambda b, c, ids: b.update_job(ids["job"], priority=5, connection=c), id="update_job"),
    pytest.param(
        lambda b, c, ids: b.transition_job(ids["job"], expect_state="waiting", priority=5, connection=c),
        id="transition_job",
    ),
    pytest.param(lambda b, c, ids: b.delete_finished_jobs(ids["cutoff"], connection=c), id="delete_finished_jobs"),
    pytest.param(lambda b, c, ids: b.truncate(connection=c), id="truncate"),
]


def set_up_rows(backend: SQLBackend, clock: ManualClock) -> dict[str, Any]:
    """A queue, a waiting job and a finished one: something for every write to change."""
    queue = backend.create_new_queue("receipts")
    waiting = backend.create_new_job(job())
    finished = backend.create_new_job(job())
    backend.update_job(finished.id, state="completed", completed_at=clock())
    clock.advance(seconds=1)
    return {"queue": queue.id, "job": waiting.id, "cutoff": clock()}


@contextmanager
def ended_on_failure(transaction: CallerTransaction) -> Iterator[CallerTransaction]:
    """``transaction``, rolled back if the test fails before it ends: a
    transaction left open would hold up the next test's writes."""
    try:
        yield transaction
    except BaseException:
        with suppress(Exception):
            transaction.rollback()
        raise


class InjectedFault(Exception):
    """What ``failing_at`` raises in place of a statement."""


@contextmanager
def failing_at(connection: Any, statement: int | None) -> Iterator[list[str]]:
    """Record the statements an operation sends on ``connection`` (a sync or
    async one), savepoints aside; the one numbered ``statement`` (from 0), if
    given, raises ``InjectedFault`` instead of reaching the database."""
    sync = getattr(connection, "sync_connection", connection)
    sent: list[str] = []

    def before(conn: Any, cursor: Any, sql: str, parameters: Any, context: Any, executemany: bool) -> None:
        if sql.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            return
        sent.append(sql)
        if len(sent) - 1 == statement:
            raise InjectedFault(sql)

    event.listen(sync, "before_cursor_execute", before)
    try:
        yield sent
    finally:
        event.remove(sync, "before_cursor_execute", before)


class TestEveryWriteJoinsTheTransaction:
    @pytest.mark.parametrize("write", WRITES)
    def test_its_rollback_undoes_it(
        self,
        backend: SQLBackend,
        sidequest_backends: BackendFactory,
        sidequest_clock: ManualClock,
        write: Write,
    ) -> None:
        ids = set_up_rows(backend, sidequest_clock)
        before = snapshot(backend)
        transaction = sidequest_backends.begin(backend)
        write(backend, transaction.connection, ids)
        assert snapshot_in(backend, transaction.connection) != before
        transaction.rollback()
        assert snapshot(backend) == before

    @pytest.mark.parametrize("write", WRITES)
    def test_an_error_at_any_of_its_statements_leaves_the_transaction_as_it_was(
        self,
        backend: SQLBackend,
        sidequest_backends: BackendFactory,
        sidequest_clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch,
        write: Write,
    ) -> None:
        # Work of several statements that fails after it wrote must take back what it wrote.
        monkeypatch.setattr(base, "DELETE_BATCH", 1)  # delete_finished_jobs: a batch per job, then an empty one
        ids = set_up_rows(backend, sidequest_clock)
        with ended_on_failure(sidequest_backends.begin(backend)) as transaction:
            with failing_at(transaction.connection, None) as sent:
                write(backend, transaction.connection, ids)
            transaction.rollback()
        for statement in range(len(sent)):
            with ended_on_failure(sidequest_backends.begin(backend)) as transaction:
                connection = transaction.connection
                backend.create_new_queue("the caller's own", connection=connection)  # the caller's work so far
                before = snapshot_in(backend, connection)
                with failing_at(connection, statement), pytest.raises(InjectedFault):
                    write(backend, connection, ids)
                assert snapshot_in(backend, connection) == before, sent[statement]
                transaction.commit()
            assert snapshot(backend) == before
            backend.truncate()
            ids = set_up_rows(backend, sidequest_clock)

    @pytest.mark.parametrize("write", WRITES)
    def test_the_rollback_of_an_applications_own_engine_undoes_it(
        self,
        backend: SQLBackend,
        sidequest_url: str,
        sidequest_backends: BackendFactory,
        sidequest_clock: ManualClock,
        write: Write,
    ) -> None:
        # The write comes first in the transaction: a driver that begins
        # lazily, at the first write, has not begun it yet.
        require_shared_database(backend, sidequest_url)
        ids = set_up_rows(backend, sidequest_clock)
        before = snapshot(backend)
        with ended_on_failure(sidequest_backends.begin(backend, own_engine=True)) as transaction:
            write(backend, transaction.connection, ids)
            transaction.rollback()
        assert snapshot(backend) == before


def snapshot_in(backend: SQLBackend, connection: Any) -> tuple[list[JobData], list[QueueConfig]]:
    return backend.list_jobs(limit=10_000, connection=connection), backend.list_queues(connection=connection)


class TestErrorsInTheCallersTransaction:
    def test_a_duplicate_leaves_the_transaction_usable(
        self, backend: SQLBackend, sidequest_backends: BackendFactory
    ) -> None:
        transaction = sidequest_backends.begin(backend)
        connection = transaction.connection
        held = backend.create_new_job(job(unique_digest="order-1"), connection=connection)
        with pytest.raises(DuplicatedJobError):
            backend.create_new_job(job(unique_digest="order-1"), connection=connection)
        with pytest.raises(DuplicatedJobError):
            backend.create_new_jobs([job(), job(unique_digest="order-1")], connection=connection)
        other = backend.create_new_job(job(unique_digest="order-2"), connection=connection)
        transaction.commit()
        assert [found.id for found in backend.list_jobs()] == [other.id, held.id]

    def test_a_failed_batch_leaves_the_transaction_as_it_was(
        self, backend: SQLBackend, sidequest_backends: BackendFactory
    ) -> None:
        # Enough jobs for several statements on every built-in dialect (SQLite:
        # 128 rows each; MariaDB: 1,000), the duplicate last: the batch fails
        # after its first statements wrote their rows.
        held = backend.create_new_job(job(unique_digest="order-1"))
        batch = [*(job(args=[n]) for n in range(1_200)), job(unique_digest="order-1")]
        with ended_on_failure(sidequest_backends.begin(backend)) as transaction:
            connection = transaction.connection
            own = backend.create_new_job(job(unique_digest="order-2"), connection=connection)
            before = snapshot_in(backend, connection)
            with pytest.raises(DuplicatedJobError):
                backend.create_new_jobs(batch, connection=connection)
            assert snapshot_in(backend, connection) == before
            transaction.commit()
        assert [found.id for found in backend.list_jobs(limit=10_000)] == [own.id, held.id]

    @pytest.mark.parametrize(
        "conflict",
        [
            pytest.param(lambda b, c, ids: b.create_new_queue("held", connection=c), id="create_new_queue"),
            pytest.param(
                lambda b, c, ids: b.update_queue(ids["queue"], name="held", connection=c), id="update_queue"
            ),
            pytest.param(
                lambda b, c, ids: b.create_new_job(job(unique_digest="held"), connection=c), id="create_new_job"
            ),
            pytest.param(
                lambda b, c, ids: b.create_new_jobs([job(), job(unique_digest="held")], connection=c),
                id="create_new_jobs",
            ),
            pytest.param(
                lambda b, c, ids: b.update_job(ids["job"], state="running", unique_digest="held", connection=c),
                id="update_job",
            ),
            pytest.param(
                lambda b, c, ids: b.transition_job(
                    ids["job"], expect_state="waiting", state="running", unique_digest="held", connection=c
                ),
                id="transition_job",
            ),
        ],
    )
    def test_a_conflict_leaves_the_transaction_as_it_was(
        self, backend: SQLBackend, sidequest_backends: BackendFactory, conflict: Write
    ) -> None:
        backend.create_new_queue("held")
        backend.create_new_job(job(unique_digest="held"))
        ids = {"queue": backend.create_new_queue("receipts").id, "job": backend.create_new_job(job()).id}
        with ended_on_failure(sidequest_backends.begin(backend)) as transaction:
            connection = transaction.connection
            backend.create_new_job(job(args=["the caller's own"]), connection=connection)
            before = snapshot_in(backend, connection)
            with pytest.raises((DuplicatedJobError, DuplicatedQueueError)):
                conflict(backend, connection, ids)
            assert snapshot_in(backend, connection) == before
            transaction.commit()
        assert snapshot(backend) == before

    @pytest.mark.parametrize("connection", ["postgresql://app@db/app", 5, object()], ids=["url", "int", "object"])
    def test_something_other_than_a_connection_is_refused_before_anything_is_written(
        self, backend: SQLBackend, connection: Any
    ) -> None:
        before = snapshot(backend)
        with pytest.raises(TypeError, match="connection"):
            backend.create_new_job(job(), connection=connection)
        with pytest.raises(TypeError, match="connection"):
            backend.claim_pending_job("receipts", connection=connection)
        assert snapshot(backend) == before

    def test_a_connection_to_another_database_is_refused_before_anything_is_sent(
        self, backend: SQLBackend, sidequest_backends: BackendFactory, tmp_path: Path
    ) -> None:
        before = snapshot(backend)
        # Another SQLite file: another database, or another dialect altogether.
        elsewhere = sidequest_backends(f"sqlite:///{tmp_path / 'elsewhere.sqlite'}")
        try:
            elsewhere.migrate()
            transaction = sidequest_backends.begin(elsewhere)
            try:
                with pytest.raises(ValueError, match="connection is to"):
                    backend.create_new_job(job(), connection=transaction.connection)
                with pytest.raises(ValueError, match="connection is to"):
                    backend.list_jobs(connection=transaction.connection)
                assert elsewhere.list_jobs(connection=transaction.connection) == []
            finally:
                transaction.rollback()
        finally:
            elsewhere.close()
        assert snapshot(backend) == before

    def test_a_closed_connection_is_refused(self, backend: SQLBackend, sidequest_backends: BackendFactory) -> None:
        transaction = sidequest_backends.begin(backend)
        transaction.rollback()
        with pytest.raises(ValueError, match="closed"):
            backend.create_new_job(job(), connection=transaction.connection)
        assert backend.list_jobs() == []
