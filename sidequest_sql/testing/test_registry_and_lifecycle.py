"""Entry points and lifecycle: choosing a dialect by URL, registering one, closing, migrating."""

from __future__ import annotations

import os
import socket
import sys
import uuid

import pytest
from sqlalchemy.engine import URL, make_url

import sidequest_sql
import sidequest_sql.base
from sidequest_sql import (
    DuplicatedJobError,
    DuplicatedQueueError,
    JobNotFoundError,
    NewJobData,
    QueueNotFoundError,
    SidequestError,
    UnsupportedDatabaseError,
    register_dialect,
)
from sidequest_sql.base import SQLBackend
from sidequest_sql.testing.backends import BackendFactory
from sidequest_sql.testing.clock import ManualClock
from sidequest_sql.testing.fixtures import backend  # noqa: F401  (the suite's fixture)

SECRET = "pw-N0t-F0r-Your-Eyes"


def new_job(queue: str = "default") -> NewJobData:
    return NewJobData(queue=queue, script="jobs.js", job_class="Echo")


def redirected(dialect: type[SQLBackend], target: URL) -> type[SQLBackend]:
    """A third-party dialect in miniature: a subclass serving its own scheme on ``target``."""

    class Redirected(dialect):  # type: ignore[valid-type,misc]
        @classmethod
        def engine_url(cls, url: URL) -> URL:
            return dialect.engine_url(target)

    return Redirected


def unreachable(url: str) -> URL:
    """``url`` moved to a database that does not exist, under a directory that does not either."""
    return make_url(url).set(database=f"/sidequest-missing-{uuid.uuid4().hex}/missing.db")


class TestPublicNames:
    def test_sql_backend_is_exported_from_the_package(self) -> None:
        assert sidequest_sql.SQLBackend is sidequest_sql.base.SQLBackend

    def test_errors_form_one_tree(self) -> None:
        for error in (
            DuplicatedJobError,
            DuplicatedQueueError,
            JobNotFoundError,
            QueueNotFoundError,
            UnsupportedDatabaseError,
        ):
            assert issubclass(error, SidequestError)
        assert issubclass(JobNotFoundError, LookupError)
        assert issubclass(QueueNotFoundError, LookupError)
        assert str(DuplicatedJobError())


class TestCreateBackend:
    def test_the_url_scheme_selects_the_dialect(
        self, backend: SQLBackend, sidequest_url: str, sidequest_backends: BackendFactory
    ) -> None:
        with sidequest_backends(sidequest_url) as made:
            assert sidequest_backends.dialect_of(made) is sidequest_backends.dialect_of(backend)
            assert issubclass(sidequest_backends.dialect_of(made), SQLBackend)

    def test_creating_does_not_connect(self, sidequest_url: str, sidequest_backends: BackendFactory) -> None:
        made = sidequest_backends(unreachable(sidequest_url))
        try:
            with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the driver raises
                made.get_queue("default")
        finally:
            made.close()

    def test_without_url_the_environment_variable_is_used(
        self,
        backend: SQLBackend,
        sidequest_url: str,
        sidequest_clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch,
        sidequest_backends: BackendFactory,
    ) -> None:
        monkeypatch.setenv("SIDEQUEST_DATABASE_URL", sidequest_url)
        queue = backend.create_new_queue("shared")
        with sidequest_backends(clock=sidequest_clock) as made:
            assert sidequest_backends.dialect_of(made) is sidequest_backends.dialect_of(backend)
            assert made.get_queue("shared") == queue

    def test_two_backends_on_one_url_share_the_database(
        self, backend: SQLBackend, sidequest_url: str, sidequest_clock: ManualClock, sidequest_backends: BackendFactory
    ) -> None:
        with sidequest_backends(sidequest_url, clock=sidequest_clock) as other:
            job = other.create_new_job(new_job())
            assert backend.get_job(job.id) == job
            [claimed] = backend.claim_pending_job("default")
            assert other.get_job(job.id) == claimed

    def test_worker_name_is_what_claimed_by_records(
        self, backend: SQLBackend, sidequest_url: str, sidequest_clock: ManualClock, sidequest_backends: BackendFactory
    ) -> None:
        backend.create_new_job(new_job())
        with sidequest_backends(sidequest_url, clock=sidequest_clock, worker_name="worker-7") as made:
            [claimed] = made.claim_pending_job("default")
        assert claimed.claimed_by == "worker-7"

    def test_default_worker_name_is_host_and_pid(
        self, backend: SQLBackend, sidequest_url: str, sidequest_clock: ManualClock, sidequest_backends: BackendFactory
    ) -> None:
        backend.create_new_job(new_job())
        with sidequest_backends(sidequest_url, clock=sidequest_clock) as made:
            [claimed] = made.claim_pending_job("default")
        assert claimed.claimed_by == f"sidequest@{socket.gethostname()}-{os.getpid()}"

    def test_the_clock_is_the_only_now(
        self, backend: SQLBackend, sidequest_url: str, sidequest_backends: BackendFactory
    ) -> None:
        own = ManualClock(ManualClock()().replace(year=2041))
        with sidequest_backends(sidequest_url, clock=own) as made:
            job = made.create_new_job(new_job())
            assert job.inserted_at == job.available_at == own()
            assert backend.claim_pending_job("default") == []
            own.advance(seconds=1)
            [claimed] = made.claim_pending_job("default")
        assert claimed.claimed_at == own()

    def test_a_clock_that_is_not_callable_is_refused(
        self, sidequest_url: str, sidequest_backends: BackendFactory
    ) -> None:
        with pytest.raises(TypeError, match="clock"):
            sidequest_backends(sidequest_url, clock=ManualClock()())  # type: ignore[arg-type]

    def test_engine_options_reach_sqlalchemy(self, sidequest_url: str, sidequest_backends: BackendFactory) -> None:
        with sidequest_backends(sidequest_url, echo=True) as made:
            assert made.engine.echo is True

    def test_schema_is_refused_where_the_dialect_has_none(
        self, backend: SQLBackend, sidequest_url: str, sidequest_backends: BackendFactory
    ) -> None:
        if sidequest_backends.dialect_of(backend).supports_schemas:
            pytest.skip("this dialect supports schemas")
        with pytest.raises(ValueError, match="schema"):
            sidequest_backends(sidequest_url, schema="elsewhere")


class TestRegisterDialect:
    def test_a_registered_class_serves_its_scheme(
        self, backend: SQLBackend, sidequest_url: str, sidequest_clock: ManualClock, sidequest_backends: BackendFactory
    ) -> None:
        dialect = redirected(sidequest_backends.dialect_of(backend), make_url(sidequest_url))
        register_dialect("contractclass", dialect)
        queue = backend.create_new_queue("seen-through-the-registry")
        with sidequest_backends("contractclass://somewhere/db", clock=sidequest_clock) as made:
            assert sidequest_backends.dialect_of(made) is dialect
            assert made.get_queue("seen-through-the-registry") == queue

    def test_a_class_named_as_module_and_class_is_imported_when_used(
        self,
        backend: SQLBackend,
        sidequest_url: str,
        sidequest_clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch,
        sidequest_backends: BackendFactory,
    ) -> None:
        register_dialect("contractnamed", f"{__name__}:NamedLater")
        dialect = redirected(sidequest_backends.dialect_of(backend), make_url(sidequest_url))
        # Registered before the name exists: it is looked up only when a URL needs it.
        monkeypatch.setattr(sys.modules[__name__], "NamedLater", dialect, raising=False)
        with sidequest_backends("contractnamed://somewhere/db", clock=sidequest_clock) as made:
            assert sidequest_backends.dialect_of(made) is dialect
            assert made.list_queues() == []

    def test_a_missing_module_fails_only_when_used(self, sidequest_backends: BackendFactory) -> None:
        register_dialect("contractmissing", "sidequest_sql_no_such_module:Backend")
        with pytest.raises(ImportError):
            sidequest_backends("contractmissing://somewhere/db")

    def test_an_unknown_scheme_names_the_known_ones(self, sidequest_backends: BackendFactory) -> None:
        register_dialect("contractknown", "sidequest_sql_no_such_module:Backend")
        with pytest.raises(UnsupportedDatabaseError) as raised:
            sidequest_backends("nosuchdatabase://user@host/db")
        message = str(raised.value)
        assert "nosuchdatabase" in message
        for scheme in ("postgresql", "sqlite", "contractknown"):
            assert scheme in message
        assert isinstance(raised.value, SidequestError)


class TestSecretsStayHidden:
    def test_repr_and_errors_never_show_the_password(
        self, sidequest_url: str, sidequest_backends: BackendFactory
    ) -> None:
        url = unreachable(sidequest_url).set(username="someone", password=SECRET)
        try:
            made = sidequest_backends(url)
        except Exception as exc:  # noqa: BLE001 - a dialect may refuse a URL with a password
            assert SECRET not in str(exc) and SECRET not in repr(exc)
            return
        try:
            assert SECRET not in repr(made) and SECRET not in str(made)
            with pytest.raises(Exception) as raised:  # noqa: PT011 - whatever the driver raises
                made.get_queue("default")
            assert SECRET not in str(raised.value) and SECRET not in repr(raised.value)
        finally:
            made.close()

    def test_an_unknown_scheme_does_not_repeat_the_password(self, sidequest_backends: BackendFactory) -> None:
        with pytest.raises(UnsupportedDatabaseError) as raised:
            sidequest_backends(f"nosuchdatabase://user:{SECRET}@host/db")
        assert SECRET not in str(raised.value)

    def test_a_malformed_url_does_not_repeat_itself(self, sidequest_backends: BackendFactory) -> None:
        with pytest.raises(ValueError) as raised:
            sidequest_backends(f"not a url {SECRET}")
        assert SECRET not in str(raised.value)


class TestContextManager:
    def test_with_returns_the_backend_and_closes_it(
        self, backend: SQLBackend, sidequest_url: str, sidequest_clock: ManualClock, sidequest_backends: BackendFactory
    ) -> None:
        made = sidequest_backends(sidequest_url, clock=sidequest_clock)
        with made as entered:
            assert entered is made
            entered.list_jobs()
            assert made.engine.pool.checkedin() >= 1
        assert made.engine.pool.checkedin() == 0

    def test_an_error_inside_still_closes_and_propagates(
        self, backend: SQLBackend, sidequest_url: str, sidequest_backends: BackendFactory
    ) -> None:
        made = sidequest_backends(sidequest_url)
        with pytest.raises(RuntimeError, match="inside"), made:
            made.list_jobs()
            raise RuntimeError("inside")
        assert made.engine.pool.checkedin() == 0

    def test_close_disposes_connections(self, backend: SQLBackend) -> None:
        backend.list_jobs()
        backend.close()
        assert backend.engine.pool.checkedin() == 0


class TestMigrations:
    def test_migrate_is_idempotent(self, backend: SQLBackend) -> None:
        assert backend.migrate() == []
        assert backend.migrate() == []

    def test_rollback_then_migrate_reapplies_the_newest_revision(self, backend: SQLBackend) -> None:
        newest = backend.rollback_migration()
        assert isinstance(newest, str)
        assert backend.migrate() == [newest]
        assert backend.migrate() == []

    def test_rollback_to_nothing_then_migrate_applies_every_revision_in_order(self, backend: SQLBackend) -> None:
        rolled_back: list[str] = []
        while (revision := backend.rollback_migration()) is not None:
            rolled_back.append(revision)
            assert len(rolled_back) < 1000
        assert rolled_back
        assert len(set(rolled_back)) == len(rolled_back)
        assert backend.rollback_migration() is None
        assert backend.migrate() == list(reversed(rolled_back))
        assert backend.migrate() == []

    def test_the_store_works_after_a_round_trip(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        while backend.rollback_migration() is not None:
            pass
        backend.migrate()
        backend.create_new_queue("q")
        job = backend.create_new_job(NewJobData(queue="q", script="s.js", job_class="C", unique_digest="d"))
        with pytest.raises(DuplicatedJobError):
            backend.create_new_job(NewJobData(queue="q", script="s.js", job_class="C", unique_digest="d"))
        with pytest.raises(DuplicatedQueueError):
            backend.create_new_queue("q")
        [claimed] = backend.claim_pending_job("q")
        assert (claimed.id, claimed.claimed_at) == (job.id, sidequest_clock())
