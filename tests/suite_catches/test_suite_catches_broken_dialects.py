"""The contract suite can fail: each deliberately broken dialect is caught.

The suite runs as a dialect author runs it (``--pyargs sidequest_sql.testing
--sidequest-url``), once against a broken dialect, which must fail, and once,
the same selection, against the real Postgres dialect, which must pass.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from sidequest_sql import SQLBackend, register_dialect

from .broken_dialects import LocalTimeBuckets, StaleIgnoresTimeout, TextJSON, UnlockedClaims, WaitingClaims

pytestmark = pytest.mark.postgres

CASES = {
    "unlocked_claims": (UnlockedClaims, "test_concurrency", "threads_with_their_own_backends"),
    "waiting_claims": (WaitingClaims, "test_lock_waits", "skips_jobs_locked"),
    "local_time_buckets": (LocalTimeBuckets, "test_statistics", "CountJobsOverTime"),
    "text_json": (TextJSON, "test_listing", "ListJobsArgs"),
    "stale_ignores_timeout": (StaleIgnoresTimeout, "test_cleanup", "StaleJobs"),
}


def run_suite(pytester: pytest.Pytester, url: str, module: str, selection: str) -> dict[str, int]:
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-q",
        "--pyargs", f"sidequest_sql.testing.{module}",
        "--sidequest-url", url,
        "-k", selection,
    )  # fmt: skip
    return result.parseoutcomes()


@pytest.mark.parametrize("scheme", sorted(CASES))
def test_the_suite_rejects_the_broken_dialect_and_accepts_the_real_one(
    pytester: pytest.Pytester, postgres_url: str, scheme: str
) -> None:
    broken, module, selection = CASES[scheme]
    register_dialect(scheme, broken)
    broken_url = make_url(postgres_url).set(drivername=scheme).render_as_string(hide_password=False)

    caught = run_suite(pytester, broken_url, module, selection)
    assert caught.get("failed", 0) >= 1 and not caught.get("errors"), f"{broken.__name__}: {caught}"

    control = run_suite(pytester, postgres_url, module, selection)
    assert control.get("failed", 0) == 0 and control.get("passed", 0) >= 1, control


def test_broken_dialects_change_one_hook_each() -> None:
    for broken, _, _ in CASES.values():
        overridden = {name for name in vars(broken) if not name.startswith("__")}
        assert len(overridden) == 1, (broken.__name__, overridden)
        assert issubclass(broken, SQLBackend)
