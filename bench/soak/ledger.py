"""Exact-once accounting of a soak run, from the workers' logs and the table.

Every job enqueued must have ended exactly once, the way its args planned:
completed at attempt ``fail + 1``, or, when every attempt was planned to fail,
failed for good at attempt ``max_attempts``; claimed once per attempt
(attempts 0 … n-1 as the claims returned them) and set back to waiting after
each failed attempt but the last. The logs say it per job, deleted or not.

The table then has to agree: each row left is a job that was enqueued and
ended, in the state and at the attempt its log says; every job that ended and
is gone was deleted by the cleanup (their number equals what
``delete_finished_jobs`` returned, summed); no job that had not ended is gone.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from sidequest_sql.schema import jobs

from .workers import QUEUE

if TYPE_CHECKING:
    from sidequest_sql.base import SQLBackend

END_STATES = {"C": "completed", "F": "failed"}
SHOWN = 5  # ids quoted per problem


@dataclass(slots=True)
class Trail:
    """What the logs say about one job id."""

    enqueued: int = 0
    fail: int = -1
    max_attempts: int = 0
    claims: list[int] = field(default_factory=list)
    retries: list[int] = field(default_factory=list)
    ends: list[tuple[str, int]] = field(default_factory=list)

    def planned(self) -> tuple[str, int]:
        """The end its args planned: (C or F, at which attempt)."""
        if self.fail >= self.max_attempts:
            return "F", self.max_attempts
        return "C", self.fail + 1


@dataclass
class Ledger:
    trails: dict[int, Trail]
    errors: list[str]
    stale: list[int]
    lines: int


def read(log_dir: str) -> Ledger:
    trails: dict[int, Trail] = {}
    errors: list[str] = []
    stale: list[int] = []
    lines = 0
    for path in sorted(Path(log_dir).glob("*.log")):
        with open(path) as f:
            for line in f:
                lines += 1
                kind, _, rest = line.rstrip("\n").partition(" ")
                if kind == "X":
                    errors.append(json.loads(rest))
                    continue
                parts = rest.split()
                if kind == "S":
                    stale.append(int(parts[0]))
                    continue
                job_id = int(parts[0])
                trail = trails.get(job_id)
                if trail is None:
                    trail = trails[job_id] = Trail()
                if kind == "E":
                    trail.enqueued += 1
                    trail.fail, trail.max_attempts = int(parts[1]), int(parts[2])
                elif kind == "K":
                    trail.claims.append(int(parts[1]))
                elif kind == "R":
                    trail.retries.append(int(parts[1]))
                elif kind in END_STATES:
                    trail.ends.append((kind, int(parts[1])))
                else:
                    errors.append(f"{path.name}: unreadable log line {line!r}")
    return Ledger(trails, errors, stale, lines)


def table_rows(backend: SQLBackend) -> tuple[dict[int, tuple[str, int]], int]:
    """(id → (state, attempt)) of the soak queue's rows, and how many rows other queues hold."""
    c = jobs.c
    with backend.engine.connect() as conn:
        rows = conn.execute(select(c.id, c.queue, c.state, c.attempt)).all()
    ours = {row.id: (row.state, row.attempt) for row in rows if row.queue == QUEUE}
    return ours, len(rows) - len(ours)


@dataclass
class Accounting:
    enqueued: int = 0
    completed: int = 0
    failed: int = 0
    retries: int = 0
    claims: int = 0
    unfinished: list[int] = field(default_factory=list)
    ended_twice: list[int] = field(default_factory=list)
    off_plan: list[int] = field(default_factory=list)
    strangers: list[int] = field(default_factory=list)
    enqueued_twice: list[int] = field(default_factory=list)
    rows_left: int = 0
    deleted_counted: int = 0
    gone_after_end: int = 0
    lost: list[int] = field(default_factory=list)
    stuck: dict[str, int] = field(default_factory=dict)
    rows_disagree: list[int] = field(default_factory=list)
    rows_unknown: list[int] = field(default_factory=list)
    rows_elsewhere: int = 0

    def problems(self) -> list[str]:
        out = []

        def ids(what: str, found: list[int]) -> None:
            if found:
                out.append(f"{len(found):,} {what} (e.g. {sorted(found)[:SHOWN]})")

        ids("jobs ended more than once (completed or failed twice)", self.ended_twice)
        ids("jobs not ended as their args planned, or claimed/retried at the wrong attempts", self.off_plan)
        ids("jobs never ended", self.unfinished)
        ids("jobs gone from the table without having ended (lost)", self.lost)
        ids("ids claimed or ended that no producer enqueued", self.strangers)
        ids("ids enqueued twice", self.enqueued_twice)
        ids("rows whose state or attempt differ from the logs", self.rows_disagree)
        ids("rows no producer enqueued", self.rows_unknown)
        if self.stuck:
            out.append(f"unended jobs still in the table: {self.stuck}")
        if self.rows_elsewhere:
            out.append(f"{self.rows_elsewhere:,} rows in other queues")
        if self.gone_after_end != self.deleted_counted:
            out.append(f"{self.gone_after_end:,} ended jobs are gone from the table, "
                       f"but delete_finished_jobs reported {self.deleted_counted:,}")
        return out

    def summary(self) -> str:
        unended = len(self.unfinished)
        return (
            f"{self.enqueued:,} enqueued = {self.completed:,} completed + {self.failed:,} failed for good "
            f"+ {unended:,} unended; {self.retries:,} retries; {self.claims:,} claims, one per attempt"
            f"{'' if not self.off_plan else ' (NOT for all)'}; ended twice: {len(self.ended_twice):,}; "
            f"lost: {len(self.lost):,}; {self.deleted_counted:,} deleted by the cleanup "
            f"+ {self.rows_left:,} rows left = {self.deleted_counted + self.rows_left:,}"
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, list):
                data[key] = {"count": len(value), "ids": sorted(value)[:100]}
        data["problems"] = self.problems()
        return data


def account(ledger: Ledger, rows: dict[int, tuple[str, int]], rows_elsewhere: int, deleted: int) -> Accounting:
    acc = Accounting(rows_left=len(rows), deleted_counted=deleted, rows_elsewhere=rows_elsewhere)
    stuck: Counter[str] = Counter()
    for job_id, trail in ledger.trails.items():
        acc.claims += len(trail.claims)
        acc.retries += len(trail.retries)
        if trail.enqueued == 0:
            acc.strangers.append(job_id)
            continue
        acc.enqueued += 1
        if trail.enqueued > 1:
            acc.enqueued_twice.append(job_id)
        if not trail.ends:
            acc.unfinished.append(job_id)
            if job_id in rows:
                stuck[rows[job_id][0]] += 1
            else:
                acc.lost.append(job_id)
            continue
        if len(trail.ends) > 1:
            acc.ended_twice.append(job_id)
        kind, attempt = trail.ends[0]
        if kind == "C":
            acc.completed += 1
        else:
            acc.failed += 1
        if (
            trail.ends[0] != trail.planned()
            or sorted(trail.claims) != list(range(attempt))
            or sorted(trail.retries) != list(range(1, attempt))
        ):
            acc.off_plan.append(job_id)
        if job_id in rows:
            if rows[job_id] != (END_STATES[trail.ends[-1][0]], trail.ends[-1][1]):
                acc.rows_disagree.append(job_id)
        else:
            acc.gone_after_end += 1
    acc.rows_unknown = [i for i in rows if i not in ledger.trails or ledger.trails[i].enqueued == 0]
    acc.stuck = dict(stuck)
    return acc
