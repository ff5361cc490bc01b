"""Worker processes: signals with jobs in flight, and three workers, one killed and replaced."""

from __future__ import annotations

import json
import os
import signal
import time
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sample_jobs
import sqlalchemy as sa
from completions import completions, drop_completion_log, log_completions
from worker_threads import wait_until

import sidequest_sql as sq

HERE = Path(__file__).resolve().parent
ENVIRONMENT = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture
def store(store_url: str) -> Iterator[sq.SQLBackend]:
    with sq.create_backend(store_url) as backend:
        yield backend


def cli_worker(url: str, *options: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "sidequest_sql.cli", "--url", url, "worker", *options]
    return subprocess.Popen(command, cwd=HERE, env=ENVIRONMENT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def worker_process(url: str, log: Path, **settings: Any) -> subprocess.Popen[str]:
    """A worker process (``run_worker.py``) logging every outcome to ``log``."""
    command = [sys.executable, str(HERE / "run_worker.py"), url, json.dumps(settings)]
    with log.open("w") as output:
        return subprocess.Popen(command, cwd=HERE, env=ENVIRONMENT, stdout=output, stderr=subprocess.STDOUT, text=True)


def started(log: Path) -> bool:
    """Whether the worker logging to ``log`` is up, its signal handlers in place."""
    return " on queues " in log.read_text()


def ended(process: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


def states(store: sq.SQLBackend, jobs: list[sq.JobData]) -> list[str]:
    return [store.get_job(job.id).state for job in jobs]  # type: ignore[union-attr]


def test_sigterm_finishes_running_jobs_gives_back_the_rest_and_exits_0(store: sq.SQLBackend, store_url: str) -> None:
    running = [sq.enqueue(store, sample_jobs.Sleeps, 0.5) for _ in range(2)]
    queued = [sq.enqueue(store, sample_jobs.Sleeps, 0) for _ in range(3)]
    process = cli_worker(store_url, "--queue", "default", "--concurrency", "2", "--grace", "20", "--poll-interval", "0.05")
    try:
        wait_until(lambda: states(store, running) == ["running", "running"], what="two jobs running")
        process.send_signal(signal.SIGTERM)
        status, out = ended(process)
    finally:
        process.kill()
    assert status == 0, out
    assert states(store, running) == ["completed", "completed"], out
    assert states(store, queued) == ["waiting"] * 3
    assert all(store.get_job(job.id).claimed_by is None for job in queued)  # type: ignore[union-attr]
    assert "SIGTERM received" in out


def test_a_second_signal_exits_at_once(store: sq.SQLBackend, store_url: str) -> None:
    job = sq.enqueue(store, sample_jobs.Sleeps, 60)
    process = cli_worker(store_url, "--queue", "default", "--grace", "60", "--poll-interval", "0.05")
    try:
        wait_until(lambda: states(store, [job]) == ["running"], what="the job running")
        process.send_signal(signal.SIGTERM)
        # Two signals pending at once are delivered lowest number first (SIGINT
        # before SIGTERM): let the first arrive before sending the second.
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        status, out = ended(process, timeout=20)
    finally:
        process.kill()
    assert status == 128 + signal.SIGINT, out
    assert states(store, [job]) == ["running"]  # left for stale release


def test_three_workers_one_killed_and_replaced_complete_every_job_exactly_once(
    store: sq.SQLBackend, store_url: str, tmp_path: Path
) -> None:
    engine = sa.create_engine(store.url)
    log_completions(engine)

    def enqueue(count: int) -> list[sq.JobData]:
        new = sq.NewJobData("default", "sample_jobs", "Pid", args=[0.1], timeout=1000, max_attempts=5)
        return store.create_new_jobs([new] * count)

    try:
        jobs = enqueue(200)
        settings = {"concurrency": 4, "poll_interval": 0.05, "release_stale_every": 0.25, "max_claimed_ms": 500,
                    "grace": 20}  # fmt: skip
        logs = [tmp_path / f"worker{i}.log" for i in range(4)]
        workers = [worker_process(store_url, log, **settings) for log in logs[:3]]
        try:
            victim = workers[0]
            victim_name = f"sidequest@{os.uname().nodename}-{victim.pid}"

            def held_by_victim() -> list[sq.JobData]:
                return [job for job in store.list_jobs(state=["claimed", "running"], limit=1000)
                        if job.claimed_by == victim_name]  # fmt: skip

            wait_until(lambda: store.count_jobs().completed >= 40, what="work under way")
            # Killed while it holds jobs: on a loaded machine the other two may
            # have left it none at a given moment.
            wait_until(lambda: len(held_by_victim()) > 0, what="the victim holding jobs")
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            held = held_by_victim()
            workers.append(worker_process(store_url, logs[3], **settings))
            wait_until(lambda: started(logs[3]), what="the replacement worker up")
            jobs += enqueue(100)
            wait_until(lambda: store.count_jobs().completed == len(jobs), timeout=120, what="every job completed")
        finally:
            for process in workers[1:]:
                process.send_signal(signal.SIGTERM)
            statuses = [process.wait(60) for process in workers[1:]]
        assert statuses == [0, 0, 0], [log.read_text()[-2000:] for log in logs[1:]]
        assert store.count_jobs().completed == len(jobs)
        assert completions(engine) == Counter(job.id for job in jobs)
        assert held, "the killed worker held no job: nothing was tested"
        for job in held:
            again = store.get_job(job.id)
            assert again is not None and again.state == "completed" and again.result != victim.pid
            if job.state == "running":
                assert again.errors[-1]["name"] == "StaleJobError"
    finally:
        drop_completion_log(engine)
        engine.dispose()
