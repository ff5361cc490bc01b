"""A log of state changes kept by the database itself, to count completions exactly."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa

TRIGGERS = {
    "postgresql": [
        "CREATE TABLE worker_test_completions (job_id bigint NOT NULL)",
        """CREATE FUNCTION worker_test_completion() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN INSERT INTO worker_test_completions VALUES (NEW.id); RETURN NULL; END $$""",
        """CREATE TRIGGER worker_test_completion AFTER UPDATE OF state ON sidequest_jobs FOR EACH ROW
           WHEN (NEW.state = 'completed' AND OLD.state <> 'completed') EXECUTE FUNCTION worker_test_completion()""",
    ],
    "sqlite": [
        "CREATE TABLE worker_test_completions (job_id INTEGER NOT NULL)",
        """CREATE TRIGGER worker_test_completion AFTER UPDATE OF state ON sidequest_jobs
           WHEN NEW.state = 'completed' AND OLD.state <> 'completed'
           BEGIN INSERT INTO worker_test_completions VALUES (NEW.id); END""",
    ],
    "mysql": [
        "CREATE TABLE worker_test_completions (job_id BIGINT NOT NULL)",
        """CREATE TRIGGER worker_test_completion AFTER UPDATE ON sidequest_jobs FOR EACH ROW
           BEGIN IF NEW.state = 'completed' AND OLD.state <> 'completed' THEN
           INSERT INTO worker_test_completions VALUES (NEW.id); END IF; END""",
    ],
}
DROP = {
    "postgresql": ["DROP TABLE IF EXISTS worker_test_completions", "DROP FUNCTION IF EXISTS worker_test_completion() CASCADE"],
    "sqlite": ["DROP TRIGGER IF EXISTS worker_test_completion", "DROP TABLE IF EXISTS worker_test_completions"],
    "mysql": ["DROP TRIGGER IF EXISTS worker_test_completion", "DROP TABLE IF EXISTS worker_test_completions"],
}


def log_completions(engine: sa.Engine) -> None:
    drop_completion_log(engine)
    with engine.begin() as conn:
        for statement in TRIGGERS[engine.dialect.name]:
            conn.exec_driver_sql(statement)


def completions(engine: sa.Engine) -> Counter[int]:
    with engine.connect() as conn:
        return Counter(conn.exec_driver_sql("SELECT job_id FROM worker_test_completions").scalars())


def drop_completion_log(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for statement in DROP[engine.dialect.name]:
            conn.exec_driver_sql(statement)
