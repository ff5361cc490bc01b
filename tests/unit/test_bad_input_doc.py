"""docs/bad-input.md tells the truth: each row is run, and its error and message compared.

The table is written by this module: ``python tests/unit/test_bad_input_doc.py``
runs every call on a fresh SQLite backend and rewrites the rows in the page.
"""

from __future__ import annotations

import math  # noqa: F401  (used by the calls of the table)
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone  # noqa: F401
from decimal import Decimal  # noqa: F401
from pathlib import Path
from typing import Any

import pytest

import sidequest_sql as sq
from sidequest_sql import JobTransition, NewJobData, registry  # noqa: F401  (used by the calls of the table)
from sidequest_sql.dialects.mysql import MySQLBackend
from sidequest_sql.dialects.postgres import PostgresBackend
from sidequest_sql.dialects.sqlite import SQLiteBackend
from sidequest_sql.testing.clock import ManualClock

PAGE = Path(__file__).resolve().parents[2] / "docs" / "bad-input.md"
BEGIN = "<!-- rows written by tests/unit/test_bad_input_doc.py: begin -->"
END = "<!-- rows written by tests/unit/test_bad_input_doc.py: end -->"

# Each call runs on ``backend``, a migrated SQLite store holding the queues
# "default" and "other", a waiting job ``waiting`` and a job whose
# unique_digest is "held"; ``job(...)`` is
# ``NewJobData(queue="default", script="jobs.js", job_class="Echo", ...)``.
SECTIONS: dict[str, list[str]] = {
    "Queues": [
        'create_new_queue("q" * 256)',
        'create_new_queue("a\\x00b")',
        'create_new_queue("\\ud800")',
        "create_new_queue(None)",
        "create_new_queue(5)",
        'create_new_queue(b"emails")',
        'create_new_queue("emails", concurrency=0)',
        'create_new_queue("emails", concurrency=True)',
        'create_new_queue("emails", concurrency=1.5)',
        'create_new_queue("emails", priority=2**31)',
        'create_new_queue("emails", state="running")',
        'create_new_queue("default")',
        'get_queue(["default"])',
        'list_queues(order_by="name; DROP TABLE sidequest_queues")',
        'list_queues(order="up")',
        'update_queue(str(default.id), priority=1)',
        "update_queue(2**63, priority=1)",
        "update_queue(2**40, priority=1)",
        "update_queue(default.id, id=7)",
        "update_queue(default.id, bogus=1)",
        'update_queue(default.id, name="other")',
        'update_queue(default.id, state="Paused")',
    ],
    "Jobs": [
        'get_job("1")',
        "get_job(2**63)",
        'create_new_job({"queue": "default", "script": "jobs.js", "job_class": "Echo"})',
        'create_new_job(job(queue="q" * 256))',
        'create_new_job(job(script=None))',
        "create_new_job(job(args=[math.nan]))",
        'create_new_job(job(args={"n": math.inf}))',
        'create_new_job(job(args=["a\\x00b"]))',
        'create_new_job(job(args={1: "one"}))',
        "create_new_job(job(args=(1, 2)))",
        'create_new_job(job(args=[Decimal("1.5")]))',
        "create_new_job(job(args=[datetime(2030, 1, 1, tzinfo=UTC)]))",
        "create_new_job(job(args=[10**400]))",
        "create_new_job(job(args=deep(257)))",
        "create_new_job(job(available_at=datetime(2030, 1, 1)))",
        'create_new_job(job(available_at="2030-01-01T00:00:00Z"))',
        "create_new_job(job(available_at=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))))",
        "create_new_job(job(max_attempts=2**31))",
        "create_new_job(job(timeout=1.5))",
        'create_new_job(job(unique_digest="held"))',
        'create_new_jobs("jobs")',
        "create_new_jobs([job(), None])",
        'create_new_jobs([job(unique_digest="d"), job(unique_digest="d")])',
        'claim_pending_job(["default"])',
        'claim_pending_job("default", 0)',
        'claim_pending_job("default", True)',
        'update_job(waiting.id, state="bogus")',
        'update_job(waiting.id, **{"class": "Other"})',
        "update_job(waiting.id, attempted_at=datetime(2030, 1, 1))",
        "update_job(waiting.id, result=math.nan)",
        'update_job(waiting.id, unique_digest="held")',
        'update_job(2**40, state="running")',
        'transition_job(waiting.id, state="running")',
        'transition_job(waiting.id, expect_state="done", state="running")',
        "transition_job(waiting.id, expect_state=None)",
        'transition_job(waiting.id, expect_state=["waiting"])',
        'transition_job(waiting.id, expect_state="waiting", expect_claimed_by=5)',
        'transition_job(waiting.id, expect_state="waiting", expect_claimed_by="w" * 256)',
        'transition_job(waiting.id, expect_state="waiting", expect_attempt="0")',
        'transition_job(waiting.id, expect_state="waiting", expect_attempt=2**31)',
        'transition_job(waiting.id, expect_state="waiting", state="done")',
        'transition_job(waiting.id, expect_state="waiting", unique_digest="held")',
        'transition_job(2**40, expect_state="waiting", state="running")',
        'transition_jobs(JobTransition(waiting.id, "waiting", {"state": "claimed"}))',
        'transition_jobs([JobTransition(waiting.id, "done", {"state": "claimed"})])',
        'transition_jobs([JobTransition(waiting.id, "waiting", {"class": "Other"})])',
        'transition_jobs([JobTransition(waiting.id, "waiting", {"state": "claimed"}, expect_attempt="0")])',
        'transition_jobs([JobTransition(waiting.id, "waiting", {"state": "claimed"})] * 2)',
    ],
    "Listing, statistics, cleanup": [
        "list_jobs(limit=-1)",
        'list_jobs(offset="10")',
        "list_jobs(queue=5)",
        'list_jobs(queue="default\\\\")',
        'list_jobs(queue=["default", 5])',
        "list_jobs(args={1, 2})",
        "list_jobs(since=datetime(2030, 1, 1))",
        'count_jobs(until="2030-01-01")',
        'count_jobs_over_time("0m")',
        'count_jobs_over_time("10001m")',
        'count_jobs_over_time("1w")',
        "count_jobs_over_time(12)",
        "stale_jobs(max_stale_ms=2**63)",
        'stale_jobs(max_claimed_ms="60000")',
        "delete_finished_jobs(datetime(2030, 1, 1))",
        "delete_finished_jobs(date(2030, 1, 1))",
        "delete_finished_jobs(datetime(2030, 1, 1, tzinfo=UTC), limit=0)",
    ],
    "Waiting": [
        'wait_for_jobs("default", 5)',
        "wait_for_jobs([], 5)",
        'wait_for_jobs(["default", None], 5)',
        'wait_for_jobs(["default"], -1)',
        "wait_for_jobs([\"default\"], math.inf)",
        'wait_for_jobs(["default"], "5")',
        'wait_for_jobs(["default"], True)',
        'wait_for_jobs(["default"], 10**400)',
    ],
}

# ``create_backend`` itself; none of these connects.
CREATE_BACKEND = [
    'create_backend("not a url")',
    'create_backend("nosuchdb://app:secret@db/app")',
    'create_backend("postgresql+nosuchdriver://app:secret@db/app")',
    'create_backend("postgresql://app:p@ss@db/app")',
    'create_backend("sqlite://app:secret@db/app")',
    'create_backend("sqlite:///jobs.sqlite", schema="jobs")',
    'create_backend("postgresql://app@db/app", schema="s" * 64)',
    'create_backend("sqlite:///jobs.sqlite", worker_name="w" * 256)',
    'create_backend("sqlite:///jobs.sqlite", clock=datetime.now(UTC))',
    'create_backend("sqlite:///jobs.sqlite", clock=lambda: datetime(2030, 1, 1)).count_jobs_over_time("1h")',
    'create_backend("sqlite:///jobs.sqlite", sqlite_synchronous="fast")',
    'create_backend("sqlite:///jobs.sqlite", pool_sise=5)',
]


def job(**fields: Any) -> NewJobData:
    return NewJobData(**{"queue": "default", "script": "jobs.js", "job_class": "Echo", **fields})


def deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


@contextmanager
def seeded_backend() -> Iterator[dict[str, Any]]:
    """The names the calls of the table use, around a fresh SQLite backend."""
    with tempfile.TemporaryDirectory() as where:
        with sq.create_backend(f"sqlite:///{where}/doc.sqlite", clock=ManualClock()) as backend:
            backend.migrate()
            names = {
                "backend": backend,
                "default": backend.create_new_queue("default"),
                "other": backend.create_new_queue("other"),
                "waiting": backend.create_new_job(job()),
                "held": backend.create_new_job(job(queue="other", unique_digest="held")),
            }
            yield {**globals(), **names, "create_backend": sq.create_backend}


def outcome(call: str, names: dict[str, Any], on_backend: bool) -> tuple[str, str]:
    """The error ``call`` raises, and its message, as the table shows them."""
    snapshot = names["backend"].list_jobs(limit=1000), names["backend"].list_queues()
    try:
        eval(("backend." if on_backend else "") + call, names)  # noqa: S307 - the table's own calls
    except Exception as exc:  # noqa: BLE001 - what is raised is what the row records
        error, message = type(exc).__name__, str(exc)
    else:
        error, message = "(none)", ""
    assert (names["backend"].list_jobs(limit=1000), names["backend"].list_queues()) == snapshot, call
    return error, message


def code(text: str) -> str:
    """``text`` as a code span in a table cell: a pipe escaped, backticks fenced."""
    text = " ".join(text.split()).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}" if text else ""


def rows() -> list[str]:
    lines: list[str] = []
    with seeded_backend() as names:
        for title, calls in [*SECTIONS.items(), ("`create_backend`", CREATE_BACKEND)]:
            lines += ["", f"### {title}", "", "| call | raises | message |", "|---|---|---|"]
            for call in calls:
                error, message = outcome(call, names, on_backend=title != "`create_backend`")
                lines.append(f"| {code(call)} | `{error}` | {code(message)} |")
    return [*lines, ""]


def written(page: str) -> list[str]:
    start, end = page.index(BEGIN), page.index(END)
    return page[start + len(BEGIN) : end].split("\n")


def rewrite() -> None:
    page = PAGE.read_text()
    start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
    PAGE.write_text(page[:start] + "\n".join(rows()) + page[end:])


def test_every_row_of_the_table_is_what_the_code_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the built-in schemes, whatever other tests of this process registered.
    monkeypatch.setattr(registry, "_registered", {})
    expected, found = rows(), written(PAGE.read_text())
    for want, have in zip(expected, found, strict=False):
        assert have == want, "docs/bad-input.md is stale: run python tests/unit/test_bad_input_doc.py"
    assert len(found) == len(expected), "docs/bad-input.md is stale: run python tests/unit/test_bad_input_doc.py"


def test_every_row_is_a_refusal_with_a_documented_error() -> None:
    for line in written(PAGE.read_text()):
        match = re.fullmatch(r"\| (`+)(?P<call>.+?)\1 \| `(?P<error>[\w()]+)` \| (?P<message>.*) \|", line)
        if match is None:
            continue
        error = match["error"]
        assert error in {"ValueError", "TypeError"} or issubclass(getattr(sq, error, object), sq.SidequestError), line
        assert match["message"], line


def test_the_json_nesting_limits_are_the_dialects_own() -> None:
    page = PAGE.read_text()
    match = re.search(r"\| JSON nesting \| at most (\d+) .*? on Postgres and SQLite, (\d+) on MySQL and MariaDB", page)
    assert match is not None
    assert int(match[1]) == PostgresBackend.max_json_depth == SQLiteBackend.max_json_depth
    assert int(match[2]) == MySQLBackend.max_json_depth


@pytest.mark.parametrize("secret", ["secret", "p@ss"])
def test_no_row_shows_a_password(secret: str) -> None:
    for line in written(PAGE.read_text()):
        _, _, message = line.rpartition("` | ")
        assert secret not in message, line


if __name__ == "__main__":
    rewrite()
    sys.exit(0)
