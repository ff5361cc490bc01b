"""``python -m bench.costs --url URL``: what the library does per job that the raw baseline does not.

The raw baseline (``bench/baseline.py``) sends the library's SQL and reads
back the id alone; the library also checks every argument and turns every
returned row into a typed ``JobData``. This times those two in isolation, on
a row the database returned, so that a ratio against the baseline can be
read against what it leaves room for. The sidequest tables of the database
are emptied.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sidequest_sql as sq
from sidequest_sql.fields import JOB_FIELDS, check_changes
from sidequest_sql.rows import job_from_row, new_job_values
from sidequest_sql.schema import jobs
from sidequest_sql.statements import select_by_id

from .baseline import new_job


def best_microseconds(work: Callable[[], Any], number: int) -> float:
    """The best of five runs of ``number`` calls, per call, in µs."""
    return min(timeit.repeat(work, number=number, repeat=5)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.costs", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="a scratch database (its sidequest tables are emptied)")
    url = parser.parse_args().url
    with sq.create_backend(url) as backend:
        backend.migrate()
        backend.truncate()
        backend.create_new_job(new_job("costs", 0))
        [claimed] = backend.claim_pending_job("costs")
        # get_job's statement: every column, read by the same result processors as a RETURNING row.
        statement = backend.execution.driver_statement("get_job", lambda: select_by_id(jobs))
        fairy: Any = backend.engine.raw_connection()
        try:
            cursor = fairy.dbapi_connection.cursor()
            cursor.execute(statement.sql, statement.parameters({"id_1": claimed.id}))
            fetched: Any = cursor.fetchone()  # as the driver gives it
        finally:
            fairy.close()

        def decode() -> sq.JobData:
            [row] = statement.decode([fetched])
            return job_from_row(row)

        assert decode() == claimed
        now = datetime.now(UTC)
        changes = {"state": "completed", "completed_at": now}
        print(f"{backend.url.render_as_string(hide_password=True)}: µs per call, best of 5")
        print(f"  decode one returned job row into JobData:         {best_microseconds(decode, 100_000):6.2f}")
        depth = backend.max_json_depth
        new_values = best_microseconds(lambda: new_job_values(new_job("q", 1), now, "job", max_json_depth=depth), 50_000)
        print(f"  check and build one new job's values:             {new_values:6.2f}")
        checks = best_microseconds(lambda: check_changes(JOB_FIELDS, changes, "job", max_json_depth=depth), 100_000)
        print(f"  check update_job's changes (state, completed_at): {checks:6.2f}")
        backend.truncate()


if __name__ == "__main__":
    main()
