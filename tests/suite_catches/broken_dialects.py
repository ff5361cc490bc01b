"""Dialects with one deliberate defect each, that the contract suite must reject.

Each serves Postgres (the reference) under a scheme of its own, so the suite
reaches it through the public registry as a third party's dialect would.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, cast, func, type_coerce
from sqlalchemy.engine import URL

from sidequest_sql.times import TimeUnit
from sidequest_sql.dialects.postgres import PostgresBackend
from sidequest_sql.records import JobData
from sidequest_sql.schema import Timestamp


class _OnPostgres(PostgresBackend):
    @classmethod
    def engine_url(cls, url: URL) -> URL:
        return url.set(drivername="postgresql+psycopg")


class UnlockedClaims(_OnPostgres):
    """Claims without FOR UPDATE SKIP LOCKED: concurrent claimers take the same jobs."""

    def lock_for_claim(self, candidates: Select[Any]) -> Select[Any]:
        return candidates


class WaitingClaims(_OnPostgres):
    """Claims with FOR UPDATE but without SKIP LOCKED: a claim waits for rows another transaction holds."""

    def lock_for_claim(self, candidates: Select[Any]) -> Select[Any]:
        return candidates.with_for_update()


class LocalTimeBuckets(_OnPostgres):
    """Buckets truncated in a local time zone (UTC+05:30) instead of UTC."""

    def time_bucket(self, moment: ColumnElement[datetime], unit: TimeUnit) -> ColumnElement[datetime]:
        field = {"m": "minute", "h": "hour", "d": "day"}[unit]
        return type_coerce(func.date_trunc(field, moment, "Asia/Kolkata"), Timestamp())


class TextJSON(_OnPostgres):
    """JSON compared as the unnormalised text a client happens to write."""

    def json_equals(self, column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
        return cast(column, Text) == json.dumps(value)


class StaleIgnoresTimeout(_OnPostgres):
    """A running job is judged by max_stale_ms alone, whatever its own timeout."""

    def stale_jobs(self, max_stale_ms: int = 600_000, max_claimed_ms: int = 60_000) -> list[JobData]:
        found = super().stale_jobs(max_stale_ms, max_claimed_ms)
        claimed = [job for job in found if job.state == "claimed"]
        running = self.list_jobs(state="running", limit=10_000)
        cutoff = self.clock().timestamp() - max_stale_ms / 1000
        late = [job for job in running if job.attempted_at and job.attempted_at.timestamp() < cutoff]
        return sorted(claimed + late, key=lambda job: job.id)
