"""PostgreSQL from the distribution's packages: a private cluster in ``<state>/postgres``.

``initdb`` on first start (superuser ``edgecloud``, SCRAM password from ``secrets.json``), then
``postgres -D`` on its own port, TCP on 127.0.0.1 only (no Unix socket, so nothing collides
with a system cluster). As root the server runs as the ``postgres`` OS user (see
``base.run_as``). Durability stays as in production (``fsync``, ``synchronous_commit`` on):
the edge agent acknowledges MQTT only after a commit, and fault tests kill -9 the database.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from edgecloud.core.errors import ServiceError
from edgecloud.dev.base import HOST, Service, chown_tree, run_as

OS_USER = "postgres"
SERVER_SETTINGS = {
    "listen_addresses": HOST,
    "unix_socket_directories": "",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] %d ",
    "timezone": "UTC",
}


def bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<v>/bin`` (Debian), else the one holding ``initdb``."""
    root = Path("/usr/lib/postgresql")
    versions = sorted(
        (p for p in root.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0),
    )
    if versions:
        return versions[-1]
    found = shutil.which("initdb")
    if found is None:
        raise ServiceError("PostgreSQL server binaries not found (make install installs them)")
    return Path(found).resolve().parent


def libpq_url(url: str) -> str:
    """SQLAlchemy ``postgresql+psycopg://`` -> libpq ``postgresql://``."""
    return str(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))


def database_url(admin_url: str, database: str) -> str:
    """``admin_url`` pointing at ``database`` instead (SQLAlchemy ``postgresql+psycopg``)."""
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=database)
    return str(url.render_as_string(hide_password=False))


def create_database(admin_url: str, name: str) -> str:
    """Create ``name`` unless it exists; returns its SQLAlchemy URL."""
    with psycopg.connect(libpq_url(admin_url), autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(libpq_url(admin_url), autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


class PostgresService(Service):
    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for clients to leave
    ready_timeout = 60.0

    @property
    def port(self) -> int:
        return self.ports.postgres

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "postgres"

    @property
    def admin_url(self) -> str:
        creds = self.secrets["postgres"]
        return (
            f"postgresql+psycopg://{creds['user']}:{creds['password']}@{HOST}:{self.port}/postgres"
        )

    def prepare(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        pwfile = self.state_dir / "run" / "pg-initdb.pw"
        pwfile.parent.mkdir(parents=True, exist_ok=True)
        pwfile.write_text(self.secrets["postgres"]["password"] + "\n")
        pwfile.chmod(0o600)
        chown_tree(self.data_dir, OS_USER)
        chown_tree(pwfile, OS_USER)
        argv = [
            *run_as(OS_USER),
            str(bindir() / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            self.secrets["postgres"]["user"],
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
        ]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise ServiceError(f"initdb failed ({done.returncode}): {done.stderr.strip()}")

    def argv(self) -> list[str]:
        settings = {**SERVER_SETTINGS, "port": str(self.port)}
        flags = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        return [*run_as(OS_USER), str(bindir() / "postgres"), "-D", str(self.data_dir), *flags]

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    def healthy(self) -> bool:
        try:
            with psycopg.connect(libpq_url(self.admin_url), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False
