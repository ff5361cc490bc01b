"""A PgBouncer process of the tests' own, in transaction pooling mode, in front of a Postgres database.

Its settings make what transaction pooling can break happen every time:

- a few server connections (``POOL_SIZE``), all opened before it is handed out,
  and ``server_round_robin`` so that consecutive transactions of one client
  take turns among them (the default hands the most recently used one back,
  so a lone client would always get the same);
- server connections start in ``SERVER_TIME_ZONE``, 14 hours east of UTC,
  as on a server configured for that zone: a session that did not set UTC
  reads instants late in year 9999 as year 10000, past what ``datetime`` holds.

It listens on a free loopback port; when run as root it drops to the
``postgres`` user (PgBouncer refuses to run as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL, make_url

POOL_SIZE = 3
SERVER_TIME_ZONE = "Pacific/Kiritimati"
START_TIMEOUT_S = 15
INSTALL_HINT = "apt-get install pgbouncer"


def pgbouncer_binary() -> str | None:
    """The ``pgbouncer`` executable; Debian installs it in /usr/sbin, often not on a user's PATH."""
    return shutil.which("pgbouncer", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ini(upstream: URL, port: int) -> str:
    target = {
        "host": upstream.host or "127.0.0.1",
        "port": str(upstream.port or 5432),
        "dbname": upstream.database or "postgres",
        "user": upstream.username or "postgres",
        "timezone": SERVER_TIME_ZONE,
    }
    if upstream.password is not None:
        target["password"] = str(upstream.password)
    database = " ".join(f"{key}={_quoted(value)}" for key, value in target.items())
    return f"""\
[databases]
{target["dbname"]} = {database}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
; Clients are not authenticated: the database entry logs in as the upstream user.
auth_type = any
pool_mode = transaction
default_pool_size = {POOL_SIZE}
min_pool_size = {POOL_SIZE}
reserve_pool_size = 0
server_round_robin = 1
; A test that needs more server connections than the pool has fails instead of hanging.
query_wait_timeout = 20
log_connections = 0
log_disconnections = 0
"""


def _client_url(upstream: URL, port: int) -> URL:
    # auth_type = any ignores the client's password; the database entry holds the upstream one.
    return upstream.set(host="127.0.0.1", port=port, password=None, query={})


def _conninfo(url: URL) -> str:
    return f"host={url.host} port={url.port} dbname={url.database} user={url.username or 'postgres'} connect_timeout=2"


def on_every_server_connection(url: str | URL, statement: str) -> set[int]:
    """Run ``statement`` on each of the pool's server connections; their process ids.

    ``POOL_SIZE`` clients hold a transaction at once, so each has a server connection of its own.
    """
    conninfo = _conninfo(make_url(url))
    with ExitStack() as stack:
        clients = [stack.enter_context(psycopg.connect(conninfo)) for _ in range(POOL_SIZE)]
        pids = set()
        for client in clients:
            client.execute(statement)
            # Not client.info.backend_pid: PgBouncer hands clients a key of its own.
            pids.add(client.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        for client in clients:
            client.commit()  # a client leaving mid-transaction would cost its server connection
    return pids


def _wait_until_ready(process: subprocess.Popen[bytes], url: URL, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with status {process.returncode}:\n{log.read_text()}")
        try:
            psycopg.connect(_conninfo(url)).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not accept connections in {START_TIMEOUT_S} s:\n{log.read_text()}")
            time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_pgbouncer(binary: str, upstream: str | URL, directory: Path) -> Iterator[URL]:
    """Run PgBouncer in front of the database ``upstream`` names; yield the URL that reaches it."""
    upstream = make_url(upstream)
    command = [binary]
    if os.geteuid() == 0:
        command += ["-u", _unprivileged_user()]
    for attempt in range(3):
        port = _free_port()
        ini = directory / f"pgbouncer-{port}.ini"
        log = directory / f"pgbouncer-{port}.log"
        ini.write_text(_ini(upstream, port))
        url = _client_url(upstream, port)
        with log.open("wb") as output:
            process = subprocess.Popen([*command, str(ini)], stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_until_ready(process, url, log)
        except RuntimeError:
            _stop(process)
            if attempt < 2 and "nowhere to listen" in log.read_text():
                continue  # another process took the port in between
            raise
        try:
            pids = on_every_server_connection(url, "SELECT 1")
            if len(pids) != POOL_SIZE:
                raise RuntimeError(f"pgbouncer opened {len(pids)} server connections, not {POOL_SIZE}")
            yield url
        finally:
            _stop(process)
        return


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("pgbouncer refuses to run as root, and there is no postgres or nobody user to run it as")
