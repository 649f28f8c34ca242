"""Alembic migrations of the cloud schema. ``migrate(url)`` upgrades a database to head.

Works on Postgres and SQLite. Concurrent starts (API and worker at once) on Postgres are
serialised with an advisory lock so two processes never race on the first upgrade.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from edgecloud.adapters import migrate as _migrate
from edgecloud.cloud.db import make_engine

HERE = Path(__file__).resolve().parent
_LOCK_KEY = 0x6564_6765_636C  # "edgecl": advisory lock id of the cloud migrations


def alembic_config(url: str | None = None) -> Config:
    return _migrate.alembic_config(HERE, url)


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (idempotent)."""
    _migrate.upgrade(
        url, script_location=HERE, lock_key=_LOCK_KEY, make_engine=make_engine, revision=revision
    )
