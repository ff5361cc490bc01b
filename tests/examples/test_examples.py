"""The README's examples run as written, on SQLite and Postgres."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], cwd=cwd, capture_output=True, text=True, timeout=120
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
