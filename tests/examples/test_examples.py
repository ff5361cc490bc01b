"""The README's examples run as written, on SQLite and Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str, cwd: Path, url: str | None = None) -> str:
    environment = {key: value for key, value in os.environ.items() if key != "SIDEQUEST_DATABASE_URL"}
    if url is not None:
        environment["SIDEQUEST_DATABASE_URL"] = url
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env=environment,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_outbox_on_sqlite(tmp_path: Path) -> None:
    out = run_example("outbox.py", f"sqlite:///{tmp_path / 'outbox.sqlite'}", cwd=tmp_path)
    assert "1 order(s) stored; receipt jobs: [[1, 'ada@example.com']]" in out


@pytest.mark.postgres
def test_the_outbox_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    out = run_example("outbox.py", postgres_url, cwd=tmp_path)
    assert "1 order(s) stored; receipt jobs: [[" in out


def check_quickstart(out: str) -> None:
    assert "'completed': 501, 'failed': 1" in out
    assert "retried: job" in out and "completed on attempt 2, after ConnectionError" in out
    assert "$ sidequest-sql worker --queue emails --burst" in out
    assert "521" in out.split("$ sidequest-sql stats")[1]  # the 20 jobs the command ran, counted


def test_the_quickstart_on_the_sqlite_default(tmp_path: Path) -> None:
    check_quickstart(run_example("quickstart.py", cwd=tmp_path))
    assert (tmp_path / "sidequest.sqlite").exists()


@pytest.mark.postgres
def test_the_quickstart_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    check_quickstart(run_example("quickstart.py", cwd=tmp_path, url=postgres_url))
