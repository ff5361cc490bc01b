"""Rows in and out without a server: the keys every new job's row has, and the
canonical JSON text every document is written as."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidequest_sql import NewJobData
from sidequest_sql.hooks import DialectHooks
from sidequest_sql.jsonvalues import dumps
from sidequest_sql.rows import NEW_JOB_KEYS, new_job_values

NOW = datetime(2030, 1, 15, 12, 30, 45, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "job",
    [
        NewJobData("q", "s.py", "Job"),
        NewJobData("q", "s.py", "Job", args=[1], available_at=NOW, unique_digest="d", uniqueness_config={}),
    ],
)
def test_every_new_job_row_has_the_keys_its_insert_is_built_for(job: NewJobData) -> None:
    assert tuple(new_job_values(job, NOW, "job", max_json_depth=DialectHooks.max_json_depth)) == NEW_JOB_KEYS


@given(st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
))
def test_canonical_json_is_the_sorted_compact_text(value: Any) -> None:
    def normalised(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
            return int(v)
        if isinstance(v, list):
            return [normalised(x) for x in v]
        if isinstance(v, dict):
            return {k: normalised(x) for k, x in v.items()}
        return v

    assert dumps(value) == json.dumps(normalised(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
