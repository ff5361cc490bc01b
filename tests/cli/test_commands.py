"""Each command run in-process against SQLite and Postgres: output, --json, refusals, exit codes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import sidequest_sql as sq
from sidequest_sql.cli import cleanup

from .conftest import Invoke, make_job, now

COMMANDS = [
    [], ["migrate"], ["rollback"], ["queues"], ["queues", "set"], ["jobs"], ["job"], ["rerun"], ["cancel"],
    ["stats"], ["stale"], ["cleanup"], ["contract"], ["worker"],
]


def parsed(result) -> object:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def refused(result, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 1, result.stdout
    assert result.stdout == ""
    message = result.stderr.strip()
    assert message.startswith("Error: ") and "\n" not in message, message
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in message


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_every_command_has_help(invoke: Invoke, command: list[str]) -> None:
    result = invoke(*command, "--help", with_url=False)
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: sidequest-sql")


# -- migrate / rollback ------------------------------------------------------------------


def test_migrate_and_rollback_print_the_revisions(store: sq.SQLBackend, invoke: Invoke) -> None:
    assert parsed(invoke("migrate", "--json")) == {"applied": []}
    assert "Nothing to apply" in invoke("migrate").stdout
    newest = parsed(invoke("rollback", "--yes", "--json"))["rolled_back"]  # type: ignore[index]
    assert newest
    result = invoke("migrate")
    assert result.exit_code == 0 and newest in result.stdout
    rolled = invoke("rollback", "--yes")
    assert f"Rolled back revision {newest}." in rolled.stdout
    assert parsed(invoke("migrate", "--json")) == {"applied": [newest]}


def test_commands_on_an_unmigrated_database_say_to_migrate(sqlite_url: str, invoke: Invoke) -> None:
    result = invoke("--url", sqlite_url, "jobs", with_url=False)
    refused(result, "has no sidequest tables", "sidequest-sql migrate")


# -- queues ----------------------------------------------------------------------------


def test_queues_lists_settings_and_counts(store: sq.SQLBackend, invoke: Invoke) -> None:
    store.create_new_queue("emails", concurrency=3, priority=5)
    make_job(store, "completed", queue="emails")
    make_job(store, "waiting", queue="emails")
    make_job(store, "failed", queue="reports")
    table = invoke("queues")
    assert table.exit_code == 0
    assert "emails" in table.stdout and "reports" in table.stdout and "active" in table.stdout
    data = parsed(invoke("queues", "--json"))
    assert data[0] == {  # type: ignore[index]
        "name": "emails", "id": data[0]["id"], "state": "active", "concurrency": 3, "priority": 5,  # type: ignore[index]
        "counts": {"total": 2, "waiting": 1, "claimed": 0, "running": 0, "completed": 1, "failed": 0, "canceled": 0},
    }
    assert data[1]["name"] == "reports" and data[1]["state"] is None  # type: ignore[index]
    assert data[1]["counts"]["failed"] == 1  # type: ignore[index]


def test_queues_set_changes_settings(store: sq.SQLBackend, invoke: Invoke) -> None:
    store.create_new_queue("emails")
    data = parsed(invoke("queues", "set", "emails", "--concurrency", "7", "--priority", "-2", "--pause", "--json"))
    assert data["concurrency"] == 7 and data["priority"] == -2 and data["state"] == "paused"  # type: ignore[index]
    result = invoke("queues", "set", "emails", "--resume")
    assert result.exit_code == 0 and "active" in result.stdout
    assert store.get_queue("emails").state == "active"  # type: ignore[union-attr]


def test_queues_set_gives_settings_to_a_queue_only_jobs_use(store: sq.SQLBackend, invoke: Invoke) -> None:
    make_job(store, queue="adhoc")
    result = invoke("queues", "set", "adhoc", "--pause")
    assert result.exit_code == 0 and "Created settings for queue adhoc" in result.stdout
    assert store.get_queue("adhoc").state == "paused"  # type: ignore[union-attr]


def test_queues_set_refuses_an_unknown_queue_and_bad_usage(store: sq.SQLBackend, invoke: Invoke) -> None:
    refused(invoke("queues", "set", "nowhere", "--pause"), "nowhere")
    store.create_new_queue("emails")
    assert invoke("queues", "set", "emails").exit_code == 2
    assert invoke("queues", "set", "emails", "--concurrency", "0").exit_code == 2
    assert invoke("queues", "set", "emails", "--priority", "high").exit_code == 2


def test_queues_on_an_empty_store(store: sq.SQLBackend, invoke: Invoke) -> None:
    assert "No queues yet." in invoke("queues").stdout
    assert parsed(invoke("queues", "--json")) == []


# -- jobs / job ---------------------------------------------------------------------------


def test_jobs_lists_newest_first_with_filters(store: sq.SQLBackend, invoke: Invoke) -> None:
    a = make_job(store, "completed", queue="emails", job_class="SendEmail")
    b = make_job(store, "failed", queue="emails", job_class="SendEmail")
    c = make_job(store, "waiting", queue="reports", job_class="BuildReport")
    assert [j["id"] for j in parsed(invoke("jobs", "--json"))] == [c.id, b.id, a.id]  # type: ignore[index, union-attr]
    assert [j["id"] for j in parsed(invoke("jobs", "--queue", "emails", "--json"))] == [b.id, a.id]  # type: ignore[union-attr, index]
    assert [j["id"] for j in parsed(invoke("jobs", "--state", "failed", "--state", "waiting", "--json"))] == [c.id, b.id]  # type: ignore[union-attr, index]
    assert [j["id"] for j in parsed(invoke("jobs", "--class", "Build%", "--json"))] == [c.id]  # type: ignore[union-attr, index]
    assert [j["id"] for j in parsed(invoke("jobs", "--limit", "1", "--offset", "1", "--json"))] == [b.id]  # type: ignore[union-attr, index]
    first = parsed(invoke("jobs", "--limit", "1", "--json"))[0]  # type: ignore[index]
    assert first["job_class"] == "BuildReport" and first["args"] == [1, "two"]  # type: ignore[index]
    table = invoke("jobs")
    assert table.exit_code == 0
    assert str(a.id) in table.stdout and "it broke" in table.stdout and '[1,"two"]' in table.stdout
    more = invoke("jobs", "--limit", "2")
    assert "--offset 2" in more.stdout


def test_jobs_bad_usage(store: sq.SQLBackend, invoke: Invoke) -> None:
    assert invoke("jobs", "--state", "lost").exit_code == 2
    assert invoke("jobs", "--limit", "-1").exit_code == 2
    assert invoke("jobs", "--offset", "x").exit_code == 2
    assert invoke("jobs", "--queue", "trailing\\").exit_code == 2
    assert invoke("jobs", "--no-such-option").exit_code == 2
    assert invoke("no-such-command").exit_code == 2
    assert "No jobs match." in invoke("jobs").stdout


def test_job_shows_everything(store: sq.SQLBackend, invoke: Invoke) -> None:
    job = make_job(store, "failed", args={"to": "ada@example.com"})
    result = invoke("job", str(job.id))
    assert result.exit_code == 0
    for text in ("ada@example.com", "it broke", "failed_at", "claimed_by", "worker-1", "args", "errors"):
        assert text in result.stdout
    data = parsed(invoke("job", str(job.id), "--json"))
    assert data["args"] == {"to": "ada@example.com"} and data["state"] == "failed"  # type: ignore[index]
    assert data["failed_at"] == job.failed_at.isoformat()  # type: ignore[index, union-attr]


def test_job_missing_or_malformed(store: sq.SQLBackend, invoke: Invoke) -> None:
    refused(invoke("job", "424242"), "no job has id 424242")
    refused(invoke("job", "424242", "--json"), "424242")
    assert invoke("job", "abc").exit_code == 2
    assert invoke("job", "0").exit_code == 2
    assert invoke("job").exit_code == 2


# -- rerun / cancel ----------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["completed", "failed", "canceled"])
def test_rerun(store: sq.SQLBackend, invoke: Invoke, state: str) -> None:
    job = make_job(store, state, attempt=5, max_attempts=5)
    before = now()
    data = parsed(invoke("rerun", str(job.id), "--json"))
    assert data["state"] == "waiting" and data["max_attempts"] == 6  # type: ignore[index]
    stored = store.get_job(job.id)
    assert stored.state == "waiting" and stored.available_at >= before - timedelta(seconds=1)  # type: ignore[union-attr]
    assert stored.available_at <= now()  # type: ignore[union-attr]


def test_rerun_keeps_max_attempts_when_some_are_left(store: sq.SQLBackend, invoke: Invoke) -> None:
    job = make_job(store, "failed", attempt=1, max_attempts=5)
    result = invoke("rerun", str(job.id))
    assert result.exit_code == 0 and "→" in result.stdout and "waiting" in result.stdout
    assert store.get_job(job.id).max_attempts == 5  # type: ignore[union-attr]


@pytest.mark.parametrize("state", ["waiting", "claimed", "running"])
def test_rerun_refuses_unfinished_jobs(store: sq.SQLBackend, invoke: Invoke, state: str) -> None:
    job = make_job(store, state)
    refused(invoke("rerun", str(job.id)), f"it is {state}", "only a completed, failed or canceled job")
    assert store.get_job(job.id).state == state  # type: ignore[union-attr]


@pytest.mark.parametrize("state", ["waiting", "running"])
def test_cancel(store: sq.SQLBackend, invoke: Invoke, state: str) -> None:
    job = make_job(store, state)
    data = parsed(invoke("cancel", str(job.id), "--json"))
    assert data["state"] == "canceled" and data["canceled_at"] is not None  # type: ignore[index]
    assert store.get_job(job.id).canceled_at is not None  # type: ignore[union-attr]


@pytest.mark.parametrize("state", ["claimed", "completed", "failed", "canceled"])
def test_cancel_refuses_other_states(store: sq.SQLBackend, invoke: Invoke, state: str) -> None:
    job = make_job(store, state)
    refused(invoke("cancel", str(job.id)), f"it is {state}", "only a waiting or running job")
    assert store.get_job(job.id).state == state  # type: ignore[union-attr]


def test_rerun_and_cancel_of_a_missing_job(store: sq.SQLBackend, invoke: Invoke) -> None:
    refused(invoke("rerun", "999999"), "no job has id 999999")
    refused(invoke("cancel", "999999"), "no job has id 999999")


# -- stats ----------------------------------------------------------------------------------


def test_stats(store: sq.SQLBackend, invoke: Invoke) -> None:
    for state in ("completed", "completed", "failed", "waiting"):
        make_job(store, state, queue="emails")
    make_job(store, "canceled", queue="reports")
    data = parsed(invoke("stats", "--json"))
    assert data["total"]["total"] == 5 and data["total"]["completed"] == 2  # type: ignore[index]
    assert data["queues"]["reports"]["canceled"] == 1  # type: ignore[index]
    assert data["over"] == "12h" and len(data["over_time"]) == 12  # type: ignore[index]
    assert data["over_time"][-1]["completed"] == 2  # type: ignore[index]
    assert len(parsed(invoke("stats", "--over", "30m", "--json"))["over_time"]) == 30  # type: ignore[index]
    result = invoke("stats", "--over", "6h")
    assert result.exit_code == 0
    for text in ("Jobs per state", "all queues", "Jobs over the last 6 hours", "└", "completed 2", "failed 1"):
        assert text in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())


@pytest.mark.parametrize("over", ["12", "0h", "12x", "10001d", "h"])
def test_stats_refuses_a_bad_range(store: sq.SQLBackend, invoke: Invoke, over: str) -> None:
    result = invoke("stats", "--over", over)
    assert result.exit_code == 2 and "not a time range" in result.stderr


# -- stale -----------------------------------------------------------------------------------


def test_stale_lists_and_releases(store: sq.SQLBackend, invoke: Invoke) -> None:
    long_ago = now() - timedelta(hours=2)
    claimed = make_job(store, "claimed", claimed_at=long_ago)
    retried = make_job(store, "running", attempted_at=long_ago, attempt=1, max_attempts=3)
    exhausted = make_job(store, "running", attempted_at=long_ago, attempt=3, max_attempts=3)
    fresh = make_job(store, "running")
    listed = parsed(invoke("stale", "--json"))
    assert sorted(j["id"] for j in listed) == sorted([claimed.id, retried.id, exhausted.id])  # type: ignore[union-attr, index]
    assert str(claimed.id) in invoke("stale").stdout

    before = now()
    data = parsed(invoke("stale", "--release", "--json"))
    states = {j["id"]: j["state"] for j in data["released"]}  # type: ignore[index]
    assert states == {claimed.id: "waiting", retried.id: "waiting", exhausted.id: "failed"}
    assert data["skipped"] == []  # type: ignore[index]
    again = store.get_job(retried.id)
    assert again.available_at > before and again.attempt == 1  # type: ignore[union-attr]
    assert again.errors[-1]["message"] == "Stale job released for retry"  # type: ignore[union-attr, index]
    assert store.get_job(exhausted.id).failed_at is not None  # type: ignore[union-attr]
    assert store.get_job(claimed.id).attempt == 0  # type: ignore[union-attr]
    assert store.get_job(fresh.id).state == "running"  # type: ignore[union-attr]
    assert "No stale jobs." in invoke("stale", "--release").stdout


def test_stale_release_prints_each_change(store: sq.SQLBackend, invoke: Invoke) -> None:
    job = make_job(store, "claimed")
    result = invoke("stale", "--max-claimed-ms", "-1", "--release")
    assert result.exit_code == 0 and f"Job {job.id}: claimed → waiting." in result.stdout
    assert invoke("stale", "--max-claimed-ms", "soon").exit_code == 2


# -- a job that changes under a command ----------------------------------------------------


def change_after(monkeypatch: pytest.MonkeyPatch, read: str, change: Callable[[], object]) -> None:
    """Run ``change()`` once, right after the command's first ``read`` (a backend
    method): the job changes between the read a command decides on and its write,
    as when a worker or another operator gets there first."""
    original = getattr(sq.SQLBackend, read)
    pending = [change]

    def read_then_change(self: sq.SQLBackend, *args: Any, **kwargs: Any) -> Any:
        found = original(self, *args, **kwargs)
        if pending:
            pending.pop()()
        return found

    monkeypatch.setattr(sq.SQLBackend, read, read_then_change)


def changed_under(result, *words: str) -> None:  # type: ignore[no-untyped-def]
    """Exit 1 with one sentence on stderr saying the job changed under the command."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    message = result.stderr.strip()
    assert message.startswith("Error: ") and "\n" not in message and message.endswith("."), message
    for word in words:
        assert word in message, message


def test_rerun_of_a_job_a_worker_took_meanwhile_leaves_it(
    store: sq.SQLBackend, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(store, "failed", attempt=5, max_attempts=5)
    taken = {"state": "running", "attempt": 6, "max_attempts": 6, "attempted_at": now(), "failed_at": None}
    change_after(monkeypatch, "get_job", lambda: store.update_job(job.id, **taken))
    result = invoke("rerun", str(job.id))
    changed_under(result, f"job {job.id} changed while it was being rerun", "it is now running, at attempt 6",
                  "(it was failed, at attempt 5)", "left as it is")  # fmt: skip
    assert result.stdout == ""
    stored = store.get_job(job.id)
    assert (stored.state, stored.attempt, stored.max_attempts) == ("running", 6, 6)  # type: ignore[union-attr]


def test_rerun_of_a_job_that_ran_and_failed_again_meanwhile_leaves_it(
    store: sq.SQLBackend, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same state, another attempt: the attempts the rerun would allow were worked out from the old one."""
    job = make_job(store, "failed", attempt=3, max_attempts=3)
    change_after(monkeypatch, "get_job", lambda: store.update_job(job.id, attempt=4, max_attempts=4))
    changed_under(invoke("rerun", str(job.id), "--json"), "it is now failed, at attempt 4 (it was failed, at attempt 3)")
    stored = store.get_job(job.id)
    assert (stored.state, stored.max_attempts) == ("failed", 4)  # type: ignore[union-attr]


def test_cancel_of_a_job_that_completed_meanwhile_leaves_it(
    store: sq.SQLBackend, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(store, "running")
    change_after(monkeypatch, "get_job", lambda: store.update_job(job.id, state="completed", completed_at=now()))
    result = invoke("cancel", str(job.id), "--json")
    changed_under(result, f"job {job.id} changed while it was being canceled: it is now completed (it was running)")
    assert result.stdout == ""
    stored = store.get_job(job.id)
    assert (stored.state, stored.canceled_at) == ("completed", None)  # type: ignore[union-attr]


def test_cancel_of_a_job_deleted_meanwhile_says_it_is_gone(
    store: sq.SQLBackend, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(store, "waiting")
    change_after(monkeypatch, "get_job", store.truncate)
    refused(invoke("cancel", str(job.id)), f"no job has id {job.id}")


def test_stale_release_leaves_jobs_that_moved_on_and_releases_the_rest(
    store: sq.SQLBackend, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_ago = now() - timedelta(hours=2)
    finished = make_job(store, "running", attempted_at=long_ago, attempt=1, max_attempts=3)
    taken_over = make_job(store, "claimed", claimed_at=long_ago)
    released = make_job(store, "claimed", claimed_at=long_ago)

    def meanwhile() -> None:
        store.update_job(finished.id, state="completed", completed_at=now(), result="done")
        store.update_job(taken_over.id, claimed_by="worker-2", claimed_at=now())

    change_after(monkeypatch, "stale_jobs", meanwhile)
    result = invoke("stale", "--release")
    changed_under(
        result,
        "2 jobs changed while they were being released, so they were left as they are: ",
        f"job {finished.id} is now completed (it was running)",
        f"job {taken_over.id} is now claimed, claimed by worker-2 (it was claimed, claimed by worker-1)",
    )
    assert result.stdout.strip() == f"Job {released.id}: claimed → waiting."
    assert store.get_job(finished.id).result == "done"  # type: ignore[union-attr]
    assert store.get_job(taken_over.id).claimed_by == "worker-2"  # type: ignore[union-attr]
    assert store.get_job(released.id).state == "waiting"  # type: ignore[union-attr]


def test_stale_release_with_json_lists_what_it_skipped(
    store: sq.SQLBackend, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(store, "running", attempted_at=now() - timedelta(hours=2))
    change_after(monkeypatch, "stale_jobs", lambda: store.update_job(job.id, state="failed", failed_at=now()))
    result = invoke("stale", "--release", "--json")
    changed_under(result, f"job {job.id} changed while it was being released: it is now failed (it was running)")
    assert json.loads(result.stdout) == {"released": [], "skipped": [job.id]}
    assert store.get_job(job.id).state == "failed"  # type: ignore[union-attr]


# -- cleanup ------------------------------------------------------------------------------------


def test_cleanup_deletes_only_old_finished_jobs(store: sq.SQLBackend, invoke: Invoke) -> None:
    old = now() - timedelta(days=40)
    gone = [
        make_job(store, "completed", completed_at=old),
        make_job(store, "failed", failed_at=old),
        make_job(store, "canceled", canceled_at=old),
    ]
    kept = [
        make_job(store, "completed"),
        make_job(store, "waiting", inserted_at=old),
        make_job(store, "running", attempted_at=old),
    ]
    assert parsed(invoke("cleanup", "--older-than", "30d", "--dry-run", "--json"))["would_delete"] == 3  # type: ignore[index]
    data = parsed(invoke("cleanup", "--older-than", "30d", "--json"))
    assert data["deleted"] == 3  # type: ignore[index]
    assert all(store.get_job(job.id) is None for job in gone)
    assert all(store.get_job(job.id) is not None for job in kept)
    result = invoke("cleanup", "--older-than", "30d", "--yes")
    assert result.exit_code == 0 and "Deleted 0 jobs" in result.stdout


def test_cleanup_in_batches_deletes_everything_in_bounded_steps(store: sq.SQLBackend) -> None:
    start = now() - timedelta(days=100)
    for day in range(60):
        for _ in range(day % 4):
            make_job(store, "completed", completed_at=start + timedelta(days=day, minutes=day))
    recent = make_job(store, "completed")
    cutoff = now() - timedelta(days=1)
    steps = list(cleanup.batches(store, cutoff, 7))
    assert sum(steps) == sum(day % 4 for day in range(60))
    assert max(steps) <= 7 and len([n for n in steps if n]) >= 12
    assert [job.id for job in store.list_jobs()] == [recent.id]


@pytest.mark.parametrize("age", ["30", "30x", "d", "-1d", "1.5d", " 30d", "30 d"])
def test_cleanup_refuses_a_bad_duration(store: sq.SQLBackend, invoke: Invoke, age: str) -> None:
    result = invoke("cleanup", "--older-than", age, "--yes")
    assert result.exit_code == 2 and "not a duration" in result.stderr


def test_cleanup_needs_older_than(store: sq.SQLBackend, invoke: Invoke) -> None:
    assert invoke("cleanup", "--yes").exit_code == 2


# -- output -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["queues"], ["jobs"], ["job", "{id}"], ["stats"], ["stale", "--max-claimed-ms", "-1"], ["migrate"]],
    ids=lambda c: c[0],
)
def test_no_escape_codes_off_a_terminal(store: sq.SQLBackend, invoke: Invoke, command: list[str]) -> None:
    job = make_job(store, "failed")
    make_job(store, "claimed")
    result = invoke(*[part.format(id=job.id) for part in command])
    assert result.exit_code == 0
    assert "\x1b[" not in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())


# -- urls, connections, the contract suite ------------------------------------------------------------


def test_bad_urls_are_bad_usage(invoke: Invoke) -> None:
    unknown = invoke("--url", "nosuchdb://u:pw@h/x", "jobs", with_url=False)
    assert unknown.exit_code == 2 and "no dialect is registered" in unknown.stderr
    malformed = invoke("--url", "::not a url::", "jobs", with_url=False)
    assert malformed.exit_code == 2 and "not a database URL" in malformed.stderr


@pytest.mark.parametrize("command", [["jobs"], ["migrate"], ["queues"], ["stats"], ["job", "1"]])
def test_a_failed_connection_hides_the_password(invoke: Invoke, command: list[str]) -> None:
    result = invoke("--url", "postgresql://ops:hunter2secret@127.0.0.1:1/app", *command, with_url=False)
    refused(result, "could not connect to the postgresql database app at 127.0.0.1:1", "Connection refused")
    assert "hunter2secret" not in result.stderr and "ops" not in result.stderr


@pytest.mark.parametrize(
    ("status", "exit_code", "message"),
    [(0, 0, ""), (1, 1, "did not pass"), (5, 1, "exit status 5"), (4, 2, "pytest refused")],
)
def test_contract_passes_the_suite_outcome_on(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, status: int, exit_code: int, message: str
) -> None:
    calls: list[tuple[list[str], dict[str, str]]] = []

    def fake_run(command: list[str], check: bool, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        calls.append((command, env))
        return subprocess.CompletedProcess(command, status)

    monkeypatch.setattr(subprocess, "run", fake_run)
    url = "postgresql://ops:s3cret@127.0.0.1:1/scratch"
    result = invoke("contract", "--yes", url, "-k", "claims", "-x", with_url=False)
    assert result.exit_code == exit_code and message in result.stderr
    [(command, env)] = calls
    assert command[1:] == ["-m", "pytest", "--pyargs", "sidequest_sql.testing", "-k", "claims", "-x"]
    # In the environment, not the arguments, where the process list would show the password.
    assert env["SIDEQUEST_CONTRACT_URL"] == url and not any("s3cret" in part for part in command)


def test_contract_refuses_an_unknown_scheme(invoke: Invoke) -> None:
    assert invoke("contract", "--yes", "nosuchdb://x", with_url=False).exit_code == 2


def test_destructive_commands_ask_on_a_terminal(
    store: sq.SQLBackend, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sidequest_sql.cli import app

    make_job(store, "completed", completed_at=now() - timedelta(days=40))
    monkeypatch.setattr(app, "on_terminal", lambda: True)
    declined = invoke("cleanup", "--older-than", "30d", input="n\n")
    assert declined.exit_code == 1 and "Delete about 1 jobs" in declined.stderr
    assert len(store.list_jobs()) == 1
    declined = invoke("rollback", input="n\n")
    assert declined.exit_code == 1 and store.migrate() == []
    accepted = invoke("cleanup", "--older-than", "30d", input="y\n")
    assert accepted.exit_code == 0 and "Deleted 1 job " in accepted.stdout
