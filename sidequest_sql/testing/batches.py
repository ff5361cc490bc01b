"""Jobs for batch tests: fields that vary together through None and awkward values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sidequest_sql import NewJobData

# Values that a batch must carry through its statements as a one-row INSERT
# does: text special to array literals and SQL (quotes, braces, "NULL"), JSON
# null inside documents beside SQL NULL for a missing document, times in
# other zones.
MIXED_NAMES = ("default", "NULL", "null", 'q,{"x"}\\', " spaced ", "日本語", "", "a" * 255)
MIXED_JSON: tuple[Any, ...] = (
    [],
    {},
    [None],
    {"k": None, "nested": [1, {"deep": [True, False, None]}]},
    "null",
    'text "quoted" {braces}, commas \\ backslash',
    1.5,
    {"integral float": 2.0},
    -(2**53 - 1),
    True,
    {"b": 1, "a": ["é", "🎉", "\u2028"]},
)
PLUS_FIVE_THIRTY = timezone(timedelta(hours=5, minutes=30))


def mixed_jobs(count: int, now: datetime, *, digest_prefix: str = "digest-") -> list[NewJobData]:
    """``count`` jobs; ``args`` starts with the job's index, so each is told apart by it."""
    jobs = []
    for i in range(count):
        times = (
            None,
            now + timedelta(seconds=i, microseconds=i),
            datetime(1970, 1, 1, 0, 0, 1, 7, tzinfo=UTC),
            datetime(2999, 12, 31, 23, 59, 59, 999_999, tzinfo=PLUS_FIVE_THIRTY),
        )
        jobs.append(
            NewJobData(
                queue=MIXED_NAMES[i % len(MIXED_NAMES)],
                script=MIXED_NAMES[(i + 1) % len(MIXED_NAMES)] or "s.js",
                job_class=MIXED_NAMES[(i + 2) % len(MIXED_NAMES)] or "Echo",
                args=[i, MIXED_JSON[i % len(MIXED_JSON)]],
                constructor_args=MIXED_JSON[(i + 3) % len(MIXED_JSON)],
                max_attempts=i % 7,
                available_at=times[i % len(times)],
                timeout=None if i % 3 == 0 else i * 1000,
                unique_digest=None if i % 4 == 0 else f"{digest_prefix}{i}",
                uniqueness_config=None if i % 5 < 2 else MIXED_JSON[i % len(MIXED_JSON)],
                retry_delay=None if i % 2 else i,
                backoff_strategy=("exponential", "fixed", "NULL")[i % 3],
            )
        )
    return jobs
