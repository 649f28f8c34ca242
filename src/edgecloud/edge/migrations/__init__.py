"""Alembic migrations of the edge node's local schema. ``migrate(url)`` upgrades to head.

Postgres and SQLite. On Postgres an advisory lock serialises concurrent first starts.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from edgecloud.adapters import migrate as _migrate
from edgecloud.edge.db import make_engine

HERE = Path(__file__).resolve().parent
_LOCK_KEY = 0x6564_6765_6167  # "edgeag": advisory lock id of the edge migrations


def alembic_config(url: str | None = None) -> Config:
    return _migrate.alembic_config(HERE, url)


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (idempotent)."""
    _migrate.upgrade(
        url, script_location=HERE, lock_key=_LOCK_KEY, make_engine=make_engine, revision=revision
    )
