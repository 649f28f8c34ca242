"""Alembic environment of the edge schema (see ``edgecloud.adapters.migrate.run_env``)."""

from __future__ import annotations

from alembic import context

from edgecloud.adapters.migrate import run_env
from edgecloud.edge.db import EDGE_METADATA, make_engine

VERSION_TABLE = "alembic_version_edge"  # apart from the cloud's, should both share a database

run_env(context, EDGE_METADATA, make_engine, version_table=VERSION_TABLE)
