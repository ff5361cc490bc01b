"""Two clients with one interface: the library, and the raw driver running the library's SQL.

A phase drives either through ``enqueue``, ``enqueue_batch``, ``claim`` and
``complete`` and cannot tell them apart; "claim+complete" is a claim of
``quantity`` jobs, then one ``update_job(id, state="completed",
completed_at=now)`` per job claimed. Both return the same records
(``JobData``): the raw client builds them from the driver's rows in plain
code (``raw_records``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .baseline import OurStatements, connect, new_job, our_statements
from .raw_records import DECODERS

if TYPE_CHECKING:
    from sidequest_sql import JobData
    from sidequest_sql.base import SQLBackend


class OurClient:
    """The library: one backend shared by every thread of a process."""

    kind = "ours"

    def __init__(self, backend: SQLBackend) -> None:
        self.backend = backend

    def enqueue(self, queue: str, i: int) -> JobData:
        return self.backend.create_new_job(new_job(queue, i))

    def enqueue_batch(self, queue: str, start: int, count: int) -> list[JobData]:
        return self.backend.create_new_jobs([new_job(queue, start + k) for k in range(count)])

    def claim(self, queue: str, quantity: int) -> list[JobData]:
        return self.backend.claim_pending_job(queue, quantity)

    def complete(self, job_id: int) -> JobData:
        return self.backend.update_job(job_id, state="completed", completed_at=datetime.now(UTC))

    def close(self) -> None:
        """The backend belongs to whoever made it."""


class RawClient:
    """One bare driver connection executing the library's compiled statements.

    Its transactions take the library's shape: where the backend runs single
    statements in autocommit (``single_statement_autocommit``, Postgres), so
    does the baseline, with psycopg's autocommit; whatever takes several
    statements runs in one transaction on both sides.
    """

    kind = "raw"

    def __init__(self, backend: SQLBackend, statements: OurStatements | None = None) -> None:
        self.st = statements or our_statements(backend)
        self.conn, self.driver = connect(backend)
        self.job = DECODERS[self.driver]
        self.worker = backend.worker_name
        self.autocommit = backend.single_statement_autocommit and self.driver == "psycopg"
        if self.autocommit:
            self.conn.autocommit = True

    def _write(self, work: Any, *, one_statement: bool = False) -> Any:
        conn = self.conn
        if self.autocommit:
            with conn.cursor() as cur:
                if one_statement:
                    return work(cur)
                with conn.transaction():
                    return work(cur)
        if self.driver == "sqlite3":
            conn.execute("BEGIN IMMEDIATE")
        cur = conn.cursor()
        try:
            result = work(cur)
            conn.commit()
            return result
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.close()

    def enqueue(self, queue: str, i: int) -> JobData:
        st = self.st.insert
        params = st.params({"queue": queue, "now": datetime.now(UTC), "args": [i]})

        def work(cur: Any) -> JobData:
            cur.execute(st.sql, params)
            return self.job(cur.fetchone())

        return self._write(work, one_statement=True)

    def enqueue_batch(self, queue: str, start: int, count: int) -> list[JobData]:
        batch = self.st.batch
        if batch is not None:
            # The library's multi-row statement(s) (``batch_insert``): on
            # Postgres one INSERT … SELECT FROM unnest(arrays), in autocommit
            # as the library runs it; on SQLite the VALUES statements in one
            # BEGIN IMMEDIATE transaction.
            columns = batch.columns(queue, datetime.now(UTC), start, count)
            statements = batch.statements(columns, count, positional=self.driver == "sqlite3")

            def work_batch(cur: Any) -> list[JobData]:
                rows: list[Any] = []
                for sql, params in statements:
                    cur.execute(sql, params)
                    rows.extend(cur.fetchall())
                rows.sort(key=_first)  # the library's order: by id, which is input order
                return [self.job(row) for row in rows]

            return self._write(work_batch, one_statement=len(statements) == 1)
        st = self.st.insert
        now = datetime.now(UTC)
        rows = [st.params({"queue": queue, "now": now, "args": [start + k]}) for k in range(count)]

        def work(cur: Any) -> list[JobData]:
            jobs = []
            if self.driver == "psycopg":
                # One pipelined executemany of the single-row INSERT … RETURNING.
                cur.executemany(st.sql, rows, returning=True)
                while True:
                    jobs.append(self.job(cur.fetchone()))
                    if not cur.nextset():
                        break
            else:
                for row in rows:
                    cur.execute(st.sql, row)
                    jobs.append(self.job(cur.fetchone()))
            return jobs

        return self._write(work)

    def claim(self, queue: str, quantity: int) -> list[JobData]:
        st = self.st
        job = self.job
        values = {"now": datetime.now(UTC), "queue": queue, "quantity": quantity, "worker": self.worker}

        def work(cur: Any) -> list[JobData]:
            if st.claim is not None:
                cur.execute(st.claim.sql, st.claim.params(values))
                return [job(row) for row in cur.fetchall()]
            cur.execute(st.candidates.sql, st.candidates.params(values))
            ids = [row[0] for row in cur.fetchall()]
            if not ids:
                return []
            up, back = st.claim_by_ids(len(ids))
            values.update({f"id{i}": job_id for i, job_id in enumerate(ids)})
            cur.execute(up.sql, up.params(values))
            cur.execute(back.sql, back.params(values))
            return [job(row) for row in cur.fetchall()]

        return self._write(work, one_statement=st.claim is not None)

    def complete(self, job_id: int) -> JobData:
        st = self.st.complete
        params = st.params({"job_id": job_id, "now": datetime.now(UTC)})

        def work(cur: Any) -> JobData:
            cur.execute(st.sql, params)
            return self.job(cur.fetchone())

        return self._write(work, one_statement=True)

    def close(self) -> None:
        self.conn.close()


def _first(row: Any) -> Any:
    return row[0]
