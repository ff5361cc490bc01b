"""Fixtures for the CLI tests: a migrated, empty store on SQLite and on Postgres,
and ``invoke`` to run a command in-process against it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner, Result

import sidequest_sql as sq
from sidequest_sql.cli import cli


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def store(url: str) -> Iterator[sq.SQLBackend]:
    backend = sq.create_backend(url)
    backend.migrate()
    backend.truncate()
    try:
        yield backend
    finally:
        backend.close()


Invoke = Callable[..., Result]


@pytest.fixture
def invoke(url: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run ``sidequest-sql --url URL ARGS...`` in-process; stdout and stderr apart."""
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("SIDEQUEST_DATABASE_URL", raising=False)

    def run(*args: str, input: str | None = None, with_url: bool = True) -> Result:
        argv = ["--url", url, *args] if with_url else list(args)
        result = CliRunner().invoke(cli, argv, input=input, prog_name="sidequest-sql")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    return run


def now() -> datetime:
    return datetime.now(UTC)


def make_job(store: sq.SQLBackend, state: str = "waiting", **changes: Any) -> sq.JobData:
    """A job in ``state``, with the timestamps a worker would have left on it."""
    job = store.create_new_job(
        sq.NewJobData(
            queue=changes.pop("queue", "default"),
            script="jobs.py",
            job_class=changes.pop("job_class", "Echo"),
            args=changes.pop("args", [1, "two"]),
            max_attempts=changes.pop("max_attempts", 5),
        )
    )
    at = now()
    fields: dict[str, Any] = {"state": state}
    if state != "waiting":
        fields |= {"claimed_at": at, "claimed_by": "worker-1"}
    if state in ("running", "completed", "failed"):
        fields |= {"attempt": 1, "attempted_at": at}
    if state == "completed":
        fields |= {"completed_at": at, "result": {"ok": True}}
    if state == "failed":
        fields |= {"failed_at": at, "errors": [{"name": "Boom", "message": "it broke"}]}
    if state == "canceled":
        fields |= {"canceled_at": at}
    fields.update(changes)
    return store.update_job(job.id, **fields)
