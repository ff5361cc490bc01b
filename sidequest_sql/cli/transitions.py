"""The state changes an operator may apply to a job, as pure functions.

Each takes a job and "now" and returns the fields to change, or raises
``Refusal`` saying why the job's state does not allow it. They follow
Sidequest's own transitions: rerun (``RerunTransition``), cancel
(``CancelTransition``) and the engine's release of stale jobs, whose
changes (``sidequest_sql.transitions.released``) the worker's own stale
release shares.

The changes are applied with ``SQLBackend.transition_job``, expecting the job
as the command read it (``as_read``), so that a job that changed in between
(a worker finished it, another operator got there first) is left as it is
and the command says so (``changed_under``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sidequest_sql import transitions

if TYPE_CHECKING:
    from sidequest_sql.records import JobData

RERUNNABLE = ("completed", "failed", "canceled")
CANCELABLE = ("waiting", "running")
RELEASABLE = ("claimed", "running")

_WHY = {
    "waiting": "it has not run yet",
    "claimed": "a worker is about to start it",
    "running": "a worker is running it",
    "completed": "it has already finished",
    "failed": "it has already finished",
    "canceled": "it has already finished",
}


class Refusal(Exception):
    """The job's state does not allow the operation; the message says why."""


def as_read(job: JobData, *also: str) -> dict[str, Any]:
    """``transition_job``'s precondition: the job still in the state it was read in,
    and still holding the values it was read with in the fields ``also`` names."""
    return {"expect_state": job.state, **{f"expect_{name}": getattr(job, name) for name in also}}


def changed_under(changed: list[tuple[JobData, JobData | None]], action: str) -> Refusal:
    """The refusal of an operation not applied to jobs that changed between the
    read it was decided on and its write: each job as read, and as it is now
    (None: deleted)."""
    if len(changed) == 1:
        [(before, after)] = changed
        return Refusal(
            f"job {before.id} changed while it was being {action}: it {_now(before, after)}, so it was left as it is"
        )
    clauses = [f"job {before.id} {_now(before, after)}" for before, after in changed]
    return Refusal(
        f"{len(changed)} jobs changed while they were being {action}, so they were left as they are: "
        + "; ".join(clauses)
    )


def _now(before: JobData, after: JobData | None) -> str:
    if after is None:
        return "was deleted"
    return f"is now {_seen(after, before)} (it was {_seen(before, after)})"


def _seen(job: JobData, other: JobData) -> str:
    """``job``'s state, and its attempt and worker where they differ from ``other``'s."""
    parts: list[str] = [job.state]
    if job.attempt != other.attempt:
        parts.append(f"at attempt {job.attempt}")
    if job.claimed_by != other.claimed_by:
        parts.append("claimed by nobody" if job.claimed_by is None else f"claimed by {job.claimed_by}")
    return ", ".join(parts)


def rerun(job: JobData, now: datetime) -> dict[str, Any]:
    """Back to waiting, available now; one more attempt if they are used up."""
    if job.state not in RERUNNABLE:
        raise Refusal(
            f"cannot rerun job {job.id}: it is {job.state} ({_WHY[job.state]}), "
            "and only a completed, failed or canceled job can be rerun"
        )
    changes: dict[str, Any] = {"state": "waiting", "available_at": now}
    if job.attempt >= job.max_attempts:
        changes["max_attempts"] = job.attempt + 1
    return changes


def cancel(job: JobData, now: datetime) -> dict[str, Any]:
    """Canceled, ``canceled_at`` now; a worker running it sees the state change."""
    if job.state not in CANCELABLE:
        raise Refusal(
            f"cannot cancel job {job.id}: it is {job.state} ({_WHY[job.state]}), "
            "and only a waiting or running job can be canceled"
        )
    return {"state": "canceled", "canceled_at": now}


def release(job: JobData, now: datetime) -> dict[str, Any]:
    """What releasing a stale job does to it (``sidequest_sql.transitions.released``,
    which the worker's stale release applies too)."""
    if job.state not in RELEASABLE:
        raise Refusal(f"cannot release job {job.id}: it is {job.state}, and only a claimed or running job can be stale")
    return transitions.released(job, now)
