"""model_deprecation: a registered model version can be deprecated or deleted, with an audit

Revision ID: 0008_model_deprecation
Revises: 0007_aggregates_1h
Create Date: 2026-12-03 12:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision: str = "0008_model_deprecation"
down_revision: str | None = "0007_aggregates_1h"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("deprecated_at", TS, nullable=True))
        batch.add_column(sa.Column("deprecated_by", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("deprecation_reason", sa.Text(), nullable=True))
    op.create_table(
        "model_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("token_id", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=True),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_model_audit_name_version", "model_audit", ["name", "version"])


def downgrade() -> None:
    op.drop_index("ix_model_audit_name_version", table_name="model_audit")
    op.drop_table("model_audit")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("deprecation_reason")
        batch.drop_column("deprecated_by")
        batch.drop_column("deprecated_at")
