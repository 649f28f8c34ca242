"""Alembic environment of the cloud schema (see ``edgecloud.core.migrate.run_env``)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import edgecloud.cloud.db
import edgecloud.cloud.labels.tables  # noqa: F401
from edgecloud.cloud.db import make_engine
from edgecloud.core.migrate import run_env

run_env(context, SQLModel.metadata, make_engine)
