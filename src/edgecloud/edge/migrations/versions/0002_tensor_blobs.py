"""tensor digests on readings, tensor_blobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# JSON on SQLite, jsonb on Postgres (frozen here: later changes to db.py need a new revision)
JSONB = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tensors", JSONB, nullable=True))
    op.create_table(
        "tensor_blobs",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("dtype", sa.String(length=16), nullable=False),
        sa.Column("shape", JSONB, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id", "seq"],
            ["readings.device_id", "readings.seq"],
            name="fk_tensor_blobs_reading",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", "seq", "name"),
    )


def downgrade() -> None:
    op.drop_table("tensor_blobs")
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.drop_column("tensors")
