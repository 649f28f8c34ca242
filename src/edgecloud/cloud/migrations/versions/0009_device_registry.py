"""device registry and its audit log (issue 16)

Revision ID: 0009_device_registry
Revises: 0008_model_deprecation
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONB = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

revision: str = "0009_device_registry"
down_revision: str | None = "0008_model_deprecation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_registry",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("labels", JSONB, nullable=False),
        sa.Column("auth", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=True),
        sa.Column("cert_sha256", sa.String(64), nullable=True),
        sa.Column("cert_serial", sa.String(64), nullable=True),
        sa.Column("cert_not_after", TS, nullable=True),
        sa.Column("created_by", sa.String(128), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_device_registry_node_id", "device_registry", ["node_id"])
    op.create_table(
        "device_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=True),
        sa.Column("detail", JSONB, nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_device_audit_device_id", "device_audit", ["device_id"])


def downgrade() -> None:
    op.drop_table("device_audit")
    op.drop_table("device_registry")
