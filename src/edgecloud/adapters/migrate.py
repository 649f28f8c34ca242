"""Alembic plumbing shared by the cloud schema and the edge node's local schema.

Each role keeps its own migration scripts (``cloud/migrations``, ``edge/migrations``) and its
own ``migrate(url)``; what they share is how an upgrade runs: on Postgres an advisory lock
serialises concurrent first starts (API and worker at once, say), on SQLite batch mode lets
ALTERs work, and ``env.py`` runs on the connection ``migrate()`` hands it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Engine

EngineFactory = Callable[[str], Engine]


def alembic_config(script_location: Path, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(
    url: str,
    *,
    script_location: Path,
    lock_key: int,
    make_engine: EngineFactory,
    revision: str = "head",
) -> None:
    """Upgrade the database at ``url`` to ``revision`` (idempotent)."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key})
            cfg = alembic_config(script_location)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def run_env(
    context: Any,
    metadata: MetaData,
    make_engine: EngineFactory,
    version_table: str = "alembic_version",
) -> None:
    """The body of an ``env.py``: offline SQL, the handed-in connection, or the config URL."""
    config = context.config

    def configure(**kwargs: Any) -> None:
        context.configure(
            target_metadata=metadata,
            render_as_batch=True,
            version_table=version_table,
            **kwargs,
        )

    def run() -> None:
        with context.begin_transaction():
            context.run_migrations()

    if context.is_offline_mode():
        configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
        run()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        configure(connection=connection)
        run()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no sqlalchemy.url and no connection given to the migrations")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            configure(connection=conn)
            run()
    finally:
        engine.dispose()
