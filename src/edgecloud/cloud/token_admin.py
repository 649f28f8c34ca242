"""Token administration on the cloud database itself, for ``edgecloud token`` (the first admin
token must exist before any HTTP call can be made). The CLI calls these with a database URL and
never opens the database on its own; ``POST /api/v1/tokens`` is the same over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session, col, select

from edgecloud.cloud import auth
from edgecloud.cloud.db import ApiToken, make_engine


@contextmanager
def _session(database_url: str, expire_on_commit: bool = True) -> Iterator[Session]:
    """One session on an engine of its own, disposed of when the block ends (a CLI call)."""
    engine = make_engine(database_url)
    try:
        with Session(engine, expire_on_commit=expire_on_commit) as session:
            yield session
    finally:
        engine.dispose()


def create(
    database_url: str, scope: str, name: str, node_id: str | None, migrate: bool = True
) -> tuple[str, ApiToken]:
    """A new token (shown once) and its row; ``ValidationFailed`` for a bad scope / node id."""
    if migrate:
        from edgecloud.cloud.migrations import migrate as run_migrate

        run_migrate(database_url)
    with _session(database_url, expire_on_commit=False) as session:
        return auth.create_token(session, scope, name, node_id)  # type: ignore[arg-type]


def listing(database_url: str) -> list[ApiToken]:
    with _session(database_url) as session:
        return list(session.exec(select(ApiToken).order_by(col(ApiToken.created_at))).all())


def revoke(database_url: str, token_id: uuid.UUID) -> bool:
    with _session(database_url) as session:
        return auth.revoke_token(session, token_id)
