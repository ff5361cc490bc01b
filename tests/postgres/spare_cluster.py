"""A Postgres cluster the tests create, own and drop, for what must not touch a shared server.

Restarting a server, password authentication and TLS are tried here, on a
cluster made with Debian's postgresql-common tools (``pg_createcluster``,
``pg_ctlcluster``, ``pg_dropcluster``), which need root. It listens on
127.0.0.1 at a free port, has TLS on (Debian's snakeoil certificate where
installed, else a self-signed one made for it), and asks for a SCRAM password
over TCP; the superuser ``postgres`` comes in through the local socket
without one.

A cluster whose test run was killed before it could drop it is named after
that run's process id; the next run drops it once that process is gone.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.sql import SQL, Identifier, Literal

NAME_PREFIX = "sidequest_spare_"
SOCKET_DIR = "/var/run/postgresql"
CONFIG_ROOT = Path("/etc/postgresql")
BINARIES_ROOT = Path("/usr/lib/postgresql")
SNAKEOIL_CERT = Path("/etc/ssl/certs/ssl-cert-snakeoil.pem")
SNAKEOIL_KEY = Path("/etc/ssl/private/ssl-cert-snakeoil.key")
TOOLS = ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster", "pg_lsclusters", "pg_conftool", "openssl")
# Far below the ephemeral range, so no client socket of the machine holds one.
PORTS = range(5433, 6433)
# A cluster left by a killed run is dropped only once it is this old, not just orphaned.
ABANDONED_AFTER_S = 1800
COMMAND_TIMEOUT_S = 60
USER = "sidequest"
DATABASE = "sidequest_jobs"

# Every cluster this process created, for the terminal summary.
CREATED: list[SpareCluster] = []


@dataclass
class SpareCluster:
    version: str
    name: str
    port: int
    password: str = field(repr=False)
    certificate: str
    """Where the server's certificate came from: ``snakeoil`` or ``self-signed``."""
    created_in_s: float = 0.0
    """From ``pg_createcluster`` to a server that accepts the ``sidequest`` user."""
    restarts_s: list[float] = field(default_factory=list)
    host: str = "127.0.0.1"
    user: str = USER
    database: str = DATABASE

    @property
    def config_dir(self) -> Path:
        return CONFIG_ROOT / self.version / self.name

    @property
    def log_file(self) -> Path:
        return Path(f"/var/log/postgresql/postgresql-{self.version}-{self.name}.log")

    def url(self, *, password: str | None = None, **query: str) -> str:
        """The ``sidequest`` user's URL over TCP, with ``password`` instead of the right one if given."""
        url = sa.URL.create(
            "postgresql",
            username=self.user,
            password=self.password if password is None else password,
            host=self.host,
            port=self.port,
            database=self.database,
            query=query,
        )
        return url.render_as_string(hide_password=False)

    def admin(self, dbname: str | None = None) -> psycopg.Connection[Any]:
        """A superuser connection in autocommit, through the local socket."""
        return psycopg.connect(
            host=SOCKET_DIR,
            port=self.port,
            user="postgres",
            dbname=dbname or self.database,
            autocommit=True,
            connect_timeout=5,
        )

    def restart(self) -> float:
        """Restart the server in fast mode (every session ended at once); return the seconds it took."""
        started = time.monotonic()
        ctl(self.version, self.name, "restart", log_file=self.log_file)
        self.restarts_s.append(time.monotonic() - started)
        return self.restarts_s[-1]


def unavailable_reason() -> str | None:
    """Why no spare cluster can be made on this machine, or None when one can."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"no spare Postgres cluster: {', '.join(missing)} not installed (Debian: postgresql-common, openssl)"
    if installed_version() is None:
        return f"no spare Postgres cluster: no server installed under {BINARIES_ROOT}"
    if os.geteuid() != 0:
        return "no spare Postgres cluster: pg_createcluster must run as root"
    return None


def installed_version() -> str | None:
    """The newest Postgres major version whose server binaries are installed."""
    versions = [p.parent.parent.name for p in BINARIES_ROOT.glob("*/bin/initdb")]
    return max(versions, key=int, default=None)


def create_spare_cluster(attempts: int = 3) -> SpareCluster:
    """Create, configure and start a cluster, with a ``sidequest`` user owning a database.

    A port another run took between the choice and the start is retried on a
    new name and port.
    """
    version = installed_version()
    assert version is not None, unavailable_reason()
    drop_abandoned_clusters()
    for attempt in range(1, attempts + 1):
        cluster = SpareCluster(
            version=version,
            name=f"{NAME_PREFIX}{os.getpid()}_{secrets.token_hex(3)}",
            port=free_port(),
            password=secrets.token_urlsafe(18),
            certificate="",
        )
        started = time.monotonic()
        try:
            _build(cluster)
        except Exception:
            drop_spare_cluster(cluster)
            if attempt == attempts:
                raise
            continue
        cluster.created_in_s = time.monotonic() - started
        CREATED.append(cluster)
        return cluster
    raise AssertionError("unreachable")


def drop_spare_cluster(cluster: SpareCluster) -> None:
    if (cluster.config_dir / "postgresql.conf").exists():
        run(["pg_dropcluster", cluster.version, cluster.name, "--stop"])


def _build(cluster: SpareCluster) -> None:
    # --no-sync: nothing of a throwaway cluster must survive the machine.
    run(["pg_createcluster", cluster.version, cluster.name, "-p", str(cluster.port), "--", "--no-sync"])
    data_dir = Path(setting(cluster, "data_directory"))
    if SNAKEOIL_CERT.exists() and SNAKEOIL_KEY.exists():
        cluster.certificate = "snakeoil"
        cert, key = str(SNAKEOIL_CERT), str(SNAKEOIL_KEY)
    else:
        cluster.certificate = "self-signed"
        cert, key = _self_signed_certificate(data_dir)
    (cluster.config_dir / "conf.d" / "sidequest.conf").write_text(
        "listen_addresses = '127.0.0.1'\n"
        f"unix_socket_directories = '{SOCKET_DIR}'\n"
        "ssl = on\n"
        f"ssl_cert_file = '{cert}'\n"
        f"ssl_key_file = '{key}'\n"
        "password_encryption = 'scram-sha-256'\n"
        # Small and quick: the machine is shared.
        "shared_buffers = '32MB'\n"
        "max_connections = 60\n"
        "fsync = off\n"
    )
    (cluster.config_dir / "pg_hba.conf").write_text(
        "local all postgres trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
    )
    ctl(cluster.version, cluster.name, "start", log_file=cluster.log_file)
    with cluster.admin(dbname="postgres") as conn:
        user = Identifier(cluster.user)
        conn.execute(SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(user, Literal(cluster.password)))
        conn.execute(SQL("CREATE DATABASE {} OWNER {}").format(Identifier(cluster.database), user))


def _self_signed_certificate(data_dir: Path) -> tuple[str, str]:
    """A certificate and key for 127.0.0.1 in ``data_dir``, owned by its owner, mode 600."""
    cert, key = data_dir / "server.crt", data_dir / "server.key"
    run(
        [
            "openssl", "req", "-x509", "-nodes", "-days", "7", "-subj", "/CN=127.0.0.1",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert),
        ]
    )  # fmt: skip
    owner = data_dir.stat()
    for path in (cert, key):
        os.chown(path, owner.st_uid, owner.st_gid)
        path.chmod(0o600)
    return str(cert), str(key)


def setting(cluster: SpareCluster, name: str) -> str:
    """One setting of the cluster's postgresql.conf, as pg_conftool prints it."""
    out = run(["pg_conftool", "-s", cluster.version, cluster.name, "show", name])
    return out.strip().strip("'")


def free_port() -> int:
    """A port in ``PORTS`` that no cluster is configured for and nothing listens on."""
    taken = {int(line.split()[2]) for line in run(["pg_lsclusters", "-h"]).splitlines() if line.strip()}
    start = random.randrange(len(PORTS))
    for i in range(len(PORTS)):
        port = PORTS[(start + i) % len(PORTS)]
        if port in taken or Path(SOCKET_DIR, f".s.PGSQL.{port}").exists():
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def drop_abandoned_clusters() -> None:
    """Drop spare clusters whose creating process is gone and that are old enough to be forgotten."""
    for line in run(["pg_lsclusters", "-h"]).splitlines():
        version, name = line.split()[:2]
        found = re.fullmatch(rf"{NAME_PREFIX}(\d+)_[0-9a-f]+", name)
        if found is None or _alive(int(found.group(1))):
            continue
        config = CONFIG_ROOT / version / name / "postgresql.conf"
        if time.time() - config.stat().st_mtime > ABANDONED_AFTER_S:
            run(["pg_dropcluster", version, name, "--stop"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ctl(version: str, name: str, action: str, *, log_file: Path) -> None:
    """``pg_ctlcluster`` in fast mode; on failure the error carries the server log's tail."""
    try:
        run(["pg_ctlcluster", "--skip-systemctl-redirect", "-m", "fast", version, name, action])
    except RuntimeError as exc:
        tail = log_file.read_text(errors="replace").splitlines()[-15:] if log_file.exists() else []
        raise RuntimeError("\n".join([str(exc), f"last lines of {log_file}:", *tail])) from None


def run(command: list[str]) -> str:
    """Run ``command`` to completion (bounded); its stdout, or a RuntimeError with its output."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{' '.join(command)} took over {COMMAND_TIMEOUT_S}s") from exc
    if done.returncode != 0:
        said = done.stderr.strip() or done.stdout.strip()
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}: {said}")
    return done.stdout
