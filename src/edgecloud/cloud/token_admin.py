"""Token administration on the cloud database itself, for ``edgecloud token`` (the first admin
token must exist before any HTTP call can be made). The CLI calls these with a database URL and
never opens the database on its own; ``POST /api/v1/tokens`` is the same over HTTP."""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from edgecloud.cloud import auth
from edgecloud.cloud.db import ApiToken, make_engine


def create(
    database_url: str, scope: str, name: str, node_id: str | None, migrate: bool = True
) -> tuple[str, ApiToken]:
    """A new token (shown once) and its row; ``ValidationFailed`` for a bad scope / node id."""
    if migrate:
        from edgecloud.cloud.migrations import migrate as run_migrate

        run_migrate(database_url)
    engine = make_engine(database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            return auth.create_token(session, scope, name, node_id)  # type: ignore[arg-type]
    finally:
        engine.dispose()


def listing(database_url: str) -> list[ApiToken]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(ApiToken).order_by(col(ApiToken.created_at))).all())
    finally:
        engine.dispose()


def revoke(database_url: str, token_id: uuid.UUID) -> bool:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return auth.revoke_token(session, token_id)
    finally:
        engine.dispose()
