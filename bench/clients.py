"""Two clients with one interface: the library, and the raw driver running the library's SQL.

A phase drives either through ``enqueue``, ``enqueue_batch``, ``claim`` and
``complete`` and cannot tell them apart; "claim+complete" is a claim of
``quantity`` jobs, then one ``update_job(id, state="completed",
completed_at=now)`` per job claimed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .baseline import OurStatements, connect, new_job, our_statements

if TYPE_CHECKING:
    from sidequest_sql.base import SQLBackend


class OurClient:
    """The library: one backend shared by every thread of a process."""

    kind = "ours"

    def __init__(self, backend: SQLBackend) -> None:
        self.backend = backend

    def enqueue(self, queue: str, i: int) -> int:
        return self.backend.create_new_job(new_job(queue, i)).id

    def enqueue_batch(self, queue: str, start: int, count: int) -> list[int]:
        return [job.id for job in self.backend.create_new_jobs([new_job(queue, start + k) for k in range(count)])]

    def claim(self, queue: str, quantity: int) -> list[int]:
        return [job.id for job in self.backend.claim_pending_job(queue, quantity)]

    def complete(self, job_id: int) -> None:
        self.backend.update_job(job_id, state="completed", completed_at=datetime.now(UTC))

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

    def enqueue(self, queue: str, i: int) -> int:
        st = self.st.insert
        params = st.params({"queue": queue, "now": datetime.now(UTC), "args": [i]})

        def work(cur: Any) -> int:
            cur.execute(st.sql, params)
            return cur.fetchone()[0]

        return self._write(work, one_statement=True)

    def enqueue_batch(self, queue: str, start: int, count: int) -> list[int]:
        batch = self.st.batch
        if batch is not None:
            # The library's multi-row statement(s) (``batch_insert``): on
            # Postgres one INSERT … SELECT FROM unnest(arrays), in autocommit
            # as the library runs it; on SQLite the VALUES statements in one
            # BEGIN IMMEDIATE transaction.
            columns = batch.columns(queue, datetime.now(UTC), start, count)
            statements = batch.statements(columns, count, positional=self.driver == "sqlite3")

            def work_batch(cur: Any) -> list[int]:
                ids: list[int] = []
                for sql, params in statements:
                    cur.execute(sql, params)
                    ids.extend(row[0] for row in cur.fetchall())
                ids.sort()  # the library's order: by id, which is input order
                return ids

            return self._write(work_batch, one_statement=len(statements) == 1)
        st = self.st.insert
        now = datetime.now(UTC)
        rows = [st.params({"queue": queue, "now": now, "args": [start + k]}) for k in range(count)]

        def work(cur: Any) -> list[int]:
            ids = []
            if self.driver == "psycopg":
                # One pipelined executemany of the single-row INSERT … RETURNING.
                cur.executemany(st.sql, rows, returning=True)
                while True:
                    ids.append(cur.fetchone()[0])
                    if not cur.nextset():
                        break
            else:
                for row in rows:
                    cur.execute(st.sql, row)
                    ids.append(cur.fetchone()[0])
            return ids

        return self._write(work)

    def claim(self, queue: str, quantity: int) -> list[int]:
        st = self.st
        values = {"now": datetime.now(UTC), "queue": queue, "quantity": quantity, "worker": self.worker}

        def work(cur: Any) -> list[int]:
            if st.claim is not None:
                cur.execute(st.claim.sql, st.claim.params(values))
                return [row[0] for row in cur.fetchall()]
            cur.execute(st.candidates.sql, st.candidates.params(values))
            ids = [row[0] for row in cur.fetchall()]
            if ids:
                up, back = st.claim_by_ids(len(ids))
                values.update({f"id{i}": job_id for i, job_id in enumerate(ids)})
                cur.execute(up.sql, up.params(values))
                cur.execute(back.sql, back.params(values))
                cur.fetchall()
            return ids

        return self._write(work, one_statement=st.claim is not None)

    def complete(self, job_id: int) -> None:
        st = self.st.complete
        params = st.params({"job_id": job_id, "now": datetime.now(UTC)})

        def work(cur: Any) -> None:
            cur.execute(st.sql, params)
            cur.fetchall()

        self._write(work, one_statement=True)

    def close(self) -> None:
        self.conn.close()
