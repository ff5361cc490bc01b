"""The parts of the CLI that need no database: transitions, durations, the chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from sidequest_sql import transitions as shared
from sidequest_sql.cli import chart, transitions
from sidequest_sql.cli.params import check_time_range, parse_duration
from sidequest_sql.records import JobCountsAt, JobData

NOW = datetime(2025, 5, 1, 12, 30, tzinfo=UTC)


def job(state: str, **fields: object) -> JobData:
    base: dict[str, object] = dict(
        id=7, queue="q", state=state, script="s", job_class="C", args=[], constructor_args=[],
        attempt=1, max_attempts=3, inserted_at=NOW, available_at=NOW,
    )
    base.update(fields)
    return JobData(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", ["completed", "failed", "canceled"])
def test_rerun_puts_a_finished_job_back_to_waiting_now(state: str) -> None:
    assert transitions.rerun(job(state), NOW) == {"state": "waiting", "available_at": NOW}


def test_rerun_allows_one_more_attempt_when_they_are_used_up() -> None:
    changes = transitions.rerun(job("failed", attempt=3, max_attempts=3), NOW)
    assert changes["max_attempts"] == 4


@pytest.mark.parametrize("state", ["waiting", "claimed", "running"])
def test_rerun_refuses_a_job_that_is_not_finished(state: str) -> None:
    with pytest.raises(transitions.Refusal, match=f"job 7: it is {state}"):
        transitions.rerun(job(state), NOW)


@pytest.mark.parametrize("state", ["waiting", "running"])
def test_cancel_marks_waiting_and_running_jobs(state: str) -> None:
    assert transitions.cancel(job(state), NOW) == {"state": "canceled", "canceled_at": NOW}


@pytest.mark.parametrize("state", ["claimed", "completed", "failed", "canceled"])
def test_cancel_refuses_other_states(state: str) -> None:
    with pytest.raises(transitions.Refusal, match=f"it is {state}.*only a waiting or running job"):
        transitions.cancel(job(state), NOW)


def test_release_sends_a_claimed_job_back_to_waiting() -> None:
    assert transitions.release(job("claimed", attempt=0), NOW) == {"state": "waiting"}


def test_release_retries_a_running_job_with_attempts_left() -> None:
    changes = transitions.release(job("running", attempt=2, max_attempts=3, errors=[{"message": "old"}]), NOW)
    assert changes["state"] == "waiting"
    assert changes["available_at"] == NOW + timedelta(seconds=2)
    assert changes["errors"][0] == {"message": "old"}
    assert changes["errors"][1]["message"] == shared.STALE_MESSAGE
    assert changes["errors"][1]["attempt"] == 2


def test_release_fails_a_running_job_whose_attempts_are_used_up() -> None:
    changes = transitions.release(job("running", attempt=3, max_attempts=3), NOW)
    assert changes["state"] == "failed" and changes["failed_at"] == NOW
    assert len(changes["errors"]) == 1


@pytest.mark.parametrize("state", ["waiting", "completed", "failed", "canceled"])
def test_release_refuses_jobs_that_cannot_be_stale(state: str) -> None:
    with pytest.raises(transitions.Refusal):
        transitions.release(job(state), NOW)


def test_as_read_expects_the_state_and_the_fields_named() -> None:
    read = job("running", claimed_by="w1")
    assert transitions.as_read(read) == {"expect_state": "running"}
    assert transitions.as_read(read, "claimed_by", "attempt") == {
        "expect_state": "running", "expect_claimed_by": "w1", "expect_attempt": 1,
    }  # fmt: skip


def test_a_job_that_changed_is_one_sentence_naming_what_changed() -> None:
    read = job("running", claimed_by="w1")
    [message] = transitions.changed_under([(read, job("completed", claimed_by="w1"))], "released").args
    assert message == (
        "job 7 changed while it was being released: it is now completed (it was running), so it was left as it is"
    )
    [message] = transitions.changed_under([(read, job("running", attempt=2, claimed_by=None))], "released").args
    assert message.endswith(
        "it is now running, at attempt 2, claimed by nobody (it was running, at attempt 1, claimed by w1), "
        "so it was left as it is"
    )
    [message] = transitions.changed_under([(read, None), (job("claimed", id=8), job("waiting", id=8))], "released").args
    assert message == (
        "2 jobs changed while they were being released, so they were left as they are: "
        "job 7 was deleted; job 8 is now waiting (it was claimed)"
    )


def test_retry_delay_follows_the_backoff_strategy() -> None:
    assert shared.retry_delay_ms(1, None, "exponential") == 1000
    assert shared.retry_delay_ms(4, 500, "exponential") == 4000
    assert shared.retry_delay_ms(4, 500, "fixed") == 500
    assert shared.retry_delay_ms(10**9, None, "exponential") == shared.MAX_RETRY_DELAY_MS


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("15m", timedelta(minutes=15)),
     ("90s", timedelta(seconds=90)), ("2w", timedelta(weeks=2)), ("0d", timedelta(0))],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["30", "d", "30x", " 30d", "30d ", "-1d", "1.5d", "030d", "3 d", "٣d", "30D", ""])
def test_durations_parse_strictly(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0h", "12", "12s", "10001m", " 12h", "12H"])
def test_time_ranges_are_checked(text: str) -> None:
    with pytest.raises(ValueError):
        check_time_range(text)


def series(n: int, **counts: int) -> list[JobCountsAt]:
    """n hourly buckets, the i-th holding i + 1 times ``counts``."""
    start = datetime(2025, 5, 1, tzinfo=UTC)
    return [
        JobCountsAt(
            timestamp=start + timedelta(hours=i),
            total=sum(counts.values()) * (i + 1),
            **{state: n * (i + 1) for state, n in counts.items()},
        )
        for i in range(n)
    ]


def rendered(text: object, width: int = 80) -> str:
    console = Console(width=width, file=None, color_system=None, record=True)
    with console.capture() as capture:
        console.print(text)
    return capture.get()


@pytest.mark.parametrize("n", [1, 12, 60, 500, 10_000])
def test_chart_fits_80_columns_with_legend_and_axis(n: int) -> None:
    text = rendered(chart.draw(series(n, completed=3, failed=1), "h", width=80, colour=False))
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "└" in text
    assert lines[-1].startswith("█ completed")
    assert "X failed" in lines[-1]


def test_chart_stacks_finished_states_at_the_bottom_with_their_own_glyphs() -> None:
    text = rendered(chart.draw(series(1, completed=6, failed=2), "m", width=60, colour=False))
    rows = [line for line in text.splitlines() if "┤" in line or "│" in line]
    assert len(rows) == chart.HEIGHT
    bar = [row.split("┤" if "┤" in row else "│")[1].strip()[:1] for row in rows]
    assert bar == ["X", "X"] + ["█"] * 6


def test_chart_of_an_empty_range_says_so() -> None:
    text = rendered(chart.draw(series(3), "d", width=80, colour=True))
    assert "no jobs in this time range" in text
    assert "05-01" in text


def test_split_height_shares_cells_by_largest_remainder() -> None:
    assert chart.split_height(8, {"completed": 6, "failed": 2, "waiting": 0}) == {"completed": 6, "failed": 2, "waiting": 0}
    assert sum(chart.split_height(5, {"completed": 1, "failed": 1, "waiting": 1}).values()) == 5
