"""``sidequest-sql worker``: runs jobs to the end of the queues (``--burst``), refuses what it cannot import."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from .conftest import Invoke

import sidequest_sql as sq
from sidequest_sql.cli.worker import status_line
from sidequest_sql.worker import Stats


@pytest.fixture
def jobs_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module of jobs, ``cli_test_jobs``, in a directory the command is run from."""
    (tmp_path / "cli_test_jobs.py").write_text(textwrap.dedent('''
        import sidequest_sql as sq

        def double(n):
            if n < 0:
                raise ValueError("negative")
            return n * 2
    '''))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return "cli_test_jobs"


def test_burst_runs_the_jobs_and_exits_0(store: sq.SQLBackend, invoke: Invoke, jobs_module: str) -> None:
    jobs = [store.create_new_job(sq.NewJobData("emails", jobs_module, "double", args=[n])) for n in (1, 2, -1)]
    store.update_job(jobs[2].id, max_attempts=1)
    result = invoke("worker", "--queue", "emails", "--burst", "--import", jobs_module, "--poll-interval", "0.05")
    assert result.exit_code == 0, result.output
    done = [store.get_job(job.id) for job in jobs]
    assert [(job.state, job.result) for job in done] == [("completed", 2), ("completed", 4), ("failed", None)]  # type: ignore[union-attr]
    assert done[2].errors[-1]["message"] == "negative"  # type: ignore[union-attr]


def test_a_module_that_cannot_be_imported_is_refused(store: sq.SQLBackend, invoke: Invoke) -> None:
    result = invoke("worker", "--queue", "emails", "--import", "no_such_module_here")
    assert result.exit_code == 1
    assert "cannot import 'no_such_module_here'" in result.stderr


def test_a_queue_is_required(store: sq.SQLBackend, invoke: Invoke) -> None:
    assert invoke("worker").exit_code == 2


def test_the_live_line_counts_outcomes_and_the_rate() -> None:
    stats = Stats(started_at=100.0, running=3, completed=50, failed=2, retried=1)
    assert status_line(stats, now=110.0).plain == "running 3  done 50  failed 2  retried 1  jobs/s 5.0"
