"""Alembic environment of the cloud schema (see ``edgecloud.adapters.migrate.run_env``)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import edgecloud.cloud.db
import edgecloud.cloud.labels.tables
import edgecloud.cloud.presence  # noqa: F401
from edgecloud.adapters.migrate import run_env
from edgecloud.cloud.db import make_engine

run_env(context, SQLModel.metadata, make_engine)
