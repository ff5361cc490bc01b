"""The installed command as a script runs it: a separate process, real pipes, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


import sidequest_sql as sq

from .conftest import make_job

COMMAND = [sys.executable, "-m", "sidequest_sql.cli"]


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "SIDEQUEST_DATABASE_URL")}
    environment.update(env or {})
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, env=environment, cwd=cwd, timeout=120, check=False
    )


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("sidequest-sql")
    assert script.exists()
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "migrate" in result.stdout


def test_json_through_a_pipe_and_exit_codes(store: sq.SQLBackend, url: str) -> None:
    job = make_job(store, "failed")
    listed = run("jobs", "--url", url, "--state", "failed", "--json")
    assert listed.returncode == 0 and listed.stderr == ""
    assert [j["id"] for j in json.loads(listed.stdout)] == [job.id]

    refusal = run("--url", url, "cancel", str(job.id))
    assert refusal.returncode == 1 and refusal.stdout == ""
    assert refusal.stderr.count("\n") == 1 and "it is failed" in refusal.stderr

    usage = run("--url", url, "jobs", "--limit", "many")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_the_url_comes_from_the_environment(sqlite_url: str) -> None:
    result = run("migrate", "--json", env={"SIDEQUEST_DATABASE_URL": sqlite_url})
    assert result.returncode == 0 and json.loads(result.stdout)["applied"]
    assert Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_the_default_is_the_embedded_sqlite_file(tmp_path: Path) -> None:
    assert run("migrate", "--json", cwd=tmp_path).returncode == 0
    assert (tmp_path / "sidequest.sqlite").exists()


def test_colour_only_when_asked_and_never_with_no_color(sqlite_url: str) -> None:
    with sq.create_backend(sqlite_url) as backend:
        backend.migrate()
        make_job(backend, "completed")
    plain = run("--url", sqlite_url, "stats")
    assert plain.returncode == 0 and "\x1b[" not in plain.stdout
    forced = run("--url", sqlite_url, "stats", env={"FORCE_COLOR": "1"})
    assert "\x1b[32m" in forced.stdout
    no_color = run("--url", sqlite_url, "stats", env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert no_color.returncode == 0 and "\x1b[32m" not in no_color.stdout and "completed 1" in no_color.stdout


def test_a_failed_connection_is_one_sentence_without_the_password() -> None:
    result = run("--url", "postgresql://ops:hunter2secret@127.0.0.1:1/app", "stale", "--release")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: could not connect to the postgresql database app at 127.0.0.1:1")
    assert result.stderr.count("\n") == 1
    assert "hunter2secret" not in result.stderr and "ops" not in result.stderr
    assert "Traceback" not in result.stderr


def test_contract_runs_the_shipped_suite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'contract.sqlite'}"
    collected = run("contract", "--yes", url, "--collect-only", "-q", "-p", "no:cacheprovider")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "test_" in collected.stdout
