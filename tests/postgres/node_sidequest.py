"""Node Sidequest's own code, run on the test database: the Node project in ``tests/node``.

``tests/node/sidequest.mjs`` runs Sidequest's Postgres backend (the version
``tests/node/package-lock.json`` pins, installed by ``.ci/ensure-node-sidequest``)
and prints its outcome as JSON; ``NodeSidequest`` runs it, one Node process
per call, and reads that outcome.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sidequest_sql import JobData

PROJECT = Path(__file__).resolve().parents[1] / "node"
SCRIPT = PROJECT / "sidequest.mjs"
BACKEND_PACKAGE = PROJECT / "node_modules" / "@sidequest" / "postgres-backend"
TIMEOUT_S = 120


def sidequest_migrations() -> list[str]:
    """Node Sidequest's migrations, in the order knex runs them and under the names it
    records: the files of the installed @sidequest/postgres-backend."""
    return sorted(path.name for path in (BACKEND_PACKAGE / "migrations").glob("*.cjs"))


def pinned_version() -> str:
    """The @sidequest/postgres-backend version ``tests/node/package.json`` pins."""
    return str(json.loads((PROJECT / "package.json").read_text())["dependencies"]["@sidequest/postgres-backend"])


def unavailable_reason() -> str | None:
    """Why Node Sidequest cannot run here, with how to install it; None when it can."""
    how = "run .ci/ensure-node-sidequest (npm ci in tests/node; needs node 20.11 or newer and npm)"
    if shutil.which("node") is None:
        return f"node is not on PATH: install Node.js 20.11 or newer, then {how}"
    installed = BACKEND_PACKAGE / "package.json"
    if not installed.exists():
        return f"Node Sidequest is not installed in tests/node: {how}"
    version = json.loads(installed.read_text())["version"]
    if version != pinned_version():
        return f"tests/node has @sidequest/postgres-backend {version}, not the pinned {pinned_version()}: {how}"
    return None


class NodeFailed(AssertionError):
    """The Node process exited with an error; the message holds its output."""


@dataclass(frozen=True)
class NodeSidequest:
    """Node Sidequest on one database: ``url`` a SQLAlchemy URL of it, each call in one schema."""

    url: str

    @property
    def node_url(self) -> str:
        """The URL as node-postgres reads it: ``postgresql://``, no SQLAlchemy driver."""
        return sa.make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

    def run(self, command: str, *arguments: str, schema: str | None) -> Any:
        """``node sidequest.mjs command arguments… URL [SCHEMA]``; its outcome (the last line of stdout)."""
        where = [self.node_url, *([schema] if schema else [])]
        done = subprocess.run(
            ["node", str(SCRIPT), command, *arguments, *where],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            cwd=PROJECT,
        )
        if done.returncode != 0:
            raise NodeFailed(
                f"node sidequest.mjs {command} exited with {done.returncode}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
        return json.loads(done.stdout.strip().splitlines()[-1])

    def migrate(self, schema: str | None) -> dict[str, list[str]]:
        """Sidequest's ``PostgresBackend.migrate()``: ``{"completed": […], "pending": []}``."""
        outcome: dict[str, list[str]] = self.run("migrate", schema=schema)
        return outcome

    def migrate_first(self, count: int, schema: str | None) -> dict[str, list[str]]:
        """Only Sidequest's first ``count`` migrations, as a release that had no more made them."""
        outcome: dict[str, list[str]] = self.run("migrate-first", str(count), schema=schema)
        return outcome

    def enqueue(self, schema: str | None, **job: Any) -> dict[str, Any]:
        """``Sidequest.build(SendMail)…enqueue(*args)`` (see ``tests/node/sidequest.mjs``): the job's data."""
        made: dict[str, Any] = self.run("enqueue", json.dumps(job), schema=schema)
        return made

    def get(self, job_id: int, schema: str | None) -> dict[str, Any]:
        """``Sidequest.job.get(job_id)``: the job's data as Node Sidequest reads it."""
        found: dict[str, Any] = self.run("get", str(job_id), schema=schema)
        return found


NODE_TIMES = ("inserted_at", "attempted_at", "available_at", "completed_at", "failed_at", "canceled_at", "claimed_at")


def node_job_as_python(node_job: dict[str, Any]) -> dict[str, Any]:
    """Node Sidequest's JSON of a job in ``JobData``'s field names and types: the id
    (a bigint, which Node gives as a string) an int, times (ISO text, to the millisecond) aware datetimes."""
    fields = {name: node_job[name] for name in JobData.__dataclass_fields__ if name in node_job}
    fields["job_class"] = node_job["class"]
    fields["id"] = int(node_job["id"])
    for name in NODE_TIMES:
        if fields[name] is not None:
            fields[name] = datetime.fromisoformat(fields[name])
    return fields
