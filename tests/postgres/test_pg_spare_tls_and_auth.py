"""Logging in to a server that asks for a password, over TLS or not, on the tests' own cluster.

TLS is read from the server's side (``pg_stat_ssl``), so the check fails
when a connection is not what ``sslmode`` asked for. A wrong password must
come out as a ``DatabaseUnavailableError`` that says what failed where,
without the password anywhere: message, chained errors, repr, or log.
"""

from __future__ import annotations

import logging
import secrets
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from spare_cluster import SpareCluster

import sidequest_sql as sq
from sidequest_sql import NewJobData
from sidequest_sql.base import SQLBackend

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize(("sslmode", "encrypted"), [("require", True), ("disable", False)])
def test_the_backend_connects_with_or_without_tls_as_sslmode_says(
    spare_cluster: SpareCluster, spare_schema: Callable[[], str], sslmode: str, encrypted: bool
) -> None:
    application = f"sq_tls_{secrets.token_hex(4)}"
    url = spare_cluster.url(sslmode=sslmode, connect_timeout="5", application_name=application)
    with sq.create_backend(url, schema=spare_schema(), worker_name="tls-worker") as backend:
        assert backend.migrate()[0] == "0001"
        assert backend.migrate() == []
        backend.create_new_queue("tls")
        job = backend.create_new_job(NewJobData("tls", "tls.py", "Tls", args=[sslmode]))
        [claimed] = backend.claim_pending_job("tls")
        assert claimed.id == job.id
        backend.update_job(job.id, state="completed", completed_at=datetime.now(UTC))
        assert backend.count_jobs().completed == 1

        with backend.engine.connect() as conn:
            ssl = conn.exec_driver_sql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar_one()
        assert ssl is encrypted

        # Every connection the backend holds, as the server sees them.
        with spare_cluster.admin() as admin:
            seen = admin.execute(
                "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                "WHERE a.application_name = %s AND a.usename = %s",
                [application, spare_cluster.user],
            ).fetchall()
        assert seen, "the backend's pooled connections are not on the server"
        assert {row[0] for row in seen} == {encrypted}


FIRST_OPERATIONS: dict[str, Callable[[SQLBackend], Any]] = {
    "migrate": lambda backend: backend.migrate(),
    "count_jobs": lambda backend: backend.count_jobs(),
    "get_job": lambda backend: backend.get_job(1),
    "create_new_job": lambda backend: backend.create_new_job(NewJobData("q", "s.py", "S")),
    "claim_pending_job": lambda backend: backend.claim_pending_job("q"),
}


@pytest.mark.parametrize("operation", FIRST_OPERATIONS)
def test_a_wrong_password_is_a_clear_unavailable_error_that_shows_no_password(
    spare_cluster: SpareCluster, caplog: pytest.LogCaptureFixture, operation: str
) -> None:
    token = secrets.token_hex(8)
    wrong = f"Wr0ng:p@ss/{token}"
    url = spare_cluster.url(password=wrong, connect_timeout="5")
    _capture_every_logger(caplog)

    backend = sq.create_backend(url)
    try:
        with pytest.raises(sq.DatabaseUnavailableError) as caught:
            FIRST_OPERATIONS[operation](backend)
        where = repr(backend)
    finally:
        backend.close()

    error = caught.value
    message = str(error)
    assert "authentication failed" in message.lower(), message
    assert spare_cluster.host in message, message
    assert spare_cluster.database in message, message

    secret_forms = {wrong, quote(wrong, safe=""), quote(wrong), token, spare_cluster.password, url}
    places = {
        "str(error)": message,
        "traceback.format_exception(error)": "".join(traceback.format_exception(error)),
        "repr(backend)": where,
    }
    for depth, link in enumerate(_chain(error)):
        places[f"repr of error {depth} in the chain ({type(link).__name__})"] = repr(link)
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for i, record in enumerate(caplog.records):
        places[f"log record {i} ({record.name}, {record.levelname})"] = (
            formatter.format(record) + repr(record.args)
        )
    leaks = sorted(
        f"{place} holds {secret!r}" for place, text in places.items() for secret in secret_forms if secret in text
    )
    assert not leaks, "\n".join(leaks)


def _capture_every_logger(caplog: pytest.LogCaptureFixture) -> None:
    """DEBUG for the root logger and for each one that has a level of its own (SQLAlchemy sets one)."""
    names = {"sqlalchemy", "psycopg", "alembic", "sidequest_sql"}
    names |= {
        name
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET
    }
    caplog.set_level(logging.DEBUG)
    for name in sorted(names):
        caplog.set_level(logging.DEBUG, logger=name)


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    link: BaseException | None = error
    while link is not None and link not in seen:
        seen.append(link)
        link = link.__cause__ or link.__context__
    return seen
