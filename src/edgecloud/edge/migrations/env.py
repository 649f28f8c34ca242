"""Alembic environment of the edge schema: runs on the connection ``migrate()`` passes in."""

from __future__ import annotations

from alembic import context

from edgecloud.edge.db import EDGE_METADATA, make_engine

VERSION_TABLE = "alembic_version_edge"  # apart from the cloud's, should both share a database

config = context.config
target_metadata = EDGE_METADATA


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,
        version_table=VERSION_TABLE,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no sqlalchemy.url and no connection given to the migrations")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
